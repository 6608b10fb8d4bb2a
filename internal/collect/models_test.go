package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

func ptrF(v float64) *float64 { return &v }

func hist(count, sum float64, buckets ...float64) metrics.Histogram {
	h := metrics.Histogram{Count: count, Sum: sum, Buckets: []metrics.Bucket{}}
	for i := 0; i+1 < len(buckets); i += 2 {
		h.Buckets = append(h.Buckets, metrics.Bucket{UpperBound: buckets[i], Count: buckets[i+1]})
	}
	return h
}

// assertClose compares two values through their JSON form, numbers to a
// relative 1e-9 (the expositions' decimal sums are not exact in binary).
func assertClose(t *testing.T, got, want any) {
	t.Helper()
	var g, w any
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	_ = json.Unmarshal(gb, &g)
	_ = json.Unmarshal(wb, &w)
	if path, ok := closeJSON(g, w, ""); !ok {
		t.Errorf("differs at %s\n got %s\nwant %s", path, gb, wb)
	}
}

func closeJSON(g, w any, path string) (string, bool) {
	switch wv := w.(type) {
	case float64:
		gv, ok := g.(float64)
		if !ok || math.Abs(gv-wv) > 1e-9*math.Max(1, math.Abs(wv)) {
			return path, false
		}
		return "", true
	case map[string]any:
		gm, ok := g.(map[string]any)
		if !ok || len(gm) != len(wv) {
			return path, false
		}
		for k := range wv {
			if p, ok := closeJSON(gm[k], wv[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		gs, ok := g.([]any)
		if !ok || len(gs) != len(wv) {
			return path, false
		}
		for i := range wv {
			if p, ok := closeJSON(gs[i], wv[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	}
	return path, g == w
}

func collectSpec(t *testing.T, spec ModelSpec) metrics.Model {
	t.Helper()
	c, err := NewModel(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != spec.Name {
		t.Errorf("Name() = %q, want %q", c.Name(), spec.Name)
	}
	var s metrics.Sample
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Collect(ctx, &s); err != nil {
		t.Fatal(err)
	}
	m, ok := s.Models[spec.Name]
	if !ok {
		t.Fatalf("no model %q in %v", spec.Name, s.Models)
	}
	return m
}

// Each server is fed the exposition its documentation shows (names,
// labels, HELP and TYPE lines) and every figure is checked against the
// sum worked out by hand in the comment beside it.
func TestPromServersFigureForFigure(t *testing.T) {
	tgiNotes := []string{"TGI exports no time-to-first-token histogram", "TGI exports no KV-cache gauge"}
	tritonLatency := "Triton counts request time, it keeps no latency histogram: average latency only, no p95"
	tritonNotes := []string{tritonLatency, "Triton exports no KV-cache gauge of its own, only a TensorRT-LLM model's block metrics give one"}
	tests := []struct {
		name, kind, fixture, health, model string
		want                               metrics.Model
	}{
		{
			name: "vLLM 0.6 (gpu_cache_usage_perc, time_per_output_token_seconds)", kind: metrics.KindVLLM,
			fixture: "vllm_v0.6_metrics.txt", health: "/health",
			want: metrics.Model{
				Status: "healthy", Kind: "vllm", Model: "meta-llama/Llama-3.1-8B-Instruct",
				Waiting: ptrF(2), Running: ptrF(3),
				KVCache: ptrF(43.75), // 0.4375 × 100
				Counters: map[string]float64{
					"prompt_tokens": 51234, "generation_tokens": 20480,
					"requests": 100, // finished_reason stop 90 + length 10
				},
				Histograms: map[string]metrics.Histogram{
					"ttft": hist(100, 6.1, 0.02, 10, 0.04, 40, 0.06, 70, 0.08, 90, 0.1, 96, 0.25, 100),
					"itl":  hist(2000, 36, 0.01, 500, 0.025, 1800, 0.05, 2000),
					"e2e":  hist(100, 290, 1, 20, 2.5, 60, 5, 95, 10, 100),
				},
			},
		},
		{
			name: "vLLM 0.10, two engines (kv_cache_usage_perc, inter_token_latency_seconds)", kind: metrics.KindVLLM,
			fixture: "vllm_v0.10_metrics.txt", health: "/health",
			want: metrics.Model{
				Status: "healthy", Kind: "vllm", Model: "Qwen/Qwen3-8B",
				Waiting: ptrF(6),  // 6 + 0
				Running: ptrF(5),  // 4 + 1
				KVCache: ptrF(82), // the fuller engine: max(0.82, 0.31) × 100
				Counters: map[string]float64{
					"prompt_tokens": 1500, "generation_tokens": 4000, "requests": 40,
				},
				Histograms: map[string]metrics.Histogram{
					// engine 0 + engine 1, bucket by bucket
					"ttft":  hist(40, 3.2, 0.05, 14, 0.1, 34, 0.25, 40),
					"itl":   hist(4000, 57, 0.01, 1600, 0.025, 3890, 0.05, 4000),
					"e2e":   hist(40, 74, 1, 10, 2.5, 34, 5, 40),
					"queue": hist(40, 8.4, 0.3, 30, 0.5, 38, 0.8, 40),
				},
			},
		},
		{
			name: "SGLang (token_usage, older time_per_output_token_seconds)", kind: metrics.KindSGLang,
			fixture: "sglang_metrics.txt", health: "/health",
			want: metrics.Model{
				Status: "healthy", Kind: "sglang", Model: "meta-llama/Llama-3.1-8B-Instruct",
				Waiting: ptrF(5), Running: ptrF(12), KVCache: ptrF(28),
				Counters: map[string]float64{"prompt_tokens": 8128902, "generation_tokens": 7557572},
				Histograms: map[string]metrics.Histogram{
					"ttft": hist(1000, 250, 0.001, 0, 0.005, 0, 0.1, 200, 0.5, 900, 1, 1000),
					"e2e":  hist(1000, 4100, 1, 100, 5, 800, 10, 1000),
					"itl":  hist(10000, 140, 0.01, 4000, 0.02, 9000, 0.05, 10000),
				},
			},
		},
		{
			name: "HF TGI (tokens from the generated_tokens histogram's sum)", kind: metrics.KindTGI,
			fixture: "tgi_metrics.txt", health: "/health",
			want: metrics.Model{
				Status: "healthy", Kind: "tgi", Model: "mistralai/Mistral-7B-Instruct-v0.3",
				Waiting: ptrF(7), Running: ptrF(16),
				Counters: map[string]float64{"requests": 200, "generation_tokens": 18000, "prompt_tokens": 64000},
				Histograms: map[string]metrics.Histogram{
					"e2e":   hist(200, 260, 0.5, 20, 1, 80, 2, 180, 5, 200),
					"queue": hist(200, 4.2, 0.01, 150, 0.1, 195, 1, 200),
					"itl":   hist(200, 3.1, 0.01, 30, 0.02, 190, 0.05, 200),
				},
				Notes: tgiNotes,
			},
		},
		{
			name: "Triton, every model (counters in µs)", kind: metrics.KindTriton,
			fixture: "triton_metrics.txt", health: "/v2/health/ready",
			want: metrics.Model{
				Status: "healthy", Kind: "triton", Model: "ensemble_pre, rtdetr_trt",
				Waiting: ptrF(5), // pending 4 + 1
				Counters: map[string]float64{
					"requests": 2400, "inferences": 9600,
					"latency_seconds": 38.4, // (36 000 000 + 2 400 000) µs
					"queue_seconds":   6.12, // (6 000 000 + 120 000) µs
				},
				Notes: tritonNotes,
			},
		},
		{
			name: "Triton, one model", kind: metrics.KindTriton, model: "rtdetr_trt",
			fixture: "triton_metrics.txt", health: "/v2/health/ready",
			want: metrics.Model{
				Status: "healthy", Kind: "triton", Model: "rtdetr_trt", Waiting: ptrF(4),
				Counters: map[string]float64{"requests": 1200, "inferences": 4800, "latency_seconds": 36, "queue_seconds": 6},
				Notes:    tritonNotes,
			},
		},
		{
			name: "Triton with TensorRT-LLM, every model (KV blocks used over max)", kind: metrics.KindTriton,
			fixture: "triton_trtllm_metrics.txt", health: "/v2/health/ready",
			want: metrics.Model{
				Status: "healthy", Kind: "triton", Model: "ensemble, llama70b, tensorrt_llm",
				Waiting: ptrF(7),  // pending 0 + 2 + 5
				Running: ptrF(15), // request_type="active" 6 + 9
				KVCache: ptrF(75), // the fuller model: max(1536/6144, 3000/4000) × 100
				Counters: map[string]float64{
					"requests": 710, "inferences": 710, // 310 + 310 + 90
					"latency_seconds": 1080, // (412 + 398 + 270) s
					"queue_seconds":   6.5,  // (1.2 + 0.8 + 4.5) s
				},
				Notes: []string{tritonLatency},
			},
		},
		{
			name: "Triton with TensorRT-LLM, one model", kind: metrics.KindTriton, model: "tensorrt_llm",
			fixture: "triton_trtllm_metrics.txt", health: "/v2/health/ready",
			want: metrics.Model{
				Status: "healthy", Kind: "triton", Model: "tensorrt_llm", Waiting: ptrF(2), Running: ptrF(6),
				KVCache:  ptrF(25), // 1536 used of 6144 blocks
				Counters: map[string]float64{"requests": 310, "inferences": 310, "latency_seconds": 398, "queue_seconds": 0.8},
				Notes:    []string{tritonLatency},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := readTestdata(t, tc.fixture)
			mux := http.NewServeMux()
			mux.HandleFunc(tc.health, serve(200, ""))
			mux.HandleFunc("/metrics", serve(200, body))
			mux.HandleFunc("/info", serve(200, `{"model_id":"mistralai/Mistral-7B-Instruct-v0.3","model_dtype":"torch.float16","max_concurrent_requests":128,"version":"3.3.4"}`))
			srv := httptest.NewServer(mux)
			defer srv.Close()
			got := collectSpec(t, ModelSpec{Kind: tc.kind, Name: "m1", URL: srv.URL, Model: tc.model})
			assertClose(t, got, tc.want)
		})
	}
}

// A TensorRT-LLM backend new enough to export the used fraction itself is
// read by it, ahead of used over max blocks; a max of zero blocks gives no
// ratio.
func TestTritonKVFraction(t *testing.T) {
	const maxLine = `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="tensorrt_llm",version="1"} 6144` + "\n"
	base := readTestdata(t, "triton_trtllm_metrics.txt")
	for _, tc := range []struct {
		name, body string
		want       *float64
	}{
		{"fraction", strings.Replace(base, maxLine, maxLine+`nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="tensorrt_llm",version="1"} 0.3`+"\n", 1), ptrF(30)},
		{"no blocks", strings.Replace(base, maxLine, strings.Replace(maxLine, "6144", "0", 1), 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("/v2/health/ready", serve(200, ""))
			mux.HandleFunc("/metrics", serve(200, tc.body))
			srv := httptest.NewServer(mux)
			defer srv.Close()
			got := collectSpec(t, ModelSpec{Kind: metrics.KindTriton, Name: "t", URL: srv.URL, Model: "tensorrt_llm"})
			if (got.KVCache == nil) != (tc.want == nil) || got.KVCache != nil && *got.KVCache != *tc.want {
				t.Errorf("KV cache %v, want %v", fmtPtr(got.KVCache), fmtPtr(tc.want))
			}
		})
	}
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "absent"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

// Triton serves its metrics on their own port: metrics-url says where.
func TestTritonMetricsURL(t *testing.T) {
	api := httptest.NewServer(serve(200, ""))
	defer api.Close()
	prom := httptest.NewServer(serve(200, readTestdata(t, "triton_metrics.txt")))
	defer prom.Close()
	got := collectSpec(t, ModelSpec{Kind: metrics.KindTriton, Name: "triton", URL: api.URL, MetricsURL: prom.URL + "/metrics"})
	if got.Status != metrics.StatusHealthy || got.Counters["requests"] != 2400 {
		t.Errorf("got %+v", got)
	}
}

func TestPromServerFailures(t *testing.T) {
	tests := []struct {
		name         string
		health, prom http.HandlerFunc
		status       metrics.Status
		reason       string
		metricsErr   bool
	}{
		{"garbage metrics keep the status", serve(200, ""), serve(200, "vllm:num_requests_running{ 3\n<html>"), "healthy", "", true},
		{"metrics 500", serve(200, ""), serve(500, "boom"), "healthy", "", true},
		{"loading", serve(503, ""), serve(503, ""), "loading", "HTTP 503", false},
		{"unhealthy", serve(500, ""), serve(200, ""), "unhealthy", "HTTP 500", false},
		{"hung server", stall, stall, "unreachable", "timeout", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("/health", tc.health)
			mux.HandleFunc("/metrics", tc.prom)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			c, _ := NewModel(ModelSpec{Kind: metrics.KindVLLM, Name: "v", URL: srv.URL}, nil)
			var s metrics.Sample
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if err := c.Collect(ctx, &s); err != nil {
				t.Fatal(err)
			}
			m := s.Models["v"]
			if m.Status != tc.status || m.Reason != tc.reason {
				t.Errorf("status %q reason %q, want %q %q", m.Status, m.Reason, tc.status, tc.reason)
			}
			if _, has := m.Extra["metrics_error"]; has != tc.metricsErr {
				t.Errorf("metrics_error present %v, want %v (extra %v)", has, tc.metricsErr, m.Extra)
			}
			if m.Histograms != nil || m.Counters != nil {
				t.Errorf("figures from a failed exposition: %+v", m)
			}
		})
	}
}

func TestOllamaPS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/ps" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(readTestdata(t, "ollama_ps.json")))
	}))
	defer srv.Close()
	got := collectSpec(t, ModelSpec{Kind: metrics.KindOllama, Name: "ollama", URL: srv.URL})
	ptrU := func(v uint64) *uint64 { return &v }
	want := metrics.Model{
		Status: "healthy", Kind: "ollama", Model: "gemma3:12b, nomic-embed-text:latest",
		MemUsed:     ptrU(6182550976), // size_vram 5 333 539 264 + 849 011 712
		ContextSize: ptrInt(8192),     // the larger context_length
		Loaded: []metrics.Loaded{
			{Name: "gemma3:12b", Size: 6591830464, SizeVRAM: 5333539264, Context: ptrInt(4096),
				ExpiresAt: "2026-12-03T14:47:07.93355Z", Params: "12.2B", Quant: "Q4_K_M",
				VRAMShare: ptrF(80.91135372986437)}, // 5 333 539 264 / 6 591 830 464
			{Name: "nomic-embed-text:latest", Size: 849011712, SizeVRAM: 849011712, Context: ptrInt(8192),
				ExpiresAt: "2026-12-03T14:52:00Z", Params: "137M", Quant: "F16", VRAMShare: ptrF(100)},
		},
		Notes: []string{noteOllama},
	}
	assertClose(t, got, want)

	empty := httptest.NewServer(serve(200, `{"models":[]}`))
	defer empty.Close()
	m := collectSpec(t, ModelSpec{Kind: metrics.KindOllama, Name: "o", URL: empty.URL})
	if m.Status != "healthy" || m.Loaded == nil || len(m.Loaded) != 0 || m.MemUsed != nil {
		t.Errorf("idle Ollama: %+v", m)
	}
	bad := httptest.NewServer(serve(200, `<html>`))
	defer bad.Close()
	if m := collectSpec(t, ModelSpec{Kind: metrics.KindOllama, Name: "o", URL: bad.URL}); m.Status != "unreachable" || m.Reason != "bad JSON" {
		t.Errorf("garbage: %+v", m)
	}
}

func TestModelSpecValidate(t *testing.T) {
	ok := []ModelSpec{
		{Kind: "vllm", Name: "qwen", URL: "http://127.0.0.1:8000"},
		{Kind: "triton", Name: "t", URL: "http://h:8000", MetricsURL: "http://h:8002/metrics"},
	}
	if err := ValidateSpecs(ok); err != nil {
		t.Errorf("valid specs refused: %v", err)
	}
	for _, bad := range [][]ModelSpec{
		{{Kind: "mindie", Name: "x", URL: "http://h"}},
		{{Kind: "vllm", Name: "a b", URL: "http://h"}},
		{{Kind: "vllm", Name: "x", URL: "ftp://h"}},
		{{Kind: "vllm", Name: "x", URL: "http://h", Command: "("}},
		{{Kind: "vllm", Name: "x", URL: "http://h"}, {Kind: "sglang", Name: "x", URL: "http://g"}},
	} {
		if err := ValidateSpecs(bad); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}

func TestKindMatchers(t *testing.T) {
	got := KindMatchers([]ModelSpec{
		{Kind: "vllm", Name: "a", URL: "http://h", Container: "vllm-a"},
		{Kind: "vllm", Name: "b", URL: "http://h"},
		{Kind: "ollama", Name: "o", URL: "http://h"},
	})
	want := []ModelMatcher{{Model: "a", Container: "vllm-a"}, {Model: "o", Command: "ollama"}}
	assertClose(t, got, want)
}
