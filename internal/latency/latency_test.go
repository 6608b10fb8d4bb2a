package latency

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/sysperf/sysperf/pkg/metrics"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

const interval = 5 * time.Second

// hist builds a cumulative histogram from per-bucket (non-cumulative)
// counts over bounds, plus overflow observations above the last bound.
func hist(bounds, perBucket []float64, overflow, sum float64) metrics.Histogram {
	h := metrics.Histogram{Sum: sum}
	cum := 0.0
	for i, ub := range bounds {
		cum += perBucket[i]
		h.Buckets = append(h.Buckets, metrics.Bucket{UpperBound: ub, Count: cum})
	}
	h.Count = cum + overflow
	return h
}

func addHist(h metrics.Histogram, more metrics.Histogram) metrics.Histogram {
	out := metrics.Histogram{Count: h.Count + more.Count, Sum: h.Sum + more.Sum}
	for i := range h.Buckets {
		out.Buckets = append(out.Buckets, metrics.Bucket{UpperBound: h.Buckets[i].UpperBound, Count: h.Buckets[i].Count + more.Buckets[i].Count})
	}
	return out
}

func sample(host string, at time.Time, hists map[string]metrics.Histogram, counters map[string]float64) *metrics.Sample {
	return &metrics.Sample{V: 1, Host: host, TS: at.UnixNano(), Interval: int64(interval),
		Inference: &metrics.Inference{Histograms: hists, Counters: counters}}
}

func val(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%.6g", *p)
}

func wantStats(t *testing.T, name string, got metrics.Stats, avg, p95, p99, count string) {
	t.Helper()
	if val(got.Avg) != avg || val(got.P95) != p95 || val(got.P99) != p99 || val(got.Count) != count {
		t.Errorf("%s: avg=%s p95=%s p99=%s count=%s, want %s %s %s %s", name,
			val(got.Avg), val(got.P95), val(got.P99), val(got.Count), avg, p95, p99, count)
	}
}

var tenths = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}

func TestWindowUsesDeltasNotTotals(t *testing.T) {
	tr := New(Config{})
	zero := hist(tenths, make([]float64, 10), 0, 0)
	// Between 60 and 30 minutes ago 1000 requests took over a second
	// (5000 s in all); then 50 minutes of nothing.
	slow := hist(tenths, make([]float64, 10), 1000, 5000)
	tr.AddSample(sample("gpu01", t0.Add(-60*time.Minute), map[string]metrics.Histogram{"rtdetr": zero}, nil))
	tr.AddSample(sample("gpu01", t0.Add(-30*time.Minute), map[string]metrics.Histogram{"rtdetr": slow}, nil))
	cur := slow
	// In the last 5 minutes: 10 per 0.1 s bucket each minute, uniform 0–1 s.
	per := []float64{10, 10, 10, 10, 10, 10, 10, 10, 10, 10}
	for m := 5; m >= 0; m-- {
		if m < 5 {
			cur = addHist(cur, hist(tenths, per, 0, 50))
		}
		tr.AddSample(sample("gpu01", t0.Add(-time.Duration(m)*time.Minute), map[string]metrics.Histogram{"rtdetr": cur}, nil))
	}
	l := tr.Latencies(t0, 5*time.Minute)
	// 500 observations summing to 250 s: avg 500 ms; uniform: p95 950 ms.
	wantStats(t, "5m", l.RTDETR, "500", "950", "990", "500")
	if l.Window != "5m" {
		t.Errorf("window = %q", l.Window)
	}
	// Over 60 minutes the slow thousand dominate: p95 lands in +Inf,
	// which reads as the highest finite bound, 1 s.
	l = tr.Latencies(t0, 60*time.Minute)
	wantStats(t, "60m", l.RTDETR, "3500", "1000", "1000", "1500")
	if l.Window != "60m" {
		t.Errorf("window = %q", l.Window)
	}
	// A window longer than the history starts at the oldest snapshot:
	// what happened before it is unknown, not zero.
	wantStats(t, "90m", tr.Latencies(t0, 90*time.Minute).RTDETR, "3500", "1000", "1000", "1500")
	// 20 minutes back: the base is the -30m snapshot.
	wantStats(t, "20m", tr.Latencies(t0, 20*time.Minute).RTDETR, "500", "950", "990", "500")
}

func TestSkewedDistribution(t *testing.T) {
	tr := New(Config{})
	bounds := []float64{0.05, 0.1, 0.2, 0.5, 1}
	zero := hist(bounds, make([]float64, 5), 0, 0)
	// 80 fast, 10 at 50–100 ms, 5 at 100–200 ms, 4 at 200–500 ms, 1 at 0.5–1 s.
	after := hist(bounds, []float64{80, 10, 5, 4, 1}, 0, 3)
	tr.AddSample(sample("gpu01", t0.Add(-2*time.Minute), map[string]metrics.Histogram{"nemotron": zero}, nil))
	tr.AddSample(sample("gpu01", t0, map[string]metrics.Histogram{"nemotron": after}, nil))
	wantStats(t, "skewed", tr.Latencies(t0, 5*time.Minute).Nemotron, "30", "200", "500", "100")
}

func TestCounterReset(t *testing.T) {
	tr := New(Config{})
	one := hist(tenths, []float64{0, 0, 0, 0, 10, 0, 0, 0, 0, 0}, 0, 4.5) // ten at 0.4–0.5 s
	h := func(k float64) metrics.Histogram {
		out := metrics.Histogram{Count: one.Count * k, Sum: one.Sum * k}
		for _, b := range one.Buckets {
			out.Buckets = append(out.Buckets, metrics.Bucket{UpperBound: b.UpperBound, Count: b.Count * k})
		}
		return out
	}
	// 10 → 20 → (restart) 10 → 30 observations: the window saw 10+10+20 = 40.
	for i, k := range []float64{1, 2, 1, 3} {
		at := t0.Add(time.Duration(i-3) * time.Minute)
		tr.AddSample(sample("gpu01", at, map[string]metrics.Histogram{"rtdetr": h(k)}, map[string]float64{"images": 100 * k}))
	}
	l := tr.Latencies(t0, 5*time.Minute)
	// All 40 in 0.4–0.5 s: p95 is rank 38 of 40 inside that bucket.
	wantStats(t, "reset", l.RTDETR, "450", "495", "499", "40")
	// images: +100, reset to 100 (counts from zero), +200: 400 over 3 minutes.
	if val(l.Throughput.ImagesPerMin) != "133.333" {
		t.Errorf("images/min = %s, want 133.333", val(l.Throughput.ImagesPerMin))
	}
}

func TestEmptyWindowIsNil(t *testing.T) {
	tr := New(Config{})
	l := tr.Latencies(t0, 5*time.Minute)
	for name, st := range map[string]metrics.Stats{"rtdetr": l.RTDETR, "nemotron": l.Nemotron, "pipeline": l.Pipeline} {
		wantStats(t, "empty "+name, st, "nil", "nil", "nil", "nil")
	}
	if l.Throughput.ImagesPerMin != nil || l.Throughput.EventsPerMin != nil {
		t.Error("throughput of nothing must be nil")
	}

	// Snapshots all older than the window: nothing is known about it.
	h := hist(tenths, []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 5)
	tr.AddSample(sample("gpu01", t0.Add(-20*time.Minute), map[string]metrics.Histogram{"rtdetr": h}, map[string]float64{"events": 1}))
	tr.AddSample(sample("gpu01", t0.Add(-10*time.Minute), map[string]metrics.Histogram{"rtdetr": addHist(h, h)}, map[string]float64{"events": 2}))
	l = tr.Latencies(t0, 5*time.Minute)
	wantStats(t, "stale", l.RTDETR, "nil", "nil", "nil", "nil")
	if l.Throughput.EventsPerMin != nil {
		t.Error("stale counter must be nil")
	}

	// One snapshot in the window: still no delta to speak of.
	tr2 := New(Config{})
	tr2.AddSample(sample("gpu01", t0, map[string]metrics.Histogram{"rtdetr": h}, nil))
	wantStats(t, "single", tr2.Latencies(t0, 5*time.Minute).RTDETR, "nil", "nil", "nil", "nil")

	// Two snapshots, nothing happened between them: a measured zero count,
	// no latency figures.
	tr.AddSample(sample("gpu01", t0, map[string]metrics.Histogram{"rtdetr": addHist(h, h)}, map[string]float64{"events": 2}))
	l = tr.Latencies(t0, 5*time.Minute)
	wantStats(t, "idle", l.RTDETR, "nil", "nil", "nil", "0")
	if val(l.Throughput.EventsPerMin) != "0" {
		t.Errorf("idle events/min = %s, want 0", val(l.Throughput.EventsPerMin))
	}
}

func TestHostsAggregate(t *testing.T) {
	tr := New(Config{})
	bounds := []float64{0.1, 0.2, 0.3, 0.4}
	zero := hist(bounds, make([]float64, 4), 0, 0)
	// gpu01 is fast (50 in 0–0.1 s), gpu02 slow (50 in 0.3–0.4 s): the
	// fleet's p95 is 0.39 s, its average the mean of both.
	fast := hist(bounds, []float64{50, 0, 0, 0}, 0, 2.5)
	slow := hist(bounds, []float64{0, 0, 0, 50}, 0, 17.5)
	for _, host := range []string{"gpu01", "gpu02"} {
		tr.AddSample(sample(host, t0.Add(-time.Minute), map[string]metrics.Histogram{"rtdetr": zero}, map[string]float64{"images": 0}))
	}
	tr.AddSample(sample("gpu01", t0, map[string]metrics.Histogram{"rtdetr": fast}, map[string]float64{"images": 60}))
	tr.AddSample(sample("gpu02", t0.Add(-30*time.Second), map[string]metrics.Histogram{"rtdetr": slow}, map[string]float64{"images": 30}))
	l := tr.Latencies(t0, 5*time.Minute)
	wantStats(t, "fleet", l.RTDETR, "200", "390", "398", "100")
	// 60/min + 30 per half minute = 120/min.
	if val(l.Throughput.ImagesPerMin) != "120" {
		t.Errorf("images/min = %s", val(l.Throughput.ImagesPerMin))
	}
}

func TestObservations(t *testing.T) {
	tr := New(Config{})
	var obs []metrics.Observation
	for i := 1; i <= 100; i++ {
		obs = append(obs, metrics.Observation{V: 1, TS: t0.Add(-time.Duration(i) * time.Second).UnixNano(), MS: float64(i)})
	}
	// Outside the window, and bad values: ignored.
	obs = append(obs, metrics.Observation{V: 1, TS: t0.Add(-time.Hour).UnixNano(), MS: 1e6},
		metrics.Observation{V: 1, TS: t0.Add(time.Second).UnixNano(), MS: 1e6},
		metrics.Observation{V: 1, TS: t0.UnixNano(), MS: -1})
	tr.AddObservations("gpu01", "pipeline", obs[:50])
	tr.AddObservations("gpu01", "pipeline", obs[50:])
	l := tr.Latencies(t0, 5*time.Minute)
	wantStats(t, "pipeline", l.Pipeline, "50.5", "95.05", "99.01", "100")
	wantStats(t, "rtdetr untouched", l.RTDETR, "nil", "nil", "nil", "nil")
	// The window is (now-w, now]: 30 s back holds 1..29, not the one
	// exactly at its start.
	wantStats(t, "30s", tr.Latencies(t0, 30*time.Second).Pipeline, "15", "27.6", "28.72", "29")
}

func TestSourcePreference(t *testing.T) {
	tr := New(Config{})
	zero := hist(tenths, make([]float64, 10), 0, 0)
	h := hist(tenths, []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 10}, 0, 9.5) // ten at 0.9–1 s
	for _, role := range []string{"rtdetr", "pipeline"} {
		tr.AddSample(sample("gpu01", t0.Add(-time.Minute), map[string]metrics.Histogram{role: zero}, nil))
	}
	tr.AddSample(sample("gpu01", t0, map[string]metrics.Histogram{"rtdetr": h, "pipeline": h}, nil))
	o := []metrics.Observation{{V: 1, TS: t0.Add(-time.Second).UnixNano(), MS: 10}}
	tr.AddObservations("gpu01", "rtdetr", o)
	tr.AddObservations("gpu01", "pipeline", o)
	tr.AddObservations("gpu01", "nemotron", o)
	l := tr.Latencies(t0, 5*time.Minute)
	wantStats(t, "rtdetr prefers its histogram", l.RTDETR, "950", "995", "999", "10")
	wantStats(t, "pipeline prefers observations", l.Pipeline, "10", "10", "10", "1")
	wantStats(t, "nemotron falls back to observations", l.Nemotron, "10", "10", "10", "1")
}

func TestOutOfOrderAndBounds(t *testing.T) {
	tr := New(Config{MaxSnapshots: 50, MaxObservations: 10})
	zero := hist(tenths, make([]float64, 10), 0, 0)
	h := hist(tenths, []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 10}, 0, 9.5)
	// A backlog replayed late: the newer sample first.
	tr.AddSample(sample("gpu01", t0, map[string]metrics.Histogram{"rtdetr": h}, nil))
	tr.AddSample(sample("gpu01", t0.Add(-time.Minute), map[string]metrics.Histogram{"rtdetr": zero}, nil))
	// A redelivered sample replaces, not duplicates.
	tr.AddSample(sample("gpu01", t0, map[string]metrics.Histogram{"rtdetr": h}, nil))
	wantStats(t, "out of order", tr.Latencies(t0, 5*time.Minute).RTDETR, "950", "995", "999", "10")

	for i := range 200 {
		tr.AddSample(sample("gpu02", t0.Add(time.Duration(i)*interval), map[string]metrics.Histogram{"rtdetr": zero}, map[string]float64{"images": 1}))
	}
	var os []metrics.Observation
	for i := range 100 {
		os = append(os, metrics.Observation{V: 1, TS: t0.Add(time.Duration(i) * time.Millisecond).UnixNano(), MS: float64(i)})
	}
	tr.AddObservations("gpu02", "pipeline", os)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	hs := tr.hosts["gpu02"]
	if n := hs.hist["rtdetr"].len(); n != 50 {
		t.Errorf("snapshots kept = %d, want the cap 50", n)
	}
	if n := len(hs.counters["images"].all()); n != 50 {
		t.Errorf("counter points kept = %d, want 50", n)
	}
	if n := len(hs.obs["pipeline"]); n != 10 || hs.obs["pipeline"][0].MS != 90 {
		t.Errorf("observations kept = %d (first %v), want the newest 10", n, hs.obs["pipeline"][0].MS)
	}
	if r := hs.hist["rtdetr"]; len(r.layouts) != 1 || len(r.vals) > 2*50*len(r.layouts[0])+64 {
		t.Errorf("%d layouts and %d counts kept for 50 snapshots of one layout", len(r.layouts), len(r.vals))
	}
}

func TestRetention(t *testing.T) {
	tr := New(Config{Retain: 10 * time.Minute})
	zero := hist(tenths, make([]float64, 10), 0, 0)
	for i := range 30 {
		tr.AddSample(sample("gpu01", t0.Add(time.Duration(i)*time.Minute), map[string]metrics.Histogram{"rtdetr": zero}, nil))
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r := tr.hosts["gpu01"].hist["rtdetr"]
	if r.len() != 11 || r.at(0).ts != t0.Add(19*time.Minute).UnixNano() {
		t.Fatalf("kept %d snapshots from %v", r.len(), time.Unix(0, r.at(0).ts).UTC())
	}
}

func TestForgetsGoneHostsAndCapsStages(t *testing.T) {
	tr := New(Config{Retain: 10 * time.Minute, MaxStages: 2})
	o := func(at time.Time) []metrics.Observation {
		return []metrics.Observation{{V: 1, TS: at.UnixNano(), MS: 1}}
	}
	tr.AddObservations("gone", "pipeline", o(t0.Add(-20*time.Minute)))
	tr.AddObservations("here", "pipeline", o(t0))
	tr.AddObservations("here", "rtdetr", o(t0))
	tr.AddObservations("here", "made-up", o(t0)) // over the cap: dropped
	tr.Latencies(t0, 5*time.Minute)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if _, ok := tr.hosts["gone"]; ok {
		t.Error("a host silent for longer than the retention is kept")
	}
	if st := tr.hosts["here"].obs; len(st) != 2 || st["made-up"] != nil {
		t.Errorf("stages kept: %v", st)
	}
}

func TestBadHistogramsIgnored(t *testing.T) {
	tr := New(Config{})
	unsorted := metrics.Histogram{Count: 2, Buckets: []metrics.Bucket{{UpperBound: 1, Count: 1}, {UpperBound: 0.5, Count: 2}}}
	tr.AddSample(sample("gpu01", t0, map[string]metrics.Histogram{"rtdetr": unsorted}, nil))
	tr.AddSample(nil)
	tr.AddSample(&metrics.Sample{Host: "gpu01", TS: 1})
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.hosts["gpu01"].hist["rtdetr"].len() != 0 {
		t.Fatal("an unsorted histogram must not be kept")
	}
}

// TestInfiniteHistogramsIgnored: a snapshot with an infinite count, sum
// or bucket (an exporter that observed +Inf) must not reach the figures:
// an infinite average cannot be encoded as JSON, so it would cost the hub
// its whole update, not just this section.
func TestInfiniteHistogramsIgnored(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		name string
		edit func(*metrics.Histogram)
	}{
		{"sum +Inf", func(h *metrics.Histogram) { h.Sum = inf }},
		{"sum -Inf", func(h *metrics.Histogram) { h.Sum = -inf }},
		{"count +Inf", func(h *metrics.Histogram) { h.Count = inf }},
		{"bucket count +Inf", func(h *metrics.Histogram) { h.Buckets[9].Count = inf }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(Config{})
			zero := hist(tenths, make([]float64, 10), 0, 0)
			ten := hist(tenths, []float64{0, 0, 10, 0, 0, 0, 0, 0, 0, 0}, 0, 2.5)
			bad := addHist(ten, ten)
			tc.edit(&bad)
			for i, h := range []metrics.Histogram{zero, ten, bad} {
				tr.AddSample(sample("gpu01", t0.Add(time.Duration(i)*interval), map[string]metrics.Histogram{"rtdetr": h}, nil))
			}
			got := tr.Latencies(t0.Add(2*interval), 5*time.Minute)
			wantStats(t, "rtdetr", got.RTDETR, "250", "295", "299", "10")
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("the section does not encode: %v", err)
			}
		})
	}
}

// 8 hosts × 3 roles × an hour of 5 s snapshots, the 60 m window walks all
// of them.
func BenchmarkLatencies(b *testing.B) {
	tr := New(Config{})
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	per := []float64{1, 2, 5, 10, 20, 5, 3, 2, 1, 1, 0, 0, 0}
	step := hist(bounds, per, 1, 10)
	for h := range 8 {
		cur := map[string]metrics.Histogram{"rtdetr": step, "nemotron": step, "pipeline": step}
		for i := 720; i >= 0; i-- {
			at := t0.Add(-time.Duration(i) * interval)
			tr.AddSample(sample(fmt.Sprintf("gpu%02d", h), at, cur, map[string]float64{"images": float64(720 - i), "events": float64(720-i) / 10}))
			next := map[string]metrics.Histogram{}
			for r, v := range cur {
				next[r] = addHist(v, step)
			}
			cur = next
		}
	}
	for _, w := range []time.Duration{5 * time.Minute, 60 * time.Minute} {
		b.Run(formatWindow(w), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l := tr.Latencies(t0, w)
				if l.RTDETR.P95 == nil {
					b.Fatal("no p95")
				}
			}
		})
	}
}

func BenchmarkAddSample(b *testing.B) {
	tr := New(Config{})
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	h := hist(bounds, []float64{1, 2, 5, 10, 20, 5, 3, 2, 1, 1, 0, 0, 0}, 1, 10)
	m := map[string]metrics.Histogram{"rtdetr": h, "nemotron": h, "pipeline": h}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tr.AddSample(sample("gpu01", t0.Add(time.Duration(i)*interval), m, map[string]float64{"images": float64(i)}))
		i++
	}
}

// TestRunCompactsAcrossLayouts: a run keeps its snapshots' counts in one
// array that drops what pruning left behind, and forgets a bucket layout
// no snapshot has any more; the figures read through it stay those of
// the snapshots kept, including one replayed out of order.
func TestRunCompactsAcrossLayouts(t *testing.T) {
	tr := New(Config{MaxSnapshots: 20})
	old := []float64{0.5, 1}
	step := hist(tenths, []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 10}, 0, 9.5)
	for i := range 100 {
		h := hist(old, []float64{float64(i), 0}, 0, 0)
		tr.AddSample(sample("gpu01", t0.Add(time.Duration(i)*interval), map[string]metrics.Histogram{"rtdetr": h}, nil))
	}
	// The server restarts with a new layout: 40 snapshots of it, each 10
	// requests of 0.95 s more, the 31st replayed last.
	cum := hist(tenths, make([]float64, 10), 0, 0)
	var late metrics.Histogram
	for i := range 40 {
		cum = addHist(cum, step)
		if i == 30 {
			late = cum
			continue
		}
		tr.AddSample(sample("gpu01", t0.Add(time.Duration(100+i)*interval), map[string]metrics.Histogram{"rtdetr": cum}, nil))
	}
	tr.AddSample(sample("gpu01", t0.Add(130*interval), map[string]metrics.Histogram{"rtdetr": late}, nil))
	end := t0.Add(139 * interval)
	// The 20 snapshots kept span 19 steps of 10 requests.
	wantStats(t, "after compaction", tr.HostStats("gpu01", "rtdetr", end, time.Hour), "950", "995", "999", "190")
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r := tr.hosts["gpu01"].hist["rtdetr"]
	if r.len() != 20 || len(r.layouts) != 1 || len(r.layouts[0]) != len(tenths) {
		t.Fatalf("%d snapshots, layouts %v", r.len(), r.layouts)
	}
	if len(r.vals) > 2*20*len(tenths)+64 {
		t.Fatalf("%d counts kept for 20 snapshots of %d buckets", len(r.vals), len(tenths))
	}
}

// TestKeepsNoMessageBuffer: the hub decodes each sample in place of its
// message, so its names are substrings of that message; the tracker
// keeps copies, not the first message of every host and series.
func TestKeepsNoMessageBuffer(t *testing.T) {
	msg := []byte("gpu01 rtdetr llm ttft")
	part := func(from, to int) string { return unsafe.String(&msg[from], to-from) }
	h := hist(tenths, make([]float64, 10), 0, 0)
	s := sample(part(0, 5), t0, map[string]metrics.Histogram{part(6, 12): h}, nil)
	s.Models = map[string]metrics.Model{part(13, 16): {Status: "healthy", Histograms: map[string]metrics.Histogram{part(17, 21): h}}}
	tr := New(Config{})
	tr.AddSample(s)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var names []string
	for host, hs := range tr.hosts {
		names = append(names, host)
		for role := range hs.hist {
			names = append(names, role)
		}
		for model, roles := range hs.models {
			names = append(names, model)
			for k := range roles {
				names = append(names, k)
			}
		}
	}
	lo := uintptr(unsafe.Pointer(&msg[0]))
	for _, n := range names {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(n))); p >= lo && p < lo+uintptr(len(msg)) {
			t.Errorf("%q is kept in the message's buffer", n)
		}
	}
	if len(names) != 5 {
		t.Fatalf("names kept: %q", names)
	}
}

// TestTimelineKeepsWhatASortedRunWould: a timeline drops its oldest
// entries without moving the rest each time; what it holds after each
// insert must be what a plain sorted run, pruned by the same rules,
// holds: late and repeated times included.
func TestTimelineKeepsWhatASortedRunWould(t *testing.T) {
	const retain, limit = 400, 50
	ts := func(p point) int64 { return p.ts }
	var l timeline[point]
	var want []point
	for i := range 3000 {
		at := int64(i)
		switch {
		case i%7 == 3:
			at -= 30 // late
		case i%11 == 5:
			at -= 2 // a time already held, or near it
		}
		x := point{ts: at, v: float64(i)}
		l.insert(x, ts, retain, limit)
		j := slices.IndexFunc(want, func(p point) bool { return p.ts >= at })
		switch {
		case j < 0:
			want = append(want, x)
		case want[j].ts == at:
			want[j] = x
		default:
			want = slices.Insert(want, j, x)
		}
		cutoff := want[len(want)-1].ts - retain
		for len(want) > 0 && (want[0].ts < cutoff || len(want) > limit) {
			want = want[1:]
		}
		if got := l.all(); !slices.Equal(got, want) {
			t.Fatalf("after %d inserts: %v, want %v", i+1, got, want)
		}
	}
	if cap(l.buf) > 2*limit {
		t.Fatalf("%d entries' room kept for %d", cap(l.buf), limit)
	}
}
