package collect

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/pkg/metrics"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in      string
		want    selector
		wantErr string
	}{
		{in: "rtdetr_inference_latency_seconds", want: selector{Name: "rtdetr_inference_latency_seconds"}},
		{in: ` hsi_stage_duration_seconds{stage="detect"} `, want: selector{Name: "hsi_stage_duration_seconds", Labels: map[string]string{"stage": "detect"}}},
		{in: `x{a="1", b = "two words"}`, want: selector{Name: "x", Labels: map[string]string{"a": "1", "b": "two words"}}},
		{in: `x{}`, want: selector{Name: "x", Labels: map[string]string{}}},
		{in: `9x`, wantErr: "bad metric name"},
		{in: `x{stage="detect"`, wantErr: "missing '}'"},
		{in: `x{stage=detect}`, wantErr: `want label="value"`},
		{in: `x{stage="detect}`, wantErr: "unterminated"},
	}
	for _, tt := range tests {
		got, err := parseSelector(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseSelector(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseSelector(%q): %v", tt.in, err)
			continue
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(tt.want)
		if string(g) != string(w) {
			t.Errorf("parseSelector(%q) = %s, want %s", tt.in, g, w)
		}
	}
}

func TestScrapeTargetValidate(t *testing.T) {
	bad := ScrapeTarget{URL: "http://x/metrics", Histograms: map[string]string{"pipeline": "a{b=c}"}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "histograms.pipeline") {
		t.Fatalf("Validate = %v, want an error naming histograms.pipeline", err)
	}
	if err := (ScrapeTarget{}).Validate(); err == nil {
		t.Fatal("empty URL: want an error")
	}
	for _, tgt := range DefaultScrapeTargets("http://d:8090", "http://b:8000/api/metrics") {
		if err := tgt.Validate(); err != nil {
			t.Fatalf("default target %s: %v", tgt.URL, err)
		}
	}
}

func metricsServer(t *testing.T, routes map[string]string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for p, file := range routes {
		body := readTestdata(t, file)
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_, _ = w.Write([]byte(body))
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestScrapeDefaults(t *testing.T) {
	det := metricsServer(t, map[string]string{"/metrics": "rtdetr_metrics.txt"})
	back := metricsServer(t, map[string]string{"/api/metrics": "backend_metrics.txt"})
	sc := NewScrape(DefaultScrapeTargets(det.URL, back.URL+"/api/metrics"), nil)
	s := &metrics.Sample{}
	if err := sc.Collect(context.Background(), s); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if s.Inference == nil {
		t.Fatal("no inference section")
	}
	got, _ := json.Marshal(s.Inference)
	want := `{"histograms":{` +
		`"nemotron":{"count":10,"sum":48,"buckets":[{"le":0.005,"count":0},{"le":0.01,"count":0},{"le":0.025,"count":0},{"le":0.05,"count":0},{"le":0.1,"count":0},{"le":0.25,"count":0},{"le":0.5,"count":0},{"le":1,"count":1},{"le":2.5,"count":3},{"le":5,"count":7},{"le":10,"count":9},{"le":30,"count":10},{"le":60,"count":10}]},` +
		`"pipeline":{"count":10,"sum":62.5,"buckets":[{"le":0.005,"count":0},{"le":0.01,"count":0},{"le":0.025,"count":0},{"le":0.05,"count":0},{"le":0.1,"count":0},{"le":0.25,"count":0},{"le":0.5,"count":0},{"le":1,"count":0},{"le":2.5,"count":2},{"le":5,"count":6},{"le":10,"count":9},{"le":30,"count":10},{"le":60,"count":10}]},` +
		// the detector's own histogram wins over the backend's detect stage
		`"rtdetr":{"count":120,"sum":5.76,"buckets":[{"le":0.01,"count":0},{"le":0.025,"count":4},{"le":0.05,"count":60},{"le":0.1,"count":110},{"le":0.25,"count":118},{"le":0.5,"count":120},{"le":1,"count":120}]}},` +
		// both status labels summed
		`"counters":{"events":42,"images":120}}`
	if string(got) != want {
		t.Errorf("inference\n got %s\nwant %s", got, want)
	}
}

func TestScrapeFallsBackToBackendDetectStage(t *testing.T) {
	back := metricsServer(t, map[string]string{"/api/metrics": "backend_metrics.txt"})
	// The detector answers 404 on /metrics: its role is filled by the backend.
	det := httptest.NewServer(http.NotFoundHandler())
	defer det.Close()
	s := &metrics.Sample{}
	err := NewScrape(DefaultScrapeTargets(det.URL, back.URL+"/api/metrics"), nil).Collect(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("Collect err = %v, want the detector's HTTP 404", err)
	}
	h, ok := s.Inference.Histograms["rtdetr"]
	if !ok || h.Count != 80 || h.Sum != 3.9 || len(h.Buckets) != 13 || h.Buckets[3].Count != 40 {
		t.Fatalf("rtdetr from detect stage = %+v", h)
	}
	if _, ok := s.Inference.Counters["images"]; ok {
		t.Fatal("images counter must be absent, not zero")
	}
}

func TestScrapeBadInput(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /garbage", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>{not metrics}</html>\n")) })
	mux.HandleFunc("GET /gauge", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("# TYPE lat gauge\nlat 3\n# TYPE n counter\nn_total 7\n"))
	})
	mux.HandleFunc("GET /slow", stall)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	good := metricsServer(t, map[string]string{"/metrics": "rtdetr_metrics.txt"})
	targets := []ScrapeTarget{
		{URL: srv.URL + "/garbage", Histograms: map[string]string{"pipeline": "x"}},
		{URL: srv.URL + "/gauge", Histograms: map[string]string{"pipeline": "lat"}, Counters: map[string]string{"events": "n"}},
		{URL: srv.URL + "/slow", Histograms: map[string]string{"nemotron": "x"}},
		{URL: srv.URL + "/gauge", Histograms: map[string]string{"nemotron": "lat{"}},
		DefaultScrapeTargets(good.URL, "")[0],
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s := &metrics.Sample{}
	err := NewScrape(targets, nil).Collect(ctx, s)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"/garbage: parse", "lat: is a gauge, not a histogram", "/slow: timeout", "histograms.nemotron"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// The good target still landed, and so did the counter of the gauge target.
	if s.Inference == nil || s.Inference.Histograms["rtdetr"].Count != 120 || s.Inference.Counters["events"] != 7 {
		t.Fatalf("inference = %+v", s.Inference)
	}
	if _, ok := s.Inference.Histograms["pipeline"]; ok {
		t.Fatal("pipeline must be absent")
	}
}

// NaN and ±Inf cannot travel as JSON (the hub's update, --once): a series
// holding one is absent, and a histogram with an infinite sum says why.
func TestScrapeNonFiniteIsAbsent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("# TYPE a counter\na_total +Inf\n# TYPE b counter\nb_total NaN\n" +
			"# TYPE ok counter\nok_total 4\n" +
			"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum +Inf\nh_count 2\n"))
	}))
	defer srv.Close()
	tgt := ScrapeTarget{URL: srv.URL, Histograms: map[string]string{"rtdetr": "h"},
		Counters: map[string]string{"images": "a", "events": "b", "other": "ok"}}
	s := &metrics.Sample{}
	err := NewScrape([]ScrapeTarget{tgt}, nil).Collect(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "h: count 2, sum +Inf: not finite") {
		t.Errorf("Collect err = %v, want the histogram named", err)
	}
	if s.Inference == nil || len(s.Inference.Histograms) != 0 || len(s.Inference.Counters) != 1 || s.Inference.Counters["other"] != 4 {
		t.Fatalf("inference = %+v, want only the finite counter", s.Inference)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Errorf("the sample does not encode as JSON: %v", err)
	}
}

// Errors travel in the sample to the dashboard: a password in a target's
// URL must not.
func TestScrapeErrorsHidePassword(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	base := strings.Replace(srv.URL, "http://", "http://scraper:s3cret@", 1)
	for _, tgt := range []ScrapeTarget{
		{URL: base + "/metrics", Histograms: map[string]string{"rtdetr": "x"}},
		{URL: base + "/metrics", Histograms: map[string]string{"rtdetr": "x{"}},
	} {
		err := NewScrape([]ScrapeTarget{tgt}, nil).Collect(context.Background(), &metrics.Sample{})
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "scraper:xxxxx@") {
			t.Errorf("Collect err = %v, want the URL with its password hidden", err)
		}
		if err := tgt.Validate(); err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Validate err = %v shows the password", err)
		}
	}
	if got := redact.URL("http://a:b@[::1/x"); strings.Contains(got, "b@") {
		t.Errorf("an unparsable URL with credentials came back as %q", got)
	}
}

func TestScrapeNothingLeavesSectionNil(t *testing.T) {
	srv := metricsServer(t, map[string]string{"/metrics": "llamacpp_metrics.txt"})
	s := &metrics.Sample{}
	if err := NewScrape(DefaultScrapeTargets(srv.URL, ""), nil).Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if s.Inference != nil {
		t.Fatalf("inference = %+v, want nil", s.Inference)
	}
}

func TestScrapeSumsMatchingSeries(t *testing.T) {
	srv := metricsServer(t, map[string]string{"/metrics": "backend_metrics.txt"})
	s := &metrics.Sample{}
	tgt := ScrapeTarget{URL: srv.URL + "/metrics", Histograms: map[string]string{"pipeline": "hsi_stage_duration_seconds"}}
	if err := NewScrape([]ScrapeTarget{tgt}, nil).Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	h := s.Inference.Histograms["pipeline"]
	if h.Count != 100 || h.Sum != 3.9+62.5+48 || h.Buckets[len(h.Buckets)-1].Count != 100 || h.Buckets[8].Count != 85 {
		t.Fatalf("sum by (le) = %+v", h)
	}
}
