package collect

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// servedBy is a client whose every request is answered, without a
// network, by the body its path maps to (404 when none): the fuzz targets
// below then run the collectors' real request, read and decode path.
func servedBy(bodies map[string][]byte) *http.Client {
	return &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		for suffix, b := range bodies {
			if strings.HasSuffix(r.URL.Path, suffix) {
				return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
			}
		}
		return &http.Response{StatusCode: http.StatusNotFound, Body: http.NoBody, Request: r}, nil
	})}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func seed(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// collectRoundTrip runs c into a fresh sample and checks that whatever it
// made of the server's answer still travels: a sample that encodes
// decodes again.
func collectRoundTrip(t *testing.T, c Collector) *metrics.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := &metrics.Sample{V: 1, Host: "h", Boot: "b", TS: 1}
	_ = c.Collect(ctx, s)
	if b, err := metrics.Encode(s); err == nil {
		if _, err := metrics.Decode(b); err != nil {
			t.Fatalf("sample made from the answer encodes but does not decode: %v", err)
		}
	}
	return s
}

// FuzzRTDETRHealth feeds the detector's GET /health answer.
func FuzzRTDETRHealth(f *testing.F) {
	f.Add(seed(f, "rtdetr_health.json"))
	f.Add([]byte(`{"status":"loading","model_loaded":false}`))
	f.Add([]byte(`{"status":7,"vram_used_gb":"x","extra":{"a":[1,{"b":null}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := collectRoundTrip(t, NewRTDETR("http://det", servedBy(map[string][]byte{"/health": body})))
		m, ok := s.Models[metrics.RoleRTDETR]
		if !ok || m.Status == "" {
			t.Fatalf("no RT-DETR status from %q: %+v", body, s.Models)
		}
	})
}

// FuzzLlamaCpp feeds llama.cpp's /health, /slots, /props and /metrics.
func FuzzLlamaCpp(f *testing.F) {
	f.Add([]byte(`{"status":"ok"}`), seed(f, "llamacpp_slots.json"), seed(f, "llamacpp_props.json"), seed(f, "llamacpp_metrics.txt"))
	f.Add([]byte(`{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`), seed(f, "llamacpp_slots_state.json"), []byte(`{}`), []byte(``))
	f.Add([]byte(`[]`), []byte(`{"slots":1}`), []byte(`{"total_slots":-1,"default_generation_settings":{"n_ctx":-5}}`), []byte("# TYPE x counter\nx{a=\"\"} NaN\n"))
	f.Fuzz(func(t *testing.T, health, slots, props, prom []byte) {
		c := NewLlamaCpp("http://llm", servedBy(map[string][]byte{"/health": health, "/slots": slots, "/props": props, "/metrics": prom}))
		s := collectRoundTrip(t, c)
		if m, ok := s.Models[metrics.RoleNemotron]; !ok || m.Status == "" {
			t.Fatalf("no llama.cpp status: %+v", s.Models)
		}
	})
}

// FuzzScrapeText feeds the Prometheus text parser and the histogram and
// counter extraction behind the latency figures.
func FuzzScrapeText(f *testing.F) {
	for _, name := range []string{"rtdetr_metrics.txt", "backend_metrics.txt", "llamacpp_metrics.txt"} {
		f.Add(seed(f, name))
	}
	f.Add([]byte("# TYPE rtdetr_inference_latency_seconds histogram\nrtdetr_inference_latency_seconds_bucket{le=\"+Inf\"} 1\nrtdetr_inference_latency_seconds_bucket{le=\"0.1\"} 5\n"))
	f.Add([]byte("# TYPE rtdetr_inference_requests_total counter\nrtdetr_inference_requests_total -Inf\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := DefaultScrapeTargets("http://det", "http://backend/api/metrics")
		collectRoundTrip(t, NewScrape(targets, servedBy(map[string][]byte{"/metrics": body})))
	})
}
