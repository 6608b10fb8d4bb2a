package hub

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// siteUpdate is the update the hub builds from newest: merged, with the
// sources' defaults and an alert on the first host.
func siteUpdate(newest map[string]*metrics.Sample) metrics.Update {
	u := merge(now, newest, 5*time.Second)
	applySources(&u, nil, now, 5*time.Second, slog.New(slog.DiscardHandler))
	u.Alerts = append(u.Alerts, metrics.Alert{Severity: "warning", Metric: "gpu_temperature", Host: "gpu000", State: "firing"},
		metrics.Alert{Severity: "critical", Metric: "redis_memory", State: "firing"})
	return u
}

func TestHostViewOfOneHostAmongThree(t *testing.T) {
	u := siteUpdate(fleet(3, 8))
	s := view.New(&u)
	v, ok := s.Host("gpu001")
	if !ok {
		t.Fatal("gpu001 unknown")
	}
	if len(v.GPUs) != 8 || v.GPU.Host != "gpu001" || len(v.Hosts) != 1 || v.Hosts[0].Host != "gpu001" {
		t.Fatalf("gpus %d gpu %s hosts %+v", len(v.GPUs), v.GPU.Host, v.Hosts)
	}
	for _, g := range v.GPUs {
		if g.Host != "gpu001" {
			t.Fatalf("a GPU of %s in gpu001's view", g.Host)
		}
	}
	if v.AIModels.RTDETR.Host != "gpu001" || v.Sources[metrics.SectionGPU] != "agent:gpu001" || v.Sources[metrics.SectionHost] != "agent:gpu001" {
		t.Fatalf("models %+v sources %v", v.AIModels, v.Sources)
	}
	// Only the site-wide alert: gpu000's is not gpu001's.
	if len(v.Alerts) != 1 || v.Alerts[0].Host != "" {
		t.Fatalf("alerts %+v", v.Alerts)
	}
	// The view is a copy: the full update keeps its own maps and sections.
	if u.Sources[metrics.SectionGPU] != "agent:gpu000" || len(u.GPUs) != 24 || len(u.Alerts) != 2 {
		t.Fatalf("the full update changed: sources %v gpus %d", u.Sources, len(u.GPUs))
	}
	if _, ok := s.Host("gpu009"); ok {
		t.Fatal("an unknown host has a view")
	}
}

// TestHostViewOfTheOnlyHostIsTheUpdate: with one host, its view is the
// seed's message itself, byte for byte.
func TestHostViewOfTheOnlyHostIsTheUpdate(t *testing.T) {
	u := siteUpdate(fleet(1, 8))
	v, ok := view.New(&u).Host("gpu000")
	if !ok {
		t.Fatal("gpu000 unknown")
	}
	want, _ := json.Marshal(u)
	got, _ := json.Marshal(v)
	if !bytes.Equal(got, want) {
		t.Fatalf("host view\n%s\nfull update\n%s", got, want)
	}
}

func TestFleetRowsAreCompact(t *testing.T) {
	u := siteUpdate(fleet(3, 8))
	f := view.New(&u).Fleet()
	if len(f.Hosts) != 3 || f.Totals.GPUs != 24 || f.Totals.Online != 3 || f.Totals.Critical != 1 || f.Totals.Warning != 1 {
		t.Fatalf("fleet %+v", f)
	}
	r := f.Hosts[0]
	// a5500(g, (g+1) GiB): utilization 38, VRAM 1..8 GB of 24, 38 °C, 31 W.
	if r.GPUs != 8 || *r.UtilMean != 38 || *r.UtilMax != 38 || *r.VRAMUsed != 36 || *r.VRAMTotal != 192 ||
		*r.TempMax != 38 || *r.Power != 248 || r.Warning != 1 || r.Critical != 0 || r.Models != 2 || r.ModelsNotHealthy != nil || *r.CPU != 12 || r.Offline || r.Ago != 1 {
		b, _ := json.Marshal(r)
		t.Fatalf("row %s", b)
	}

	// A long name, every figure and alerts of both severities: still ≤ 150
	// bytes. (A model not healthy adds its role and status.)
	big := sample("gpu-rack12-node07", 3*time.Second)
	big.System = system()
	big.System.CPUPercent = f64(34.567)
	for g := range 8 {
		gpu := a5500(g, 123456789012)
		gpu.MemTotal, gpu.Util, gpu.Temp = u64(150_000_000_000), f64(55.55+float64(g)), f64(71.4+float64(g))
		gpu.Power, gpu.PowerLimit = f64(612.34), f64(700)
		big.GPUs = append(big.GPUs, gpu)
	}
	big.Models = map[string]metrics.Model{"rtdetr": {Status: "healthy"}, "nemotron": {Status: "healthy"}}
	bigRow := func() metrics.FleetRow {
		u := merge(now, map[string]*metrics.Sample{big.Host: big}, 5*time.Second)
		for _, sev := range []metrics.Severity{"critical", "warning", "warning", "critical"} {
			u.Alerts = append(u.Alerts, metrics.Alert{Severity: sev, Host: big.Host, State: "firing"})
		}
		u.Alerts[3].State = "pending"
		return view.New(&u).Fleet().Hosts[0]
	}
	r = bigRow()
	if r.Critical != 1 || r.Warning != 2 || r.ModelsNotHealthy != nil || *r.PowerLimit != 5600 || *r.TempMax != 78 || *r.UtilMax != 63 {
		b, _ := json.Marshal(r)
		t.Fatalf("row %s", b)
	}
	if b, _ := json.Marshal(r); len(b) > 150 {
		t.Fatalf("row of an 8-GPU host is %d bytes, want ≤ 150: %s", len(b), b)
	}
	big.Models["nemotron"] = metrics.Model{Status: "unreachable"}
	if r := bigRow(); r.Models != 2 || len(r.ModelsNotHealthy) != 1 || r.ModelsNotHealthy["nemotron"] != "unreachable" {
		t.Fatalf("models %d, not healthy %v", r.Models, r.ModelsNotHealthy)
	}
}

// TestHubPublishesViewsWithinMaxPayload runs a hub on a NATS server whose
// max payload the whole update of three 8-GPU hosts passes but each
// host's view fits: the per-host updates and the fleet view are
// published, the whole update is not.
func TestHubPublishesViewsWithinMaxPayload(t *testing.T) {
	hosts := fleet(3, 8)
	u := siteUpdate(hosts)
	full, _ := json.Marshal(u)
	one, _ := view.New(&u).Host("gpu000")
	hostJSON, _ := json.Marshal(one)
	max := int32(len(full)+len(hostJSON)) / 2

	ext, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Open: true, MaxPayload: max}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Shutdown)
	cfg := testConfig(t)
	cfg.NATSURL = ext.ClientURL()
	cfg.DataDir = ""
	cfg.HTTPTokenFile, _ = tokenFile(t)
	startHub(t, cfg)

	nc, err := nats.Connect(ext.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub := func(subject string) *nats.Subscription {
		s, err := nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	whole, perHost, fleetSub := sub(metrics.SubjectUpdate), sub(metrics.SubjectHostUpdates), sub(metrics.SubjectFleet)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, s := range hosts {
		s.TS = time.Now().UnixNano()
		publish(t, ext.ClientURL(), s)
	}

	nextFleet := func() metrics.FleetUpdate {
		msg, err := fleetSub.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("no fleet view on %s: %v", metrics.SubjectFleet, err)
		}
		var f metrics.FleetUpdate
		if err := json.Unmarshal(msg.Data, &f); err != nil || f.Type != metrics.TypeFleet {
			t.Fatalf("fleet view %s: %v", msg.Data, err)
		}
		return f
	}
	for f := nextFleet(); len(f.Hosts) != 3; f = nextFleet() {
		t.Logf("fleet view of %d hosts", len(f.Hosts))
	}
	// One tick more: NATS keeps one publisher's order, so every whole
	// update of that tick and the one before has arrived by now.
	nextFleet()
	for n, _, _ := whole.Pending(); n > 0; n, _, _ = whole.Pending() {
		msg, err := whole.NextMsg(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.Data) > int(max) {
			t.Fatalf("a whole update of %d bytes passed max payload %d", len(msg.Data), max)
		}
		var got metrics.Update
		if json.Unmarshal(msg.Data, &got) == nil && len(got.Hosts) == 3 {
			t.Fatalf("the whole update of 3 hosts (%d bytes) was published past max payload %d", len(msg.Data), max)
		}
	}
	seen := map[string]bool{}
	for len(seen) < 3 {
		msg, err := perHost.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("per-host updates seen %v: %v", seen, err)
		}
		var v metrics.Update
		if err := json.Unmarshal(msg.Data, &v); err != nil || len(v.Hosts) != 1 {
			t.Fatalf("per-host update on %s: %s", msg.Subject, msg.Data)
		}
		h := v.Hosts[0].Host
		if msg.Subject != metrics.UpdateSubject(h) || len(v.GPUs) != 8 {
			t.Fatalf("%s carries %s with %d GPUs", msg.Subject, h, len(v.GPUs))
		}
		seen[h] = true
	}
}

// BenchmarkViews is one tick's cost of the views at fleet scale: indexing
// the update (once a tick), then building and encoding one view, and its
// size.
func BenchmarkViews(b *testing.B) {
	for _, hosts := range []int{200, 2000} {
		u := siteUpdate(fleet(hosts, 8))
		s := view.New(&u)
		b.Run(fmt.Sprintf("index/hosts=%d,gpus=8", hosts), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				view.New(&u)
			}
		})
		b.Run(fmt.Sprintf("host/hosts=%d,gpus=8", hosts), func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				v, ok := s.Host("gpu100")
				if !ok {
					b.Fatal("gpu100 unknown")
				}
				out, err := json.Marshal(v)
				if err != nil {
					b.Fatal(err)
				}
				n = len(out)
			}
			b.ReportMetric(float64(n), "bytes/view")
			v, _ := s.Host("gpu100")
			b.ReportMetric(float64(deflated(b, v)), "deflated_bytes/view")
		})
		b.Run(fmt.Sprintf("fleet/hosts=%d,gpus=8", hosts), func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				out, err := json.Marshal(s.Fleet())
				if err != nil {
					b.Fatal(err)
				}
				n = len(out)
			}
			b.ReportMetric(float64(n), "bytes/view")
			b.ReportMetric(float64(n)/float64(hosts), "bytes/host")
			b.ReportMetric(float64(deflated(b, s.Fleet())), "deflated_bytes/view")
		})
		// Every host's view, as the NATS publisher builds them each tick
		// from one index.
		b.Run(fmt.Sprintf("every-host/hosts=%d,gpus=8", hosts), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := view.New(&u)
				for _, h := range u.Hosts {
					v, _ := s.Host(h.Host)
					if _, err := json.Marshal(v); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// deflated is v's JSON size after permessage-deflate's compression (flate
// at the default level, no context takeover).
func deflated(b *testing.B, v any) int {
	raw, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	_, _ = w.Write(raw)
	_ = w.Close()
	return buf.Len()
}

// TestHubBuildsOnlyViewsSomeoneReads: on the embedded NATS with no
// browser and no subscriber, no view is built; a subscriber to one host's
// subject gets that host's view, and only that view is built.
func TestHubBuildsOnlyViewsSomeoneReads(t *testing.T) {
	h := startHub(t, testConfig(t))
	for _, host := range []string{"gpu01", "gpu02"} {
		s := &metrics.Sample{Host: host, Boot: "b1", Seq: 1, TS: time.Now().UnixNano(), System: system()}
		publish(t, h.NATSURL(), s, as(t, host, enrol(t, h, host, enroll.Agent))...)
	}
	performance(t, h, hasHost("gpu02"))
	ticks := func(n int) {
		start := h.Latest().Timestamp
		poll.Until(t, fmt.Sprintf("%d ticks", n), func() bool {
			return h.Latest().Timestamp.Sub(start) >= time.Duration(n)*h.cfg.Interval
		})
	}
	ticks(3)
	if n := h.srv.Encodes(); n != 0 {
		t.Fatalf("%d views encoded with nobody reading one", n)
	}

	nc, err := h.emb.Connect("test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(metrics.UpdateSubject("gpu02"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no view on %s: %v", metrics.UpdateSubject("gpu02"), err)
	}
	var v metrics.Update
	if err := json.Unmarshal(msg.Data, &v); err != nil || len(v.Hosts) != 1 || v.Hosts[0].Host != "gpu02" {
		t.Fatalf("view %s", msg.Data)
	}
	// Six ticks, give or take the one in flight at either end: gpu02's
	// view once a tick, gpu01's and the fleet's never.
	before := h.srv.Encodes()
	ticks(6)
	if got := h.srv.Encodes() - before; got < 5 || got > 7 {
		t.Fatalf("%d views encoded in 6 ticks, want gpu02's once a tick", got)
	}
}
