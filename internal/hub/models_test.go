package hub

import (
	"math"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/pkg/metrics"
)

func near(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: absent, want %g", what, want)
		return
	}
	if math.Abs(*got-want) > 0.01*math.Max(math.Abs(want), 1e-9) {
		t.Errorf("%s = %g, want %g (±1 %%)", what, *got, want)
	}
}

func entry(t *testing.T, u metrics.Update, host, name string) metrics.ModelEntry {
	t.Helper()
	for _, e := range u.Models {
		if e.Host == host && e.Name == name {
			return e
		}
	}
	t.Fatalf("no model %s/%s in %+v", host, name, u.Models)
	return metrics.ModelEntry{}
}

// updateAt merges the newest of samples and applies the windows of a
// tracker fed all of them, as the hub's loop does.
func updateAt(now time.Time, samples ...*metrics.Sample) metrics.Update {
	lat := latency.New(latency.Config{})
	newest := map[string]*metrics.Sample{}
	for _, s := range samples {
		lat.AddSample(s)
		newest[s.Host] = s
	}
	u := merge(now, newest, 5*time.Second)
	applyLatency(&u, lat, now, 5*time.Minute)
	applyModelWindows(&u, lat, now, 5*time.Minute)
	return u
}

// Energy per model and per token, end to end: the agent's estimator on a
// mock GPU with known energy deltas and SM shares, the hub's windows over
// its totals.
func TestModelEnergyPerToken(t *testing.T) {
	t0 := time.Unix(1_767_268_800, 0)
	est := collect.NewEnergy()
	var samples []*metrics.Sample
	for i, c := range []struct{ energy, tokens float64 }{{0, 0}, {2000, 1000}, {4000, 2500}} {
		e := 50_000 + c.energy
		e1 := 9_000 + c.energy/4
		s := &metrics.Sample{
			Host: "gpu-1", TS: t0.Add(time.Duration(i) * 5 * time.Second).UnixNano(), Interval: int64(5 * time.Second),
			GPUs: []metrics.GPU{{Index: 0, UUID: "GPU-0", Energy: &e, Processes: []metrics.Process{
				{PID: 1, Model: "qwen", SMUtil: ptrF(75)},
				{PID: 2, Model: "ollama", SMUtil: ptrF(25)},
			}}, {Index: 1, UUID: "GPU-1", Energy: &e1, Processes: []metrics.Process{{PID: 3, Model: "rtdetr", SMUtil: ptrF(40)}}}},
			Models: map[string]metrics.Model{
				"qwen":   {Status: "healthy", Kind: "vllm", Counters: map[string]float64{metrics.CounterGenTokens: c.tokens}},
				"ollama": {Status: "healthy", Kind: "ollama"},
				"rtdetr": {Status: "healthy", Kind: "rtdetr"},
			},
			Inference: &metrics.Inference{Counters: map[string]float64{metrics.RoleImages: c.tokens / 10}},
		}
		est.Apply(s)
		samples = append(samples, s)
	}
	u := updateAt(t0.Add(10*time.Second), samples...)
	q := entry(t, u, "gpu-1", "qwen")
	if q.Energy == nil || !q.Energy.Estimate {
		t.Fatalf("qwen energy = %+v", q.Energy)
	}
	// Each interval: 2000 J × 75/(75+25) = 1500 J over 5 s.
	near(t, "interval joules", q.Energy.IntervalJoules, 1500)
	near(t, "interval watts", q.Energy.IntervalWatts, 300)
	// Window: 2 × 1500 J over 10 s; 2500 tokens generated meanwhile.
	near(t, "window joules", q.Energy.WindowJoules, 3000)
	near(t, "window watts", q.Energy.WindowWatts, 300)
	near(t, "joules per token", q.Energy.JoulesPerToken, 1.2)
	near(t, "tokens/s", q.GenTokensPerS, 250)
	o := entry(t, u, "gpu-1", "ollama")
	// The detector alone on GPU 1: 500 J an interval, 250 images counted in
	// the seed's inference section over the window.
	r := entry(t, u, "gpu-1", "rtdetr")
	near(t, "rtdetr window joules", r.Energy.WindowJoules, 1000)
	near(t, "rtdetr joules per image", r.Energy.JoulesPerImage, 4)
	near(t, "ollama window joules", o.Energy.WindowJoules, 1000)
	if o.Energy.JoulesPerToken != nil {
		t.Errorf("ollama counts no tokens, yet J/token = %v", *o.Energy.JoulesPerToken)
	}
}

// Latency percentiles per model over the window, worked out by hand from
// two snapshots of the server's histograms; Triton's averages from its
// time counters; the seed's sections unchanged beside the list.
func TestModelWindows(t *testing.T) {
	t0 := time.Unix(1_767_268_800, 0)
	hist := func(count, sum float64, b ...float64) metrics.Histogram {
		h := metrics.Histogram{Count: count, Sum: sum}
		for i := 0; i+1 < len(b); i += 2 {
			h.Buckets = append(h.Buckets, metrics.Bucket{UpperBound: b[i], Count: b[i+1]})
		}
		return h
	}
	sample := func(i int, ttft metrics.Histogram, reqs, busy float64) *metrics.Sample {
		return &metrics.Sample{
			Host: "gpu-1", TS: t0.Add(time.Duration(i) * 5 * time.Second).UnixNano(), Interval: int64(5 * time.Second),
			Models: map[string]metrics.Model{
				"qwen": {Status: "healthy", Kind: "vllm", Model: "Qwen/Qwen3-8B", KVCache: ptrF(82), Waiting: ptrF(6),
					Histograms: map[string]metrics.Histogram{metrics.HistTTFT: ttft}},
				"triton": {Status: "healthy", Kind: "triton",
					Counters: map[string]float64{metrics.CounterRequests: reqs, metrics.CounterLatencySum: busy}},
				"rtdetr":   {Status: "healthy", Kind: "rtdetr", Model: "rtdetr_r50vd"},
				"nemotron": {Status: "loading", Reason: "Loading model"},
			},
		}
	}
	u := updateAt(t0.Add(5*time.Second),
		sample(0, hist(10, 1, 0.05, 4, 0.1, 9, 0.25, 10), 300, 9),
		// +40 requests: 10 ≤ 50 ms, 15 more ≤ 100 ms, 15 more ≤ 250 ms; +3.2 s.
		sample(1, hist(50, 4.2, 0.05, 14, 0.1, 34, 0.25, 50), 1500, 45))

	q := entry(t, u, "gpu-1", "qwen")
	// Rank 0.95 × 40 = 38 falls in (0.1, 0.25], 25 below it and 15 in it:
	// 0.1 + (38−25)/15 × 0.15 = 0.23 s.
	near(t, "TTFT p95 ms", q.TTFT.P95, 230)
	near(t, "TTFT avg ms", q.TTFT.Avg, 80) // 3.2 s / 40
	near(t, "KV %", q.KVCachePercent, 82)
	if q.Latency.Count != nil || q.Kind != "vllm" || q.Model != "Qwen/Qwen3-8B" {
		t.Errorf("qwen entry = %+v", q)
	}
	tr := entry(t, u, "gpu-1", "triton")
	near(t, "Triton avg ms", tr.Latency.Avg, 30) // (45 − 9) s / (1500 − 300) requests
	near(t, "Triton requests/s", tr.RequestsPerS, 240)
	if tr.Latency.P95 != nil {
		t.Error("a p95 from counters")
	}
	if n := entry(t, u, "gpu-1", "nemotron"); n.Kind != "llamacpp" || n.Status != "loading" {
		t.Errorf("nemotron entry = %+v", n)
	}
	if u.AIModels.RTDETR.Model != "rtdetr_r50vd" || u.AIModels.Nemotron.Status != "loading" {
		t.Errorf("seed sections changed: %+v", u.AIModels)
	}
	if len(u.Models) != 4 || u.Models[0].Name != "nemotron" || u.Models[3].Name != "triton" {
		t.Errorf("models not listed by name: %+v", u.Models)
	}
}
