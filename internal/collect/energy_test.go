package collect

import (
	"math"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

func within1pct(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: absent, want %g", what, want)
		return
	}
	if math.Abs(*got-want) > 0.01*math.Max(math.Abs(want), 1e-9) {
		t.Errorf("%s = %g, want %g (±1 %%)", what, *got, want)
	}
}

// energySample is a mock reading: three GPUs, one without an energy
// counter, with processes of three models and one nobody claims.
func energySample(ts time.Duration, e0, e1 float64, power2 float64) *metrics.Sample {
	sm := func(v float64) *float64 { return &v }
	return &metrics.Sample{
		TS: int64(ts),
		GPUs: []metrics.GPU{
			{Index: 0, UUID: "GPU-0", Energy: &e0, Processes: []metrics.Process{
				{PID: 1, Model: "qwen", SMUtil: sm(60)},
				{PID: 2, Model: "ollama", SMUtil: sm(20)},
				{PID: 3, SMUtil: sm(20)}, // no model: its share stays unattributed
			}},
			{Index: 1, UUID: "GPU-1", Energy: &e1, Processes: []metrics.Process{
				// No SM share at all: the energy is split evenly.
				{PID: 1, Model: "qwen"},
				{PID: 4, Model: "llama"},
			}},
			{Index: 2, UUID: "GPU-2", Power: &power2, Processes: []metrics.Process{
				{PID: 2, Model: "ollama", SMUtil: sm(30)},
			}},
		},
		Models: map[string]metrics.Model{"qwen": {}, "ollama": {}, "llama": {}, "rtdetr": {}},
	}
}

func TestEnergyPerModel(t *testing.T) {
	e := NewEnergy()
	first := energySample(0, 1000, 5000, 200)
	e.Apply(first)
	if first.Models["qwen"].Energy != nil {
		t.Fatal("energy from a single reading")
	}
	if c, ok := first.Models["qwen"].Counters[metrics.CounterEnergy]; !ok || c != 0 {
		t.Errorf("the running total starts at the first reading: %v, %v", c, ok)
	}
	s := energySample(5*time.Second, 3000, 6500, 200)
	e.Apply(s)
	// GPU 0: Δ 2000 J by SM share 60/20/20: qwen 1200, ollama 400, 400 unattributed.
	// GPU 1: Δ 1500 J, no SM shares: qwen 750, llama 750.
	// GPU 2: no counter: 200 W × 5 s = 1000 J, all ollama's.
	for name, want := range map[string]float64{"qwen": 1950, "ollama": 1400, "llama": 750, "rtdetr": 0} {
		m := s.Models[name]
		within1pct(t, name+" joules", m.Energy, want)
		within1pct(t, name+" watts", m.Power, want/5)
		c := m.Counters[metrics.CounterEnergy]
		within1pct(t, name+" total", &c, want)
	}

	// The next interval adds to the running total; a counter that went
	// back (driver reload) falls back to power × time when power is known.
	s3 := energySample(10*time.Second, 4000, 100, 200)
	p := 300.0
	s3.GPUs[1].Power = &p
	e.Apply(s3)
	// GPU 0: Δ 1000: qwen 600. GPU 1: 300 W × 5 s = 1500: qwen 750.
	within1pct(t, "qwen joules, second interval", s3.Models["qwen"].Energy, 1350)
	total := s3.Models["qwen"].Counters[metrics.CounterEnergy]
	within1pct(t, "qwen total", &total, 1950+1350)

	// Without any GPU measured, the figures stay absent rather than 0.
	bare := &metrics.Sample{TS: int64(15 * time.Second), Models: map[string]metrics.Model{"qwen": {}}}
	e.Apply(bare)
	if m := bare.Models["qwen"]; m.Energy != nil || m.Counters != nil {
		t.Errorf("energy without a GPU reading: %+v", m)
	}
}
