package view

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

func gpu(host string, i int) metrics.GPUView { return metrics.GPUView{Host: host, Index: &i} }

// A patch may append GPUs out of the hub's host order: a host whose GPUs
// are not in one run still gets all of them, and no other host's.
func TestHostViewOfSplitGPUs(t *testing.T) {
	u := &metrics.Update{
		Hosts: []metrics.HostStatus{{Host: "a", Online: true}, {Host: "b", Online: true}},
		GPUs:  []metrics.GPUView{gpu("a", 0), gpu("b", 0), gpu("a", 1)},
	}
	s := New(u)
	for host, want := range map[string]int{"a": 2, "b": 1} {
		v, ok := s.Host(host)
		if !ok || len(v.GPUs) != want {
			t.Fatalf("%s: ok %v, %d GPUs, want %d", host, ok, len(v.GPUs), want)
		}
		for _, g := range v.GPUs {
			if g.Host != host {
				t.Fatalf("%s's view holds a GPU of %s", host, g.Host)
			}
		}
	}
	if f := s.Fleet(); f.Hosts[0].GPUs != 2 || f.Totals.GPUs != 3 {
		t.Fatalf("fleet %+v", f)
	}
}

func TestKnownIsCapped(t *testing.T) {
	u := &metrics.Update{}
	if got := New(u).Known(2); got != "none yet" {
		t.Fatalf("no hosts: %q", got)
	}
	for _, h := range []string{"a", "b", "c", "d"} {
		u.Hosts = append(u.Hosts, metrics.HostStatus{Host: h})
	}
	if got := New(u).Known(2); got != "a, b, and 2 more" {
		t.Fatalf("got %q", got)
	}
	if got := New(u).Known(10); !strings.HasSuffix(got, "c, d") {
		t.Fatalf("got %q", got)
	}
}

// fleetUpdate is an update of hosts 8-GPU hosts with every figure a
// fleet row reads, two models each (one unhealthy) and a firing alert
// on every tenth host.
func fleetUpdate(hosts int) *metrics.Update {
	f := func(v float64) *float64 { return &v }
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	u := &metrics.Update{Timestamp: now}
	for h := range hosts {
		name := fmt.Sprintf("gpu%04d", h)
		u.Hosts = append(u.Hosts, metrics.HostStatus{
			Host: name, Online: h%50 != 0, LastSeen: now.Add(-time.Duration(h%7) * time.Second), GPUCount: 8,
			System: metrics.HostView{CPUPercent: f(12.3), RAMUsedGB: f(100.4), RAMTotalGB: f(503.7)},
			Models: map[string]metrics.ModelView{
				metrics.RoleRTDETR:   {Status: metrics.StatusHealthy},
				metrics.RoleNemotron: {Status: metrics.StatusDegraded},
			},
		})
		for i := range 8 {
			g := gpu(name, i)
			g.Utilization, g.VRAMUsedGB, g.VRAMTotalGB = f(float64(h%100)), f(40.2), f(80)
			g.Temperature, g.PowerWatts, g.PowerLimitWatts = f(61.5), f(312.7), f(700)
			u.GPUs = append(u.GPUs, g)
		}
		if h%10 == 0 {
			u.Alerts = append(u.Alerts, metrics.Alert{Host: name, Target: "gpu0", State: "firing", Severity: "critical"})
		}
	}
	return u
}

// BenchmarkFleet is the fleet view of 2,000 8-GPU hosts: indexing the
// update, the rows and totals, and their JSON, each part's CPU per tick.
func BenchmarkFleet(b *testing.B) {
	u := fleetUpdate(2000)
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			New(u)
		}
	})
	s := New(u)
	b.Run("rows", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Fleet()
		}
	})
	f := s.Fleet()
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The live totals carry the busiest GPU's utilization, rounded as the
// mean is, so the fleet charts' max series goes on from the history's
// (Totals' UtilMax, unrounded) with the same figure.
func TestFleetTotalsUtilMax(t *testing.T) {
	u := &metrics.Update{
		Hosts: []metrics.HostStatus{{Host: "a", Online: true}, {Host: "b", Online: true}, {Host: "c"}},
		GPUs: []metrics.GPUView{
			{Host: "a", Utilization: fp(10.25)}, {Host: "a", Utilization: fp(97.46)},
			{Host: "b", Utilization: fp(60)}, {Host: "c"},
		},
	}
	got := New(u).Fleet().Totals.UtilMax
	raw := Totals(u).UtilMax
	if got == nil || *got != 97.5 || raw == nil || *round(*raw, 1) != *got {
		t.Fatalf("util max %v, history's %v, want 97.5 for both", got, raw)
	}
	u.GPUs = []metrics.GPUView{{Host: "a"}}
	if b, _ := json.Marshal(New(u).Fleet().Totals); strings.Contains(string(b), "util_max") {
		t.Fatalf("no GPU reported utilization, yet %s", b)
	}
}
