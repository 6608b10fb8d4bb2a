package sources

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/hub/source"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// exporter serves what a DCGM exporter and the backend's /api/metrics
// serve, in the Prometheus text format. Every scrape adds the same
// observations to the histograms, so every rate() ratio, and so every
// quantile, is exact and known in advance.
type exporter struct {
	mu      sync.Mutex
	scrapes int
}

// Per scrape: detect gets 10 observations ≤ 50 ms, 5 in (50, 100], 5 in
// (100, 250], summing to 1.7 s; analyze gets 2 in (1, 5] s summing 6 s.
func (e *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.scrapes++
	n := float64(e.scrapes)
	e.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	var b strings.Builder
	b.WriteString("# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n")
	for i, util := range []int{38, 71} {
		fmt.Fprintf(&b, "DCGM_FI_DEV_GPU_UTIL{gpu=\"%d\",UUID=\"GPU-%d1a2b3c\",device=\"nvidia%d\",modelName=\"NVIDIA RTX A5500\",Hostname=\"gpu-box-2\",DCGM_FI_DRIVER_VERSION=\"550.54.15\"} %d\n", i, i, i, util)
	}
	b.WriteString("# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n# TYPE DCGM_FI_DEV_FB_USED gauge\n")
	fmt.Fprintf(&b, "DCGM_FI_DEV_FB_USED{gpu=\"0\",UUID=\"GPU-01a2b3c\",device=\"nvidia0\",modelName=\"NVIDIA RTX A5500\",Hostname=\"gpu-box-2\"} 23245\n")
	fmt.Fprintf(&b, "DCGM_FI_DEV_FB_USED{gpu=\"1\",UUID=\"GPU-11a2b3c\",device=\"nvidia1\",modelName=\"NVIDIA RTX A5500\",Hostname=\"gpu-box-2\"} 512\n")
	b.WriteString("# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).\n# TYPE DCGM_FI_DEV_FB_FREE gauge\n")
	fmt.Fprintf(&b, "DCGM_FI_DEV_FB_FREE{gpu=\"0\",UUID=\"GPU-01a2b3c\",device=\"nvidia0\",modelName=\"NVIDIA RTX A5500\",Hostname=\"gpu-box-2\"} 1331\n")
	fmt.Fprintf(&b, "DCGM_FI_DEV_FB_FREE{gpu=\"1\",UUID=\"GPU-11a2b3c\",device=\"nvidia1\",modelName=\"NVIDIA RTX A5500\",Hostname=\"gpu-box-2\"} 24064\n")
	b.WriteString("# TYPE DCGM_FI_DEV_GPU_TEMP gauge\n")
	fmt.Fprintf(&b, "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-01a2b3c\",modelName=\"NVIDIA RTX A5500\",Hostname=\"gpu-box-2\"} 38\n")
	fmt.Fprintf(&b, "DCGM_FI_DEV_GPU_TEMP{gpu=\"1\",UUID=\"GPU-11a2b3c\",modelName=\"NVIDIA RTX A5500\",Hostname=\"gpu-box-2\"} 44\n")
	b.WriteString("# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n")
	fmt.Fprintf(&b, "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-01a2b3c\",modelName=\"NVIDIA RTX A5500\",Hostname=\"gpu-box-2\"} 31.5\n")
	fmt.Fprintf(&b, "DCGM_FI_DEV_POWER_USAGE{gpu=\"1\",UUID=\"GPU-11a2b3c\",modelName=\"NVIDIA RTX A5500\",Hostname=\"gpu-box-2\"} 60.25\n")

	b.WriteString("# HELP hsi_stage_duration_seconds Pipeline stage duration.\n# TYPE hsi_stage_duration_seconds histogram\n")
	hist := func(stage string, les []string, counts []float64, sum float64) {
		for i, le := range les {
			fmt.Fprintf(&b, "hsi_stage_duration_seconds_bucket{stage=%q,le=%q} %g\n", stage, le, counts[i]*n)
		}
		fmt.Fprintf(&b, "hsi_stage_duration_seconds_sum{stage=%q} %g\n", stage, sum*n)
		fmt.Fprintf(&b, "hsi_stage_duration_seconds_count{stage=%q} %g\n", stage, counts[len(counts)-1]*n)
	}
	hist("detect", []string{"0.05", "0.1", "0.25", "1", "+Inf"}, []float64{10, 15, 20, 20, 20}, 1.7)
	hist("analyze", []string{"0.05", "0.1", "0.25", "1", "5", "+Inf"}, []float64{0, 0, 0, 0, 2, 2}, 6)
	b.WriteString("# TYPE hsi_events_created_total counter\n")
	fmt.Fprintf(&b, "hsi_events_created_total %g\n", 3*n)
	_, _ = w.Write([]byte(b.String()))
}

func waitForQuery(t *testing.T, base, q string) {
	t.Helper()
	poll.Until(t, "prometheus to answer "+q, func() bool {
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return len(r.Data.Result) > 0
	})
}

func f64(v float64) *float64 { return &v }

// agentUpdate is an update as the hub builds it from one agent on
// gpu-box-1, with RT-DETR latency from the agent and nothing else.
func agentUpdate() *metrics.Update {
	idx := 0
	name := "NVIDIA H200"
	g := metrics.GPUView{Host: "gpu-box-1", Index: &idx, Name: &name, Utilization: f64(12), VRAMUsedGB: f64(3), VRAMTotalGB: f64(140), Temperature: f64(40), PowerWatts: f64(120)}
	return &metrics.Update{
		GPU: g, GPUs: []metrics.GPUView{g},
		Inference: metrics.Latencies{RTDETR: metrics.Stats{Avg: f64(45), P95: f64(82), P99: f64(120)}},
		Sources:   map[string]string{metrics.SectionGPU: "agent:gpu-box-1", metrics.SectionInference: "agents"},
		Errors:    map[string]string{},
	}
}

func TestPrometheusRealServer(t *testing.T) {
	t.Parallel()
	exp := httptest.NewServer(&exporter{})
	defer exp.Close()
	prom := sourcestest.StartPrometheus(t, strings.TrimPrefix(exp.URL, "http://"))
	// Three scrapes of the histogram make every rate() defined.
	waitForQuery(t, prom.URL, `count_over_time(hsi_stage_duration_seconds_count{stage="detect"}[5m]) >= 3`)
	waitForQuery(t, prom.URL, `DCGM_FI_DEV_POWER_USAGE`)

	src, err := NewPrometheus(prom.URL, PrometheusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !src.Fallback() {
		t.Fatal("not a fallback source")
	}
	poll := func() source.Reading {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		return src.Poll(ctx)
	}

	t.Run("fills what no agent did", func(t *testing.T) {
		reading := poll()
		if up, why := src.Up(); !up {
			t.Fatalf("down: %s", why)
		}
		u := agentUpdate()
		reading.Apply(u)
		if u.GPU.Host != "gpu-box-1" || *u.GPU.Utilization != 12 || u.Sources[metrics.SectionGPU] != "agent:gpu-box-1" {
			t.Errorf("agent's gpu overwritten: %+v %v", u.GPU, u.Sources)
		}
		if len(u.GPUs) != 3 {
			t.Fatalf("%d GPUs, want the agent's 1 + Prometheus' 2", len(u.GPUs))
		}
		g0, g1 := u.GPUs[1], u.GPUs[2]
		if g0.Host != "gpu-box-2" || *g0.Index != 0 || *g1.Index != 1 {
			t.Fatalf("GPUs %+v %+v", g0, g1)
		}
		checks := []struct {
			name      string
			got, want *float64
		}{
			{"util0", g0.Utilization, f64(38)}, {"util1", g1.Utilization, f64(71)},
			{"vram used0", g0.VRAMUsedGB, f64(23245.0 / 1024)}, {"vram total0", g0.VRAMTotalGB, f64(24576.0 / 1024)},
			{"vram total1", g1.VRAMTotalGB, f64(24576.0 / 1024)},
			{"temp0", g0.Temperature, f64(38)}, {"power1", g1.PowerWatts, f64(60.25)},
			// RT-DETR came from the agent and stays; the rest is Prometheus'.
			{"rtdetr p95 (agent)", u.Inference.RTDETR.P95, f64(82)},
			// analyze: all in (1, 5]: p95 at rank 1.9 of 2 → 1 + 4·0.95 s.
			{"nemotron p95", u.Inference.Nemotron.P95, f64(4800)},
			{"nemotron p99", u.Inference.Nemotron.P99, f64(4960)},
			{"nemotron avg", u.Inference.Nemotron.Avg, f64(3000)},
			{"events/min", u.Inference.Throughput.EventsPerMin, nil},
			{"images/min", u.Inference.Throughput.ImagesPerMin, nil},
		}
		for _, c := range checks {
			if c.want == nil {
				if c.got == nil || *c.got <= 0 {
					t.Errorf("%s: %v, want a rate", c.name, show(c.got))
				}
				continue
			}
			if c.got == nil || !approxTol(*c.got, *c.want, 1e-6) {
				t.Errorf("%s: %v, want %v", c.name, show(c.got), *c.want)
			}
		}
		if *g0.Name != "NVIDIA RTX A5500" || g0.UUID != "GPU-01a2b3c" {
			t.Errorf("identity %v %q", show2(g0.Name), g0.UUID)
		}
		if u.Inference.Pipeline.P95 != nil {
			t.Errorf("pipeline (stage batch) has no series yet got %v", *u.Inference.Pipeline.P95)
		}
		if u.Sources[metrics.SectionInference] != "agents+prometheus" {
			t.Errorf("inference source %q", u.Sources[metrics.SectionInference])
		}
	})

	t.Run("fills the seed gpu and latency when empty", func(t *testing.T) {
		u := &metrics.Update{Sources: map[string]string{metrics.SectionGPU: "none", metrics.SectionInference: "agents"}, Errors: map[string]string{metrics.SectionGPU: "no agent"}}
		poll().Apply(u)
		if u.GPU.Host != "gpu-box-2" || *u.GPU.Index != 0 || u.Sources[metrics.SectionGPU] != "prometheus" || u.Errors[metrics.SectionGPU] != "" {
			t.Errorf("gpu %+v sources %v errors %v", u.GPU, u.Sources, u.Errors)
		}
		// detect: 20 per scrape: 10 ≤ 50 ms, 15 ≤ 100, 20 ≤ 250.
		// p95 rank 19 → 100 + 150·(19−15)/5 = 220 ms; p99 rank 19.8 → 244.
		for _, c := range []struct {
			name      string
			got, want *float64
		}{
			{"rtdetr p95", u.Inference.RTDETR.P95, f64(220)},
			{"rtdetr p99", u.Inference.RTDETR.P99, f64(244)},
			{"rtdetr avg", u.Inference.RTDETR.Avg, f64(85)},
		} {
			if c.got == nil || !approxTol(*c.got, *c.want, 1e-6) {
				t.Errorf("%s: %v, want %v", c.name, show(c.got), *c.want)
			}
		}
		if u.Sources[metrics.SectionInference] != "prometheus" {
			t.Errorf("inference source %q", u.Sources[metrics.SectionInference])
		}
		t.Logf("from Prometheus: rtdetr avg %.3f p95 %.3f p99 %.3f ms; images/min %.1f", *u.Inference.RTDETR.Avg, *u.Inference.RTDETR.P95, *u.Inference.RTDETR.P99, *u.Inference.Throughput.ImagesPerMin)
	})

	t.Run("stopped: nothing blanks", func(t *testing.T) {
		prom.Stop()
		reading := poll()
		if up, _ := src.Up(); up {
			t.Fatal("still up after the server stopped")
		}
		u, want := agentUpdate(), agentUpdate()
		reading.Apply(u)
		if why := u.Errors["prometheus"]; !strings.Contains(why, prom.URL) {
			t.Fatalf("errors[prometheus] = %q, want the reason naming %s", why, prom.URL)
		}
		delete(u.Errors, "prometheus")
		if !reflect.DeepEqual(u, want) {
			t.Fatalf("a dead Prometheus changed more than its errors entry:\n%+v\n%+v", u, want)
		}
	})
}

func approxTol(a, b, tol float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= tol*(1+abs(b))
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func show2(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestPrometheusSlowAndCached: a server that never answers costs one poll
// its deadline and nothing else; the "down" answer is then cached for the
// recheck period, so later polls do not wait on it at all.
func TestPrometheusSlowAndCached(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	src, err := NewPrometheus(slow.URL, PrometheusOptions{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_764_576_000, 0)
	src.now = func() time.Time { return now }
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		u, want := agentUpdate(), agentUpdate()
		src.Poll(ctx).Apply(u)
		cancel()
		if why := u.Errors["prometheus"]; !strings.Contains(why, "timeout") {
			t.Fatalf("poll %d: errors[prometheus] = %q, want the timeout", i, why)
		}
		delete(u.Errors, "prometheus")
		if !reflect.DeepEqual(u, want) {
			t.Fatalf("poll %d changed more than its errors entry", i)
		}
	}
	if up, why := src.Up(); up || !strings.Contains(why, "timeout") {
		t.Fatalf("up %v why %q", up, why)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d requests in three polls, want 1 (the cached check)", n)
	}
	now = now.Add(61 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	src.Poll(ctx)
	if n := hits.Load(); n != 2 {
		t.Fatalf("%d requests after the recheck period, want 2", n)
	}
}

func TestNewPrometheusRejects(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "localhost:9090", "ftp://x", "http://"} {
		if _, err := NewPrometheus(u, PrometheusOptions{}); err == nil {
			t.Errorf("accepted %q", u)
		}
	}
	if _, err := NewPrometheus("http://p:9090", PrometheusOptions{Stages: map[string]string{"rtdetr": `a"b`}}); err == nil {
		t.Error("accepted a quoted stage")
	}
}
