package collect

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const (
	llamaLoading   = `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`
	llamaNoSlots   = "{\"error\":{\"code\":501,\"message\":\"This server does not support slots endpoint. Start it with `--slots`\",\"type\":\"not_supported_error\"}}"
	llamaNoMetrics = "{\"error\":{\"code\":501,\"message\":\"This server does not support metrics endpoint. Start it with `--metrics`\",\"type\":\"not_supported_error\"}}"
)

func ptrInt(v int) *int { return &v }

func TestLlamaCppCollect(t *testing.T) {
	slots := readTestdata(t, "llamacpp_slots.json")
	slotsState := readTestdata(t, "llamacpp_slots_state.json")
	props := readTestdata(t, "llamacpp_props.json")
	prom := readTestdata(t, "llamacpp_metrics.txt")
	gauges := map[string]float64{
		"prompt_tokens_total": 18234, "prompt_seconds_total": 12.5, "tokens_predicted_total": 9120,
		"tokens_predicted_seconds_total": 160, "n_decode_total": 9400, "n_busy_slots_per_decode": 1.25,
		"prompt_tokens_seconds": 1458.72, "predicted_tokens_seconds": 57, "requests_processing": 1,
		"requests_deferred": 0, "n_tokens_max": 3012,
	}
	const model = "Nemotron-Mini-4B-Instruct-Q4_K_M.gguf"
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		want   metrics.Model
	}{
		{
			name: "current build, is_processing, with --metrics",
			routes: map[string]http.HandlerFunc{
				"/health": serve(200, `{"status":"ok"}`), "/slots": serve(200, slots),
				"/props": serve(200, props), "/metrics": serve(200, prom),
			},
			want: metrics.Model{Status: "healthy", Model: model, SlotsActive: ptrInt(1), SlotsTotal: ptrInt(2),
				ContextSize: ptrInt(4096), Gauges: gauges},
		},
		{
			name: "older build with state, no /props, no --metrics",
			routes: map[string]http.HandlerFunc{
				"/health": serve(200, `{"status":"ok"}`), "/slots": serve(200, slotsState),
				"/metrics": serve(501, llamaNoMetrics),
			},
			want: metrics.Model{Status: "healthy", SlotsActive: ptrInt(2), SlotsTotal: ptrInt(4), ContextSize: ptrInt(8192)},
		},
		{
			name: "--no-slots falls back to /props and requests_processing",
			routes: map[string]http.HandlerFunc{
				"/health": serve(200, `{"status":"ok"}`), "/slots": serve(501, llamaNoSlots),
				"/props": serve(200, props), "/metrics": serve(200, prom),
			},
			want: metrics.Model{Status: "healthy", Model: model, SlotsActive: ptrInt(1), SlotsTotal: ptrInt(2),
				ContextSize: ptrInt(4096), Gauges: gauges},
		},
		{
			name: "--no-slots without metrics: active unknown, not zero",
			routes: map[string]http.HandlerFunc{
				"/health": serve(200, `{"status":"ok"}`), "/slots": serve(501, llamaNoSlots),
				"/props": serve(200, props),
			},
			want: metrics.Model{Status: "healthy", Model: model, SlotsTotal: ptrInt(2), ContextSize: ptrInt(4096)},
		},
		{
			name: "loading: 503 everywhere",
			routes: map[string]http.HandlerFunc{
				"/health": serve(503, llamaLoading), "/slots": serve(503, llamaLoading),
				"/props": serve(503, llamaLoading), "/metrics": serve(503, llamaLoading),
			},
			want: metrics.Model{Status: "loading", Reason: "Loading model", Extra: map[string]any{"metrics_error": "metrics: HTTP 503"}},
		},
		{
			name: "older loading body",
			routes: map[string]http.HandlerFunc{
				"/health": serve(503, `{"status":"loading model"}`),
			},
			want: metrics.Model{Status: "loading", Reason: "loading model"},
		},
		{
			name: "slots with missing and extra fields",
			routes: map[string]http.HandlerFunc{
				"/health": serve(200, `{"status":"ok","slots_idle":1,"slots_processing":0}`),
				"/slots":  serve(200, `[{"id":0,"future_field":{"x":1}},{"id":1,"n_ctx":2048,"is_processing":false}]`),
			},
			want: metrics.Model{Status: "healthy", SlotsActive: ptrInt(0), SlotsTotal: ptrInt(2), ContextSize: ptrInt(2048)},
		},
		{
			// A fresh server divides by zero for its rates; JSON has no
			// NaN or infinity, and the hub encodes its update as JSON.
			name: "NaN and infinite gauges are absent",
			routes: map[string]http.HandlerFunc{
				"/health": serve(200, `{"status":"ok"}`), "/slots": serve(200, slots),
				"/metrics": serve(200, "# TYPE llamacpp:prompt_tokens_seconds gauge\nllamacpp:prompt_tokens_seconds +Inf\n"+
					"# TYPE llamacpp:predicted_tokens_seconds gauge\nllamacpp:predicted_tokens_seconds -Inf\n"+
					"# TYPE llamacpp:n_busy_slots_per_decode counter\nllamacpp:n_busy_slots_per_decode NaN\n"+
					"# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 1\n"),
			},
			want: metrics.Model{Status: "healthy", SlotsActive: ptrInt(1), SlotsTotal: ptrInt(2), ContextSize: ptrInt(4096),
				Gauges: map[string]float64{"requests_processing": 1}},
		},
		{
			name: "garbage /slots keeps the status and says why",
			routes: map[string]http.HandlerFunc{
				"/health": serve(200, `{"status":"ok"}`), "/slots": serve(200, `{"not":"an array"`),
				"/metrics": serve(200, "llamacpp:requests_processing one\n"),
			},
			want: metrics.Model{Status: "healthy", Extra: map[string]any{"slots_error": "bad JSON",
				"metrics_error": `metrics: parse: line 1: llamacpp:requests_processing: value "one" is not a number`}},
		},
		{
			name:   "garbage /health",
			routes: map[string]http.HandlerFunc{"/health": serve(200, `ok!`), "/slots": serve(200, slots)},
			want:   metrics.Model{Status: "unreachable", Reason: "bad JSON"},
		},
		{
			name:   "500 with an error body",
			routes: map[string]http.HandlerFunc{"/health": serve(500, `{"error":{"code":500,"message":"failed to load model","type":"server_error"}}`)},
			want: metrics.Model{Status: "unhealthy", Reason: "HTTP 500: failed to load model",
				Extra: map[string]any{"slots_error": "HTTP 404"}},
		},
		{
			name:   "no /health but /slots answers (very old build)",
			routes: map[string]http.HandlerFunc{"/slots": serve(200, slotsState)},
			want:   metrics.Model{Status: "healthy", SlotsActive: ptrInt(2), SlotsTotal: ptrInt(4), ContextSize: ptrInt(8192)},
		},
		{
			name:   "not a llama.cpp server",
			routes: map[string]http.HandlerFunc{},
			want:   metrics.Model{Status: "unreachable", Reason: "HTTP 404"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			for p, h := range tt.routes {
				mux.Handle("GET "+p, h)
			}
			srv := httptest.NewServer(mux)
			defer srv.Close()
			s := &metrics.Sample{}
			if err := NewLlamaCpp(srv.URL, nil).Collect(context.Background(), s); err != nil {
				t.Fatalf("Collect: %v", err)
			}
			assertModel(t, seedOnly(s.Models[metrics.RoleNemotron]), tt.want)
		})
	}
}

// A slow /metrics must not cost /health and /slots their answer: the
// requests run side by side, so the fast ones finish before the deadline.
func TestLlamaCppSlowEndpointDoesNotStarveOthers(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /health", serve(200, `{"status":"ok"}`))
	mux.Handle("GET /slots", serve(200, readTestdata(t, "llamacpp_slots.json")))
	mux.HandleFunc("GET /metrics", stall)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	s := &metrics.Sample{}
	if err := NewLlamaCpp(srv.URL, nil).Collect(ctx, s); err != nil {
		t.Fatal(err)
	}
	assertModel(t, seedOnly(s.Models["nemotron"]), metrics.Model{Status: "healthy", SlotsActive: ptrInt(1), SlotsTotal: ptrInt(2),
		ContextSize: ptrInt(4096), Extra: map[string]any{"metrics_error": "metrics: timeout"}})
}

func TestLlamaCppSlowServerIsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(stall))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s := &metrics.Sample{}
	if err := NewLlamaCpp(srv.URL, nil).Collect(ctx, s); err != nil {
		t.Fatal(err)
	}
	assertModel(t, seedOnly(s.Models["nemotron"]), metrics.Model{Status: "unreachable", Reason: "timeout"})
}

// Beyond the seed's fields: token counters, queue, per-slot context and
// what the build cannot report, said rather than left blank.
func TestLlamaCppFigures(t *testing.T) {
	slots := readTestdata(t, "llamacpp_slots.json")
	prom := readTestdata(t, "llamacpp_metrics.txt")
	old := `[{"id":0,"n_ctx":2048,"n_past":1536,"state":1},{"id":1,"n_ctx":2048,"n_past":12,"state":0}]`
	kv := prom + "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.\n# TYPE llamacpp:kv_cache_usage_ratio gauge\nllamacpp:kv_cache_usage_ratio 0.25\n"
	tests := []struct {
		name         string
		slots, prom  http.HandlerFunc
		counters     map[string]float64
		waiting, run *float64
		kv           *float64
		slotList     []metrics.Slot
		notes        []string
	}{
		{
			name: "current build with --metrics", slots: serve(200, slots), prom: serve(200, prom),
			counters: map[string]float64{"prompt_tokens": 18234, "generation_tokens": 9120},
			waiting:  ptrF(0), run: ptrF(1),
			slotList: []metrics.Slot{{ID: 0, Ctx: 4096, Decoded: ptrInt(57), Busy: true}, {ID: 1, Ctx: 4096, Decoded: ptrInt(0)}},
			notes:    []string{noteLlamaLatency, noteLlamaKV},
		},
		{
			name: "older build: n_past per slot and a KV ratio", slots: serve(200, old), prom: serve(200, kv),
			counters: map[string]float64{"prompt_tokens": 18234, "generation_tokens": 9120},
			waiting:  ptrF(0), run: ptrF(1), kv: ptrF(25),
			slotList: []metrics.Slot{{ID: 0, Ctx: 2048, Used: ptrInt(1536), Busy: true}, {ID: 1, Ctx: 2048, Used: ptrInt(12)}},
			notes:    []string{noteLlamaLatency},
		},
		{
			name: "without --metrics", slots: serve(200, slots), prom: serve(501, llamaNoMetrics),
			slotList: []metrics.Slot{{ID: 0, Ctx: 4096, Decoded: ptrInt(57), Busy: true}, {ID: 1, Ctx: 4096, Decoded: ptrInt(0)}},
			notes:    []string{noteLlamaLatency, noteLlamaMetrics},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("/health", serve(200, `{"status":"ok"}`))
			mux.HandleFunc("/slots", tc.slots)
			mux.HandleFunc("/metrics", tc.prom)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			m := collectSpec(t, ModelSpec{Kind: metrics.KindLlamaCpp, Name: "nemotron", URL: srv.URL})
			got := metrics.Model{Kind: m.Kind, Counters: m.Counters, Waiting: m.Waiting, Running: m.Running, KVCache: m.KVCache, Slots: m.Slots, Notes: m.Notes}
			want := metrics.Model{Kind: "llamacpp", Counters: tc.counters, Waiting: tc.waiting, Running: tc.run, KVCache: tc.kv, Slots: tc.slotList, Notes: tc.notes}
			assertClose(t, got, want)
		})
	}
}
