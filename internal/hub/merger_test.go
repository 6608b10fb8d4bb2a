package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// merge builds the agent-fed part of an update from the newest sample of
// each host with a merger of its own, each sample converted afresh as the
// ingest converts it, as the tests want it.
func merge(now time.Time, newest map[string]*metrics.Sample, interval time.Duration) metrics.Update {
	var m merger
	return m.merge(now, figured(newest), interval)
}

// figured converts each sample once, as the ingest does.
func figured(newest map[string]*metrics.Sample) map[string]latest {
	out := make(map[string]latest, len(newest))
	for h, s := range newest {
		f := view.Of(s)
		out[h] = latest{s: s, f: &f}
	}
	return out
}

// The merger keeps each host's part between ticks; every update it builds
// must be the one a fresh merge of the same samples builds, through new
// samples, hosts going silent, joining and being forgotten.
func TestMergerMatchesAFreshMerge(t *testing.T) {
	t.Parallel()
	host := func(name string, age time.Duration, seq uint64) *metrics.Sample {
		s := agentSample(name, 0, 2)
		s.TS, s.Seq = now.Add(-age).UnixNano(), seq
		s.Interval = int64(5 * time.Second)
		s.Errors = map[string]string{metrics.CollectorHost: "partial"}
		return s
	}
	a1, b1 := host("a", time.Second, 1), host("b", time.Second, 1)
	b2, c1 := host("b", 0, 2), host("c", 0, 1)
	// Each sample is converted once, as by the ingest: the merger sees the
	// same figures tick after tick until its host sends again.
	conv := figured(map[string]*metrics.Sample{"a1": a1, "b1": b1, "b2": b2, "c1": c1})
	steps := []struct {
		name   string
		at     time.Time
		newest map[string]latest
	}{
		{"two hosts", now, map[string]latest{"a": conv["a1"], "b": conv["b1"]}},
		{"b sends again", now, map[string]latest{"a": conv["a1"], "b": conv["b2"]}},
		{"a falls silent", now.Add(time.Minute), map[string]latest{"a": conv["a1"], "b": conv["b2"]}},
		{"c joins, a is forgotten", now.Add(time.Minute), map[string]latest{"b": conv["b2"], "c": conv["c1"]}},
		{"b silent too", now.Add(2 * time.Minute), map[string]latest{"b": conv["b2"], "c": conv["c1"]}},
	}
	var m merger
	for _, st := range steps {
		got, err := json.Marshal(m.merge(st.at, st.newest, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		samples := map[string]*metrics.Sample{}
		for h, l := range st.newest {
			samples[h] = l.s
		}
		want, err := json.Marshal(merge(st.at, samples, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the merger's update\n%s\na fresh merge's\n%s", st.name, got, want)
		}
		if len(m.parts) != len(st.newest) || len(m.names) != len(st.newest) {
			t.Fatalf("%s: the merger keeps %d parts (%v) for %d hosts", st.name, len(m.parts), m.names, len(st.newest))
		}
	}
}

// A silent host's part is its fresh part with the stale flags set, not a
// second conversion: it must read as the sample converted stale, section
// by section, through view's own functions.
func TestStalePartIsTheSampleConvertedStale(t *testing.T) {
	t.Parallel()
	s := agentSample("a", 0, 3)
	// Out of order, so the part's GPUs are a sorted copy of the figures'.
	slices.Reverse(s.GPUs)
	s.Errors = map[string]string{metrics.CollectorHost: "partial"}
	l := figured(map[string]*metrics.Sample{"a": s})["a"]
	got := fresh(l).stale()

	want := hostView{
		status: metrics.HostStatus{
			Host: s.Host, LastSeen: time.Unix(0, s.TS).UTC(), Boot: s.Boot, Seq: s.Seq,
			System: view.System(s.System), GPUCount: len(s.GPUs), Errors: s.Errors,
			Models: map[string]metrics.ModelView{},
		},
		hasSystem: true,
	}
	for _, g := range s.GPUs {
		want.gpus = append(want.gpus, view.GPU(s.Host, g, true))
	}
	wantFirst := want.gpus[0]
	slices.SortFunc(want.gpus, func(a, b metrics.GPUView) int { return *a.Index - *b.Index })
	for _, name := range slices.Sorted(maps.Keys(s.Models)) {
		v := view.Model(s, name, s.Models[name], true)
		want.status.Models[name] = v
		want.models = append(want.models, modelEntry(s, name, s.Models[name], v))
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"status", got.status, want.status},
		{"GPUs", got.gpus, want.gpus},
		{"first GPU", got.gpus[got.first], wantFirst},
		{"model entries", got.models, want.models},
	} {
		g, err := json.Marshal(c.got)
		if err != nil {
			t.Fatal(err)
		}
		w, err := json.Marshal(c.want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g, w) {
			t.Fatalf("stale %s\n%s\nwant\n%s", c.what, g, w)
		}
	}
	if got.hasSystem != want.hasSystem || got.status.Online {
		t.Fatalf("stale part: hasSystem %v, online %v", got.hasSystem, got.status.Online)
	}
	// The fresh part it came from is left as it was.
	if on := fresh(l); on.status.Online == false || on.gpus[0].Stale || on.models[0].Stale || on.status.Models[metrics.RoleRTDETR].Stale {
		t.Fatal("making the stale part marked the fresh one")
	}
}

// Each sample is converted once, by the ingest: the figures history gets
// are the ones the merger builds the host's part from, and the merger
// converts nothing itself, neither for a host that reports nor for one
// that falls silent (its figures are still the ingest's).
func TestMergerConvertsNothing(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	in := newIngest(slog.New(slog.DiscardHandler), rec, nil)
	a1 := agentSample("a", 0, 2)
	a1.TS = now.UnixNano()
	a1.Errors = map[string]string{metrics.CollectorHost: "partial"}
	if !in.sample(metrics.SampleSubject("a"), encode(t, a1)) {
		t.Fatal("rejected")
	}
	snap := in.snapshot(time.Time{})
	f := snap["a"].f
	if len(rec.figures) != 1 || rec.figures[0] != f {
		t.Fatalf("history got %d figures, not the ingest's newest", len(rec.figures))
	}

	var m merger
	u := m.merge(now, snap, 5*time.Second)
	on := m.parts["a"].on
	// The ingest built the part, with the figures: the merger takes it.
	if on == nil || on != snap["a"].v {
		t.Fatal("the merger built the part the ingest had built")
	}
	// Converting again would make new figures to point at; the part's
	// point at the ingest's.
	sameFigures := func(what string, v *hostView) {
		t.Helper()
		if v.gpus[0].Index != f.GPUs[0].Index || v.gpus[1].VRAMUsedGB != f.GPUs[1].VRAMUsedGB || v.gpus[v.first].Index != f.GPUs[0].Index {
			t.Fatalf("%s: the GPU views were converted again", what)
		}
		if v.status.System.RAMUsedGB != f.System.RAMUsedGB || v.status.System.UptimeS != f.System.UptimeS {
			t.Fatalf("%s: the host section was converted again", what)
		}
		for _, e := range v.models {
			if e.VRAMGB != nil && e.VRAMGB != f.Models[e.Name].VRAMGB {
				t.Fatalf("%s: model %s was converted again", what, e.Name)
			}
		}
	}
	sameFigures("online", on)
	if &u.GPUs[0] == &on.gpus[0] {
		t.Fatal("the update shares the merger's GPU list: a source appending to it would write into the merger's")
	}
	// A rebuild would show as a new part or a new copy of the sample's
	// errors.
	errs := reflect.ValueOf(on.status.Errors).Pointer()
	if m.merge(now, in.snapshot(time.Time{}), 5*time.Second); m.parts["a"].on != on || reflect.ValueOf(on.status.Errors).Pointer() != errs {
		t.Fatal("an unchanged sample's part was built again")
	}

	// Silent: the stale part is made once, from the same figures.
	later := now.Add(time.Minute)
	m.merge(later, in.snapshot(time.Time{}), 5*time.Second)
	off := m.parts["a"].off
	if off == nil || off.status.Online || !off.gpus[0].Stale {
		t.Fatal("a silent host's part is not stale")
	}
	sameFigures("stale", off)
	if m.merge(later, in.snapshot(time.Time{}), 5*time.Second); m.parts["a"].off != off {
		t.Fatal("a silent host's stale part was made again")
	}

	a2 := agentSample("a", 1, 2)
	a2.TS = later.UnixNano()
	if !in.sample(metrics.SampleSubject("a"), encode(t, a2)) {
		t.Fatal("rejected")
	}
	m.merge(later, in.snapshot(time.Time{}), 5*time.Second)
	if p := m.parts["a"]; p.on.status.Seq != a2.Seq || p.on.status.Errors != nil || p.off != nil || p.s.Seq != a2.Seq || p.f != rec.figures[1] {
		t.Fatal("a new sample kept the old part")
	}
}

// An update, once built, is only read (by the server's views, /metrics,
// the history) for as long as its readers like, while the ingest decodes
// the next samples into the memory of the last (metrics.Decoder) and
// builds new parts, and the merger marks hosts stale. Nothing it holds
// may change meanwhile: it is read here, concurrently, while more
// samples arrive and more updates are built (run with -race), and must
// read the same after.
func TestPublishedUpdateNeverChanges(t *testing.T) {
	t.Parallel()
	in := newIngest(slog.New(slog.DiscardHandler), nil, nil)
	send := func(host string, tick int, at time.Time) {
		t.Helper()
		s := agentSample(host, tick, 2+tick%3)
		s.TS = at.UnixNano()
		// Figures that differ tick by tick, so memory reused for the
		// next sample would show in the first update.
		x := float64(tick + 1)
		s.System.CPUPercent, s.System.PerCore[0] = f64(x), x
		for i := range s.GPUs {
			g := &s.GPUs[i]
			g.Util, g.Temp, g.Power, g.MemUsed = f64(x), f64(x), f64(x), u64(uint64(x)*gib)
			g.Processes[0].SMUtil = f64(x)
		}
		s.Errors = map[string]string{metrics.CollectorHost: fmt.Sprintf("tick %d", tick)}
		if !in.sample(metrics.SampleSubject(host), encode(t, s)) {
			t.Fatal("rejected")
		}
	}
	var m merger
	send("a", 0, now)
	send("b", 0, now)
	first := m.merge(now, in.snapshot(time.Time{}), 5*time.Second)
	want, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if got, _ := json.Marshal(first); !bytes.Equal(got, want) {
				t.Error("the update changed while a reader held it")
				return
			}
		}
	}()
	for tick := 1; tick <= 6; tick++ {
		at := now.Add(time.Duration(tick) * 5 * time.Second)
		send("a", tick, at) // b falls silent, then stale
		m.merge(at.Add(time.Duration(tick)*10*time.Second), in.snapshot(time.Time{}), 5*time.Second)
	}
	<-done
	if got, _ := json.Marshal(first); !bytes.Equal(got, want) {
		t.Fatalf("the update changed after later ticks:\n got %s\nwant %s", got, want)
	}
}
