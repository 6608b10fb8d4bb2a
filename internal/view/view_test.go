package view

import (
	"strings"
	"testing"

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
