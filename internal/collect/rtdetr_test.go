package collect

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// The detector's /health as the real server answers it.
const rtdetrHealthy = `{"status":"healthy","model_loaded":true,"device":"cuda:0","cuda_available":true,"model_name":"/models/rtdetr_r50vd_coco_o365","vram_used_gb":0.17}`

func serve(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func ptrU64(v uint64) *uint64 { return &v }

func TestRTDETRCollect(t *testing.T) {
	gb := 0.17
	gib017 := uint64(math.Round(gb * (1 << 30)))
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    metrics.Model
	}{
		{
			name:    "healthy",
			handler: serve(200, rtdetrHealthy),
			want: metrics.Model{Status: "healthy", Model: "rtdetr_r50vd_coco_o365", Device: "cuda:0",
				MemUsed: ptrU64(gib017), Extra: map[string]any{"model_loaded": true, "cuda_available": true}},
		},
		{
			name:    "degraded without a model",
			handler: serve(200, `{"status":"degraded","model_loaded":false,"device":"cpu","cuda_available":false}`),
			want: metrics.Model{Status: "degraded", Reason: "no model loaded", Device: "cpu",
				Extra: map[string]any{"model_loaded": false, "cuda_available": false}},
		},
		{
			name: "newer build with extra fields",
			handler: serve(200, `{"status":"healthy","model_loaded":true,"device":"cuda:0","model_name":"rtdetr_v2_r101vd",`+
				`"vram_used_gb":1.5,"gpu_utilization":41.5,"temperature":63,"power_watts":120.25,"build":"2025.1"}`),
			want: metrics.Model{Status: "healthy", Model: "rtdetr_v2_r101vd", Device: "cuda:0", MemUsed: ptrU64(3 << 29),
				Extra: map[string]any{"model_loaded": true, "gpu_utilization": 41.5, "temperature": 63.0, "power_watts": 120.25, "build": "2025.1"}},
		},
		{
			name:    "missing fields",
			handler: serve(200, `{"status":"healthy"}`),
			want:    metrics.Model{Status: "healthy"},
		},
		{
			name:    "no status but no model",
			handler: serve(200, `{"model_loaded":false}`),
			want:    metrics.Model{Status: "degraded", Reason: "no model loaded", Extra: map[string]any{"model_loaded": false}},
		},
		{
			name:    "unknown status word",
			handler: serve(200, `{"status":"confused"}`),
			want:    metrics.Model{Status: "unhealthy", Reason: `status "confused"`},
		},
		{
			name:    "garbage",
			handler: serve(200, `<html>oops</html>`),
			want:    metrics.Model{Status: "unreachable", Reason: "bad JSON"},
		},
		{
			name:    "JSON that is not an object",
			handler: serve(200, `[1,2]`),
			want:    metrics.Model{Status: "unreachable", Reason: "bad JSON"},
		},
		{
			name:    "503 with its own verdict",
			handler: serve(503, `{"status":"degraded","model_loaded":false}`),
			want:    metrics.Model{Status: "degraded", Reason: "no model loaded", Extra: map[string]any{"model_loaded": false}},
		},
		{
			name:    "503 loading",
			handler: serve(503, `{"status":"loading"}`),
			want:    metrics.Model{Status: "loading", Reason: "HTTP 503"},
		},
		{
			name:    "500 without a body",
			handler: serve(500, `Internal Server Error`),
			want:    metrics.Model{Status: "unreachable", Reason: "HTTP 500"},
		},
		{
			name:    "404 wrong URL",
			handler: serve(404, `{"detail":"Not Found"}`),
			want:    metrics.Model{Status: "unreachable", Reason: "HTTP 404"},
		},
		{
			name:    "body too large",
			handler: serve(200, `{"status":"healthy","pad":"`+strings.Repeat("x", maxJSONBody)+`"}`),
			want:    metrics.Model{Status: "unreachable", Reason: "body too large"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			s := &metrics.Sample{}
			if err := NewRTDETR(srv.URL+"/", nil).Collect(context.Background(), s); err != nil {
				t.Fatalf("Collect: %v", err)
			}
			assertModel(t, seedOnly(s.Models[metrics.RoleRTDETR]), tt.want)
		})
	}
}

func TestRTDETRUnreachable(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s := &metrics.Sample{}
		if err := NewRTDETR("http://"+addr, nil).Collect(context.Background(), s); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		assertModel(t, seedOnly(s.Models["rtdetr"]), metrics.Model{Status: "unreachable", Reason: "connection refused"})
	})
	t.Run("slow beyond the deadline", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(stall))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		s := &metrics.Sample{}
		if err := NewRTDETR(srv.URL, nil).Collect(ctx, s); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		assertModel(t, seedOnly(s.Models["rtdetr"]), metrics.Model{Status: "unreachable", Reason: "timeout"})
	})
	t.Run("client timeout without a context deadline", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(stall))
		defer srv.Close()
		s := &metrics.Sample{}
		c := NewRTDETR(srv.URL, &http.Client{Timeout: 50 * time.Millisecond})
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		assertModel(t, seedOnly(s.Models["rtdetr"]), metrics.Model{Status: "unreachable", Reason: "timeout"})
	})
}

func TestRTDETRKeepsOtherModels(t *testing.T) {
	srv := httptest.NewServer(serve(200, rtdetrHealthy))
	defer srv.Close()
	s := &metrics.Sample{Models: map[string]metrics.Model{"nemotron": {Status: "healthy"}}}
	if err := NewRTDETR(srv.URL, nil).Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if s.Models["nemotron"].Status != "healthy" || s.Models["rtdetr"].Status != "healthy" {
		t.Fatalf("models = %+v", s.Models)
	}
	if NewRTDETR(srv.URL, nil).Collect(context.Background(), nil) == nil {
		t.Fatal("nil sample: want an error")
	}
}
