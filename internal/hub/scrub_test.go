package hub

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

func TestScrubRemovesNonFiniteNumbers(t *testing.T) {
	t.Parallel()
	nan, inf := math.NaN(), math.Inf(1)
	s := &metrics.Sample{
		Host: "h",
		System: &metrics.System{
			CPUPercent: &nan,
			Load1:      f64(0.5),
			PerCore:    []float64{1, nan},
		},
		GPUs: []metrics.GPU{{Util: &inf, Temp: f64(40), Processes: []metrics.Process{{SMUtil: &nan}}}},
		Models: map[string]metrics.Model{"nemotron": {
			Status: "healthy",
			Gauges: map[string]float64{"llamacpp:tokens_per_second": nan, "llamacpp:requests_processing": 1},
			Extra:  map[string]any{"gpu_utilization": inf, "nested": map[string]any{"x": nan, "y": "ok"}},
		}},
		Inference: &metrics.Inference{Histograms: map[string]metrics.Histogram{"rtdetr": {Count: 3, Sum: nan}}},
	}
	if n := scrub(s); n != 8 {
		t.Fatalf("scrubbed %d values, want 8", n)
	}
	m := s.Models["nemotron"]
	switch {
	case s.System.CPUPercent != nil, *s.System.Load1 != 0.5, s.System.PerCore != nil:
		t.Fatalf("system %+v", s.System)
	case s.GPUs[0].Util != nil, *s.GPUs[0].Temp != 40, s.GPUs[0].Processes[0].SMUtil != nil:
		t.Fatalf("gpu %+v", s.GPUs[0])
	case len(m.Gauges) != 1 || m.Gauges["llamacpp:requests_processing"] != 1:
		t.Fatalf("gauges %v", m.Gauges)
	case len(m.Extra) != 1 || len(m.Extra["nested"].(map[string]any)) != 1:
		t.Fatalf("extra %v", m.Extra)
	case s.Inference.Histograms["rtdetr"].Sum != 0 || s.Inference.Histograms["rtdetr"].Count != 3:
		t.Fatalf("histogram %+v", s.Inference.Histograms["rtdetr"])
	}

	u := merge(now, map[string]*metrics.Sample{"h": s}, 0)
	if _, err := json.Marshal(u); err != nil {
		t.Fatalf("update of a scrubbed sample does not encode: %v", err)
	}
	u.Inference.RTDETR.P95 = &nan
	if n := scrub(&u); n != 1 || u.Inference.RTDETR.P95 != nil {
		t.Fatalf("update scrub: %d, p95 %v", n, u.Inference.RTDETR.P95)
	}
}
