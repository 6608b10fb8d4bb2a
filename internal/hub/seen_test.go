package hub

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/history"
	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

func TestSeenWindow(t *testing.T) {
	t.Parallel()
	s := newSeen()
	now := time.Now()
	mark := func(host, boot string, seq uint64) bool { return s.repeat(host, boot, seq, now, 0) }
	for _, c := range []struct {
		host, boot string
		seq        uint64
		want       bool
		why        string
	}{
		{"a", "b1", 10, false, "first of a run"},
		{"a", "b1", 10, true, "the same again"},
		{"a", "b1", 11, false, "the next"},
		{"a", "b1", 5, false, "an older one not seen"},
		{"a", "b1", 5, true, "that one again"},
		{"b", "b1", 10, false, "another host, same boot and seq"},
		{"a", "b2", 10, false, "another run of the host"},
		{"a", "b1", 11, true, "the run before is still recorded"},
		{"a", "b3", 1, false, "a third run"},
		{"a", "b1", 11, true, "the run seen last stays"},
		{"a", "b2", 10, false, "the run seen longest ago was replaced: unknown, let through"},
		// The window moves: what it leaves is unknown, what it reuses is
		// cleared.
		{"a", "b1", 11 + seenBits - 1, false, "the top of the window"},
		{"a", "b1", 11, true, "its bottom is still held"},
		{"a", "b1", 11 + seenBits, false, "one more moves the window up"},
		{"a", "b1", 11, false, "below the window: unknown, let through"},
		{"a", "b1", 12 + seenBits, false, "reused bit was cleared (12 is not set there)"},
		{"a", "b1", 12 + seenBits, true, "and is set now"},
		// A seq far ahead (a hostile or reset agent) clears the window,
		// and the ones it skipped are new.
		{"a", "b1", 1 << 62, false, "far ahead"},
		{"a", "b1", 1<<62 - 3, false, "skipped over"},
		{"a", "b1", 1 << 62, true, "far ahead again"},
		{"a", "b1", 12 + seenBits, false, "far below the new top: unknown"},
		{"a", "b1", ^uint64(0), false, "the largest"},
		{"a", "b1", ^uint64(0), true, "the largest again"},
		{"a", "b1", 0, false, "zero, far below"},
	} {
		if got := mark(c.host, c.boot, c.seq); got != c.want {
			t.Errorf("%s/%s/%d (%s): repeat = %v, want %v", c.host, c.boot, c.seq, c.why, got, c.want)
		}
	}
}

// TestSeenRecordIsBounded: whatever a host sends, its record keeps two
// runs of fixed size, and silent hosts are forgotten.
func TestSeenRecordIsBounded(t *testing.T) {
	t.Parallel()
	s := newSeen()
	now := time.Now()
	for i := range uint64(10000) {
		s.repeat("h", string(rune('a'+i%50)), i*977, now, time.Hour)
	}
	h := s.hosts["h"]
	if h == nil || len(s.hosts) != 1 {
		t.Fatalf("%d hosts recorded", len(s.hosts))
	}
	for _, r := range h.runs {
		if !r.used || r.boot == "" {
			t.Fatalf("run %+v", r.boot)
		}
	}
	// Another host arrives after h was silent for more than keep: h goes.
	s.repeat("g", "b", 1, now.Add(2*time.Hour), time.Hour)
	if _, ok := s.hosts["h"]; ok || len(s.hosts) != 1 {
		t.Fatalf("silent host kept: %d hosts", len(s.hosts))
	}
	// And a host is kept while it is heard from.
	s.repeat("g", "b", 2, now.Add(2*time.Hour+50*time.Minute), time.Hour)
	s.repeat("f", "b", 1, now.Add(3*time.Hour+30*time.Minute), time.Hour)
	if _, ok := s.hosts["g"]; !ok {
		t.Fatal("host heard from within keep was forgotten")
	}
}

// The record shares nothing with the message a sample was decoded from
// (DecodeOwned): a host or boot id kept as a slice of it would keep the
// whole message alive.
func TestSeenCopiesItsKeys(t *testing.T) {
	t.Parallel()
	s := newSeen()
	msg := []byte("host-1boot-1")
	host, boot := string(msg[:6]), string(msg[6:])
	s.repeat(host, boot, 1, time.Now(), 0)
	for k, h := range s.hosts {
		if k != "host-1" || h.runs[0].boot != "boot-1" {
			t.Fatalf("recorded %q/%q", k, h.runs[0].boot)
		}
	}
	if !s.repeat("host-1", "boot-1", 1, time.Now(), 0) {
		t.Fatal("not recorded")
	}
}

// TestIngestCountsADuplicateOnce: a sample that reaches ingest twice
// (stored twice in the stream) is accepted once, counted as a duplicate,
// and reaches the live view, the history and the latency windows once;
// a sample without a boot id is never taken for one.
func TestIngestCountsADuplicateOnce(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	in := newIngest(slog.New(slog.DiscardHandler), rec, rec)
	in.window, in.ahead = time.Hour, 5*time.Second
	ts := time.Now().UnixNano()
	first := encode(t, &metrics.Sample{Host: "gpu01", Boot: "b", Seq: 1, TS: ts})
	second := encode(t, &metrics.Sample{Host: "gpu01", Boot: "b", Seq: 2, TS: ts + 1})
	for i, c := range []struct {
		body []byte
		want bool
	}{{first, true}, {second, true}, {first, false}, {second, false}} {
		if got := in.sample(metrics.SampleSubject("gpu01"), c.body); got != c.want {
			t.Fatalf("message %d accepted %v, want %v", i, got, c.want)
		}
	}
	noBoot := encode(t, &metrics.Sample{Host: "gpu02", TS: ts})
	for range 2 {
		if !in.sample(metrics.SampleSubject("gpu02"), noBoot) {
			t.Fatal("a sample without a boot id was taken for a duplicate")
		}
	}
	st := in.Stats()
	if st.Samples != 4 || st.Late != 0 || st.Dropped[DropDuplicate] != 2 || len(st.Dropped) != 1 {
		t.Fatalf("stats %+v; want 4 samples, 2 duplicates", st)
	}
	if rec.samples != 4 || len(rec.added) != 4 {
		t.Fatalf("latency got %d samples, history %d; want 4 each", rec.samples, len(rec.added))
	}
	if got := in.snapshot(time.Time{})["gpu01"].s.Seq; got != 2 {
		t.Fatalf("gpu01's newest is seq %d", got)
	}
}

// TestReplayedDuplicateCountsOnce: the real stores behind ingest count a
// sample ingest sees twice (the stream held two copies: replayed at
// start, or re-sent after the stream's window) once, in the history's
// windows and in the latency tracker's inference windows, and ingest
// counts the copy as a duplicate.
func TestReplayedDuplicateCountsOnce(t *testing.T) {
	t.Parallel()
	hist := history.New()
	lat := latency.New(latency.Config{Retain: time.Hour})
	in := newIngest(slog.New(slog.DiscardHandler), hist, lat)
	now := time.Now()
	hostname := "gpu01"
	var bodies [][]byte
	for i := range 4 {
		ts := now.Add(time.Duration(i-4) * 5 * time.Second).UnixNano()
		s := &metrics.Sample{Host: hostname, Boot: "b", Seq: uint64(i), TS: ts, Interval: int64(5 * time.Second),
			System:    &metrics.System{CPUPercent: ptr(float64(10 * (i + 1)))},
			Inference: &metrics.Inference{Counters: map[string]float64{"requests": float64(100 * i)}}}
		bodies = append(bodies, encode(t, s))
	}
	// The stream's order after a lost ack re-sent past the window: seq 1
	// stored again right after itself, and all four replayed twice.
	order := []int{0, 1, 1, 2, 3, 0, 1, 2, 3}
	for _, i := range order {
		in.sample(metrics.SampleSubject(hostname), bodies[i])
	}
	if st := in.Stats(); st.Samples != 4 || st.Dropped[DropDuplicate] != 5 {
		t.Fatalf("stats %+v; want 4 samples, 5 duplicates", st)
	}
	if st := hist.Stats(); st.Added != 4 || st.Duplicates != 0 {
		t.Fatalf("history added %d, duplicates %d; want 4, 0 (ingest drops them first)", st.Added, st.Duplicates)
	}
	inc, _, ok := lat.HostIncrease(hostname, "requests", now, time.Hour)
	if !ok || inc != 300 {
		t.Fatalf("requests increase %v (ok %v), want 300", inc, ok)
	}
	// The stores alone (as before ingest dropped duplicates) count a
	// sample added twice once too: the history by its id, the latency
	// tracker by replacing the snapshot at the same stamp.
	s, err := metrics.Decode(bodies[3])
	if err != nil {
		t.Fatal(err)
	}
	f := view.Of(s)
	hist.Add(&f)
	lat.AddSample(s)
	if st := hist.Stats(); st.Added != 4 || st.Duplicates != 1 {
		t.Fatalf("history added %d, duplicates %d; want 4, 1", st.Added, st.Duplicates)
	}
	if inc, _, _ := lat.HostIncrease(hostname, "requests", now, time.Hour); inc != 300 {
		t.Fatalf("requests increase %v after a duplicate, want 300", inc)
	}
}

// TestRestoredDuplicateCountsOnce: a replayed sample the history holds,
// known by its id alone, is a duplicate the second time too.
func TestRestoredDuplicateCountsOnce(t *testing.T) {
	t.Parallel()
	in := newIngest(slog.New(slog.DiscardHandler), &coveredHistory{cover: true}, nil)
	for range 2 {
		if !in.restored("gpu01/boot-1/42/secret") {
			t.Fatal("a covered sample was not skipped")
		}
	}
	if st := in.Stats(); st.Samples != 1 || st.Late != 1 || st.Dropped[DropDuplicate] != 1 || in.handled.Load() != 2 {
		t.Fatalf("stats %+v, handled %d; want 1 sample, 1 duplicate, 2 handled", st, in.handled.Load())
	}
	// Its copy decoded later (not covered any more) is a duplicate too.
	body := encode(t, &metrics.Sample{Host: "gpu01", Boot: "boot-1", Seq: 42, TS: time.Now().UnixNano()})
	if in.sample(metrics.SampleSubject("gpu01"), body) {
		t.Fatal("the decoded copy of a restored sample was accepted")
	}
}

// BenchmarkSeenRepeat is the cost of the check per sample, 2,000 hosts
// sending in turn, and the record's heap per host.
func BenchmarkSeenRepeat(b *testing.B) {
	const hosts = 2000
	names := make([]string, hosts)
	for i := range names {
		names[i] = fmt.Sprintf("gpu%04d", i)
	}
	before := heapAlloc()
	s := newSeen()
	now := time.Now()
	for i := range hosts {
		s.repeat(names[i], "2b7e1516-28ae-d2a6", 0, now, time.Hour)
	}
	perHost := float64(heapAlloc()-before) / hosts
	i := 0
	for b.Loop() {
		if s.repeat(names[i%hosts], "2b7e1516-28ae-d2a6", uint64(1+i/hosts), now, time.Hour) {
			b.Fatal("a new sample taken for a duplicate")
		}
		i++
	}
	b.ReportMetric(perHost, "heap-B/host")
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
