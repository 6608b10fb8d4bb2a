package hub

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Samples lose their NaN and ±Inf at decode (pkg/metrics tests what
// becomes of each); the update built from them encodes, and scrub still
// clears what the hub's own figures may bring.
func TestScrubRemovesNonFiniteNumbers(t *testing.T) {
	t.Parallel()
	nan, inf := math.NaN(), math.Inf(1)
	s := withGPU(sample("h", 0), metrics.GPU{Util: &inf, Temp: f64(40), Processes: []metrics.Process{{SMUtil: &nan}}})
	s.System = &metrics.System{CPUPercent: &nan, Load1: f64(0.5), PerCore: []float64{1, nan}}
	s.Models = map[string]metrics.Model{"nemotron": {
		Status: "healthy",
		Gauges: map[string]float64{"llamacpp:tokens_per_second": nan},
		Extra:  map[string]any{"gpu_utilization": inf},
	}}
	b, err := metrics.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := metrics.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.NonFinite() != 6 {
		t.Fatalf("decode removed %d values, want 6", got.NonFinite())
	}
	u := merge(now, map[string]*metrics.Sample{"h": got}, 0)
	if _, err := json.Marshal(u); err != nil {
		t.Fatalf("update of a decoded sample does not encode: %v", err)
	}
	if n := scrub(&u); n != 0 {
		t.Fatalf("scrub found %d values in an update of finite samples", n)
	}
	u.Inference.RTDETR.P95 = &nan
	u.Host.Load1 = &inf
	if n := scrub(&u); n != 2 || u.Inference.RTDETR.P95 != nil || u.Host.Load1 != nil {
		t.Fatalf("update scrub: %d, p95 %v", n, u.Inference.RTDETR.P95)
	}
	if _, err := json.Marshal(u); err != nil {
		t.Fatalf("scrubbed update does not encode: %v", err)
	}
}

// scrubUpdate walks what the sources added (here a Prometheus GPU after
// the agents' and a database figure) and leaves the agents' GPUs and hosts,
// which Decode made finite and the merger shares with later updates, to
// themselves.
func TestScrubUpdateSkipsTheAgentsParts(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	var m merger
	u := m.merge(now, figured(map[string]*metrics.Sample{"h": withGPU(sample("h", 0), a5500(0, gib))}), 0)
	agent := len(u.GPUs)
	u.GPUs = append(u.GPUs, metrics.GPUView{Host: "prom", Utilization: &nan})
	u.Databases.Redis.HitRatio = &nan
	if n := scrubUpdate(&u, agent); n != 2 || u.GPUs[agent].Utilization != nil || u.Databases.Redis.HitRatio != nil {
		t.Fatalf("scrubUpdate removed %d; prometheus GPU %v, redis %v", n, u.GPUs[agent].Utilization, u.Databases.Redis.HitRatio)
	}
	if len(u.GPUs) != agent+1 || len(u.Hosts) != 1 || u.GPUs[0].Utilization == nil {
		t.Fatalf("scrubUpdate changed the agents' parts: %d GPUs, %d hosts", len(u.GPUs), len(u.Hosts))
	}
}
