package hub

import (
	"bytes"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
	"github.com/vmihailenco/msgpack/v5"
)

// recorder records what ingest hands the History and Latency plugs.
type recorder struct {
	mu      sync.Mutex
	added   []uint64 // seqs
	figures []*view.Figures
	samples int
	obs     map[string]int
}

func (r *recorder) Add(f *view.Figures) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.added = append(r.added, f.Seq)
	r.figures = append(r.figures, f)
}

// addedLen is how many samples history was given so far, for a test
// reading while the hub still runs.
func (r *recorder) addedLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.added)
}

func (r *recorder) Record(*metrics.Update) {}
func (r *recorder) Window(time.Time, string, string) (metrics.History, error) {
	return metrics.History{}, nil
}
func (r *recorder) FleetWindow(time.Time, string) (metrics.History, error) {
	return metrics.History{}, nil
}
func (r *recorder) AddSample(*metrics.Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples++
}
func (r *recorder) AddObservations(host, stage string, obs []metrics.Observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.obs == nil {
		r.obs = map[string]int{}
	}
	r.obs[host+"/"+stage] += len(obs)
}
func (r *recorder) Latencies(time.Time, time.Duration) metrics.Latencies { return metrics.Latencies{} }

func encode(t *testing.T, s *metrics.Sample) []byte {
	t.Helper()
	b, err := metrics.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIngestSamples(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	rec := &recorder{}
	in := newIngest(slog.New(slog.NewTextHandler(&logs, nil)), rec, rec)

	ts := time.Now().UnixNano()
	fresh := &metrics.Sample{Host: "gpu01", Boot: "b", Seq: 2, TS: ts}
	older := &metrics.Sample{Host: "gpu01", Boot: "b", Seq: 1, TS: ts - int64(5*time.Second)}
	noVersion, err := msgpack.Marshal(map[string]any{"h": "gpu01", "t": ts, "q": 9})
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 512)
	for i := range garbage {
		garbage[i] = byte(rand.IntN(256))
	}
	garbage[0] = 0xc1 // never valid msgpack, so the bytes cannot decode by chance

	steps := []struct {
		subject string
		body    []byte
		ok      bool
	}{
		{metrics.SampleSubject("gpu01"), encode(t, fresh), true},
		{metrics.SampleSubject("gpu01"), encode(t, older), true}, // late: history only
		{metrics.SampleSubject("x"), garbage, false},
		{metrics.SampleSubject("x"), noVersion, false},
		{metrics.SampleSubject("x"), make([]byte, metrics.MaxMessage+1), false},
		{metrics.SampleSubject("x"), encode(t, &metrics.Sample{Host: "gpu01", Boot: "b", Seq: 3, TS: ts}), false},
		{metrics.SampleSubject("x"), nil, false},
	}
	for i, st := range steps {
		if got := in.sample(st.subject, st.body); got != st.ok {
			t.Fatalf("step %d: accepted=%v, want %v", i, got, st.ok)
		}
	}

	stats := in.Stats()
	want := map[string]uint64{DropInvalid: 2, DropVersion: 1, DropTooLarge: 1, DropSubject: 1}
	if !maps.Equal(stats.Dropped, want) {
		t.Fatalf("dropped %v, want %v", stats.Dropped, want)
	}
	nan := math.NaN()
	if !in.sample(metrics.SampleSubject("nan"), encode(t, &metrics.Sample{Host: "nan", TS: ts, System: &metrics.System{CPUPercent: &nan}})) {
		t.Fatal("a sample with a NaN was rejected; only the NaN should go")
	}
	// The newest keeps the sample's figures (its host section converted),
	// not the decoded section itself.
	if got := in.snapshot(time.Time{})["nan"]; got.f.System == nil || got.f.System.CPUPercent != nil || got.s.System != nil {
		t.Fatalf("NaN kept: %+v, decoded section kept: %v", got.f.System, got.s.System != nil)
	}
	stats = in.Stats()
	if stats.Samples != 3 || stats.Late != 1 || stats.Hosts != 2 || stats.NonFinite != 1 {
		t.Fatalf("stats %+v", stats)
	}
	if got := in.snapshot(time.Time{})["gpu01"]; got.s.Seq != 2 || got.f.Seq != 2 {
		t.Fatalf("newest sample seq %d, its figures' %d: a late sample replaced a newer one", got.s.Seq, got.f.Seq)
	}
	if len(rec.added) != 3 || rec.added[1] != 1 || rec.samples != 3 {
		t.Fatalf("history got %v, latency %d samples; want every accepted sample", rec.added, rec.samples)
	}
	// One log line per cause, not per message.
	for range 100 {
		in.sample(metrics.SampleSubject("x"), garbage)
	}
	if n := strings.Count(logs.String(), "cause=invalid"); n != 1 {
		t.Fatalf("%d log lines for invalid samples, want 1 (rate-limited):\n%s", n, logs.String())
	}
	if in.Stats().Dropped[DropInvalid] != 102 {
		t.Fatalf("dropped %v", in.Stats().Dropped)
	}
	// Stats is a copy.
	stats.Dropped[DropInvalid] = 0
	if in.Stats().Dropped[DropInvalid] == 0 {
		t.Fatal("Stats shares its map with the ingest")
	}
}

func TestNewestSampleOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cur, s   metrics.Sample
		replaces bool
	}{
		{"first sample", metrics.Sample{}, metrics.Sample{Boot: "a", Seq: 1, TS: 10}, true},
		{"next seq", metrics.Sample{Boot: "a", Seq: 1, TS: 10}, metrics.Sample{Boot: "a", Seq: 2, TS: 20}, true},
		{"older seq", metrics.Sample{Boot: "a", Seq: 2, TS: 20}, metrics.Sample{Boot: "a", Seq: 1, TS: 10}, false},
		{"clock stepped back, same run", metrics.Sample{Boot: "a", Seq: 2, TS: 20}, metrics.Sample{Boot: "a", Seq: 3, TS: 5}, true},
		{"new run, later", metrics.Sample{Boot: "a", Seq: 900, TS: 20}, metrics.Sample{Boot: "b", Seq: 0, TS: 30}, true},
		{"old run replayed late", metrics.Sample{Boot: "b", Seq: 0, TS: 30}, metrics.Sample{Boot: "a", Seq: 900, TS: 20}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cur *metrics.Sample
			if tc.cur.Boot != "" {
				cur = &tc.cur
			}
			if got := newer(&tc.s, cur); got != tc.replaces {
				t.Fatalf("newer = %v, want %v", got, tc.replaces)
			}
		})
	}
}

func TestIngestForgetsHostsPastRetention(t *testing.T) {
	t.Parallel()
	in := newIngest(slog.New(slog.DiscardHandler), nil, nil)
	ts := time.Now()
	in.sample(metrics.SampleSubject("old"), encode(t, &metrics.Sample{Host: "old", TS: ts.Add(-25 * time.Hour).UnixNano()}))
	in.sample(metrics.SampleSubject("new"), encode(t, &metrics.Sample{Host: "new", TS: ts.UnixNano()}))
	snap := in.snapshot(ts.Add(-24 * time.Hour))
	if _, ok := snap["old"]; ok || snap["new"].s == nil {
		t.Fatalf("snapshot %v", snap)
	}
}

func TestIngestObservations(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	in := newIngest(slog.New(slog.DiscardHandler), nil, rec)
	ts := time.Now().UnixNano()
	one, _ := msgpack.Marshal(metrics.Observation{V: 1, TS: ts, MS: 45})
	tests := []struct {
		subject, body string
	}{
		{metrics.LatencySubject("gpu01", "pipeline"), `{"v":1,"ts":1733000000000000000,"ms":3200}`},
		{metrics.LatencySubject("gpu01", "pipeline"), `[{"v":1,"ts":1733000000000000000,"ms":1},{"v":1,"ts":1733000000000000001,"ms":2}]`},
		{metrics.LatencySubject("gpu01", "rtdetr"), string(one)},
		{metrics.LatencySubject("gpu01", "rtdetr"), `{"v":0,"ts":1,"ms":1}`},
		{metrics.LatencySubject("gpu01", "rtdetr"), `{"v":1,"ts":1,"ms":-5}`},
		{"sysperf.v1.latency.gpu01", `{"v":1,"ts":1,"ms":1}`},
		{metrics.LatencySubject("gpu01", "rtdetr"), "\xc1garbage"},
	}
	for _, tc := range tests {
		in.observations(tc.subject, []byte(tc.body))
	}
	if rec.obs["gpu01/pipeline"] != 3 || rec.obs["gpu01/rtdetr"] != 1 {
		t.Fatalf("observations passed on %v", rec.obs)
	}
	st := in.Stats()
	want := map[string]uint64{DropVersion: 1, DropInvalid: 2, DropSubject: 1}
	if st.Observations != 4 || !maps.Equal(st.ObservationsDropped, want) {
		t.Fatalf("stats %+v, want dropped %v", st, want)
	}
}
