package collect

import (
	"context"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/collect/modelstub"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// BenchmarkModelServers is one collection of four model servers (vLLM,
// SGLang, TGI and Ollama, each answering its documented exposition over
// loopback HTTP) and the energy split over 8 GPUs with 40 processes: the
// model servers' share of an agent tick.
func BenchmarkModelServers(b *testing.B) {
	var specs []ModelSpec
	for _, d := range modelstub.Documented {
		specs = append(specs, ModelSpec{Kind: d.Kind, Name: d.Kind, URL: modelstub.Serve(b, "testdata/"+d.File)})
	}
	var cs []Collector
	for _, s := range specs {
		c, err := NewModel(s, nil)
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	e := NewEnergy()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s := &metrics.Sample{TS: int64(i) * int64(5*time.Second)}
		for _, c := range cs {
			if err := c.Collect(context.Background(), s); err != nil {
				b.Fatal(err)
			}
		}
		for g := range 8 {
			energy, sm := float64(i*1000), 10.0
			gpu := metrics.GPU{Index: g, UUID: "GPU-" + string(rune('a'+g)), Energy: &energy}
			for p := range 5 {
				gpu.Processes = append(gpu.Processes, metrics.Process{PID: uint32(g*5 + p), Model: specs[p%4].Name, SMUtil: &sm})
			}
			s.GPUs = append(s.GPUs, gpu)
		}
		e.Apply(s)
		if s.Models["vllm"].KVCache == nil {
			b.Fatal("no figures")
		}
	}
}
