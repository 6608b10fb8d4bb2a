package collect

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// BenchmarkModelServers is one collection of four model servers (vLLM,
// SGLang, TGI and Ollama, each answering its documented exposition over
// loopback HTTP) and the energy split over 8 GPUs with 40 processes: the
// model servers' share of an agent tick.
func BenchmarkModelServers(b *testing.B) {
	mk := func(kind, fixture string) ModelSpec {
		body := readTestdata(b, fixture)
		mux := http.NewServeMux()
		mux.HandleFunc("/health", serve(200, ""))
		mux.HandleFunc("/info", serve(200, `{"model_id":"m"}`))
		mux.HandleFunc("/metrics", serve(200, body))
		mux.HandleFunc("/api/ps", serve(200, body))
		srv := httptest.NewServer(mux)
		b.Cleanup(srv.Close)
		return ModelSpec{Kind: kind, Name: kind, URL: srv.URL}
	}
	specs := []ModelSpec{
		mk(metrics.KindVLLM, "vllm_v0.10_metrics.txt"),
		mk(metrics.KindSGLang, "sglang_metrics.txt"),
		mk(metrics.KindTGI, "tgi_metrics.txt"),
		mk(metrics.KindOllama, "ollama_ps.json"),
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
