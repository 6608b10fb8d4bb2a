package e2e

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/collect/gpumock"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// The model servers' answers, as the real servers give them; the llama.cpp
// ones are shared with the collector's unit tests.
const (
	rtdetrHealth   = `{"status":"healthy","model_loaded":true,"device":"cuda:0","cuda_available":true,"model_name":"/models/rtdetr_r50vd_coco_o365","vram_used_gb":0.17}`
	llamaLoading   = `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`
	llamaNoSlots   = "{\"error\":{\"code\":501,\"message\":\"This server does not support slots endpoint. Start it with `--slots`\",\"type\":\"not_supported_error\"}}"
	llamaNoMetrics = "{\"error\":{\"code\":501,\"message\":\"This server does not support metrics endpoint. Start it with `--metrics`\",\"type\":\"not_supported_error\"}}"
)

func collectTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "collect", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func reply(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// hang answers only when the client gives up or the test ends: a server
// far slower than any timeout.
func hang(t *testing.T) http.HandlerFunc {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}
}

func stub(t *testing.T, routes map[string]http.HandlerFunc) string {
	t.Helper()
	mux := http.NewServeMux()
	for p, h := range routes {
		mux.Handle("GET "+p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// detectorMetrics is the detector's /metrics as prometheus_client writes
// it. Every scrape finds ten more inferences, each 75 ms, all in the
// 50–100 ms bucket: over any window p95 is 97.5 ms, p99 99.5 ms, the
// average 75 ms, as histogram_quantile interpolates.
func detectorMetrics() http.HandlerFunc {
	var scrapes atomic.Int64
	return func(w http.ResponseWriter, _ *http.Request) {
		n := float64(scrapes.Add(1) * 10)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, `# HELP rtdetr_inference_latency_seconds RT-DETRv2 inference latency in seconds
# TYPE rtdetr_inference_latency_seconds histogram
rtdetr_inference_latency_seconds_bucket{le="0.025"} 0.0
rtdetr_inference_latency_seconds_bucket{le="0.05"} 0.0
rtdetr_inference_latency_seconds_bucket{le="0.1"} %[1]v
rtdetr_inference_latency_seconds_bucket{le="0.25"} %[1]v
rtdetr_inference_latency_seconds_bucket{le="+Inf"} %[1]v
rtdetr_inference_latency_seconds_count %[1]v
rtdetr_inference_latency_seconds_sum %[2]v
# HELP rtdetr_inference_requests_total Total inference requests
# TYPE rtdetr_inference_requests_total counter
rtdetr_inference_requests_total{status="success"} %[1]v
`, n, n*0.075)
	}
}

const (
	llmContainerID = "4f6c3e1b2a9d8c7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e"
	detContainerID = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	pidLLM         = 4101
	pidDetector    = 5202
	pidHost        = 7404
)

// fakeHost writes a /proc tree with the two model servers (llama.cpp in
// Docker as "ai-llm", the detector in a Kubernetes pod) and a host
// process, plus Docker's on-disk state naming the container.
func fakeHost(t *testing.T) (procRoot, dockerRoot string) {
	t.Helper()
	procRoot, dockerRoot = t.TempDir(), t.TempDir()
	procs := []struct {
		pid          int
		comm, cgroup string
		args         []string
	}{
		{pidLLM, "llama-server", "0::/system.slice/docker-" + llmContainerID + ".scope\n",
			[]string{"/app/llama-server", "-m", "/models/Nemotron-Mini-4B-Instruct-Q4_K_M.gguf", "--parallel", "2", "--metrics"}},
		{pidDetector, "python3", "0::/kubepods/besteffort/pod7d1c0b3a-5e2f-4a6b-9c8d-1e2f3a4b5c6d/" + detContainerID + "\n",
			[]string{"python3", "/app/rtdetr_server.py", "--port", "8090"}},
		{pidHost, "blender", "0::/user.slice/user-1000.slice/session-2.scope\n", []string{"blender", "-b", "scene.blend"}},
	}
	for _, p := range procs {
		dir := filepath.Join(procRoot, strconv.Itoa(p.pid))
		write(t, filepath.Join(dir, "comm"), p.comm+"\n")
		write(t, filepath.Join(dir, "cmdline"), strings.Join(p.args, "\x00")+"\x00")
		write(t, filepath.Join(dir, "cgroup"), p.cgroup)
	}
	write(t, filepath.Join(dockerRoot, "containers", llmContainerID, "config.v2.json"),
		`{"State":{"Running":true,"Pid":4101},"ID":"`+llmContainerID+`","Config":{"Hostname":"4f6c3e1b2a9d","Image":"ghcr.io/ggml-org/llama.cpp:server-cuda"},"Name":"/ai-llm","Driver":"overlay2"}`)
	return procRoot, dockerRoot
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mockNVML is go-nvml's DGX H200 mock with the telemetry the GPU collector
// reads; GPU 0 runs the two model servers and a host process.
func mockNVML() nvml.Interface {
	srv := dgxh200.New()
	gpumock.NotSupported(srv) // the health calls; the figures below are set one by one
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: 38, Memory: 12}, nvml.SUCCESS
		}
		dev.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
			return nvml.Memory_v2{Total: 150_754_820_096, Used: 30 << 30}, nvml.SUCCESS
		}
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 41, nvml.SUCCESS }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 310_000, nvml.SUCCESS }
		ns := nvml.ERROR_NOT_SUPPORTED
		dev.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, ns }
		dev.GetClockInfoFunc = func(nvml.ClockType) (uint32, nvml.Return) { return 0, ns }
		dev.GetFanSpeedFunc = func() (uint32, nvml.Return) { return 0, ns }
		dev.GetPerformanceStateFunc = func() (nvml.Pstates, nvml.Return) { return nvml.PSTATE_UNKNOWN, ns }
		dev.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, ns }
		dev.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) { return 0, ns }
		dev.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, ns }
		if i != 0 {
			dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
			dev.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
				return nil, nvml.ERROR_NOT_FOUND
			}
			continue
		}
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			return []nvml.ProcessInfo{
				{Pid: pidLLM, UsedGpuMemory: 20 << 30},
				{Pid: pidDetector, UsedGpuMemory: 1 << 29},
				{Pid: pidHost, UsedGpuMemory: 2 << 30},
			}, nvml.SUCCESS
		}
		dev.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
			return []nvml.ProcessUtilizationSample{
				{Pid: pidLLM, TimeStamp: uint64(time.Now().UnixMicro()), SmUtil: 31},
				{Pid: pidDetector, TimeStamp: uint64(time.Now().UnixMicro()), SmUtil: 6},
			}, nvml.SUCCESS
		}
	}
	return srv
}

func approxEq(got *float64, want, tol float64) bool {
	return got != nil && math.Abs(*got-want) <= tol
}

func fmtp[T any](p *T) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// TestModelsToWebSocket: hub + agent + stub detector and llama.cpp servers
// + mock NVML over a fake /proc. The WebSocket shows both models with the
// servers' figures, the detector's latency percentiles from histogram
// deltas, the pipeline's pushed latency, and which model holds the GPU.
func TestModelsToWebSocket(t *testing.T) {
	const iv = 500 * time.Millisecond
	det := stub(t, map[string]http.HandlerFunc{
		"/health":  reply(200, rtdetrHealth),
		"/metrics": detectorMetrics(),
	})
	llm := stub(t, map[string]http.HandlerFunc{
		"/health":  reply(200, `{"status":"ok"}`),
		"/slots":   reply(200, collectTestdata(t, "llamacpp_slots.json")),
		"/props":   reply(200, collectTestdata(t, "llamacpp_props.json")),
		"/metrics": reply(200, collectTestdata(t, "llamacpp_metrics.txt")),
	})
	procRoot, dockerRoot := fakeHost(t)

	h := StartHub(t, iv, nil)
	procs := collect.NewProcs(procRoot)
	procs.DockerRoot, procs.PodmanRoot = dockerRoot, ""
	StartAgent(t, h.NATSURL(), "gpu01", iv, func(c *AgentSetup) {
		c.Collectors = []collect.Collector{
			collect.NewGPU(mockNVML(), nil, nil),
			collect.NewRTDETR(det, nil),
			collect.NewLlamaCpp(llm, nil),
			collect.NewScrape(collect.DefaultScrapeTargets(det, ""), nil),
		}
		c.Annotate = procs.Annotate
	})
	ws := DialWS(t, h)

	// The pipeline pushes its own latency, as the README's Python does.
	Publish(t, h.NATSURL(), metrics.LatencySubject("gpu01", "pipeline"),
		fmt.Appendf(nil, `{"v":1,"ts":%d,"ms":3200.0}`, time.Now().UnixNano()))

	raw, u := ws.UpdateWhere(t, "both models and the detector's p95", func(u metrics.Update) bool {
		return u.AIModels.RTDETR.Status == metrics.StatusHealthy && u.AIModels.Nemotron.Status == metrics.StatusHealthy &&
			u.Inference.RTDETR.P95 != nil && u.Inference.Pipeline.Avg != nil && len(u.GPUs) > 0 && len(u.GPUs[0].Processes) == 3
	})

	// ai_models.rtdetr: the seed's four fields, from /health.
	rt := raw["ai_models"].(map[string]any)["rtdetr"].(map[string]any)
	if rt["status"] != "healthy" || rt["model"] != "rtdetr_r50vd_coco_o365" || rt["device"] != "cuda:0" {
		t.Errorf("ai_models.rtdetr = %v", rt)
	}
	if v, ok := rt["vram_gb"].(float64); !ok || math.Abs(v-0.17) > 1e-6 {
		t.Errorf("ai_models.rtdetr.vram_gb = %v, want 0.17 (the server's own figure, not NVML's 0.5)", rt["vram_gb"])
	}
	// ai_models.nemotron: slots from /slots, VRAM from NVML (the server
	// reports none), tokens per second from /metrics.
	nm := u.AIModels.Nemotron
	if fmtp(nm.SlotsActive) != "1" || fmtp(nm.SlotsTotal) != "2" || fmtp(nm.ContextSize) != "4096" {
		t.Errorf("nemotron slots %s/%s ctx %s, want 1/2 4096", fmtp(nm.SlotsActive), fmtp(nm.SlotsTotal), fmtp(nm.ContextSize))
	}
	if nm.Model != "Nemotron-Mini-4B-Instruct-Q4_K_M.gguf" || !approxEq(nm.VRAMGB, 20, 1e-9) {
		t.Errorf("nemotron model %q vram %s, want the gguf name and 20 GB from NVML", nm.Model, fmtp(nm.VRAMGB))
	}
	if nm.Gauges["predicted_tokens_seconds"] != 57 || nm.Gauges["requests_processing"] != 1 {
		t.Errorf("nemotron gauges %v", nm.Gauges)
	}
	nmRaw := raw["ai_models"].(map[string]any)["nemotron"].(map[string]any)
	for _, k := range []string{"status", "slots_active", "slots_total", "context_size"} {
		if _, ok := nmRaw[k]; !ok {
			t.Errorf("ai_models.nemotron.%s missing", k)
		}
	}

	// inference: histogram_quantile over the deltas between scrapes.
	inf := u.Inference
	if !approxEq(inf.RTDETR.P95, 97.5, 1e-6) || !approxEq(inf.RTDETR.P99, 99.5, 1e-6) || !approxEq(inf.RTDETR.Avg, 75, 1e-6) {
		t.Errorf("rtdetr_latency_ms avg %s p95 %s p99 %s, want 75 97.5 99.5", fmtp(inf.RTDETR.Avg), fmtp(inf.RTDETR.P95), fmtp(inf.RTDETR.P99))
	}
	if inf.Throughput.ImagesPerMin == nil || *inf.Throughput.ImagesPerMin <= 0 {
		t.Errorf("images_per_min = %s, want a rate", fmtp(inf.Throughput.ImagesPerMin))
	}
	if !approxEq(inf.Pipeline.Avg, 3200, 1e-9) || !approxEq(inf.Pipeline.P95, 3200, 1e-9) {
		t.Errorf("pipeline_latency_ms avg %s p95 %s, want the pushed 3200", fmtp(inf.Pipeline.Avg), fmtp(inf.Pipeline.P95))
	}
	// Nothing feeds nemotron's latency here: null, not zero.
	if inf.Nemotron.Avg != nil || inf.Nemotron.P95 != nil || inf.Throughput.EventsPerMin != nil {
		t.Errorf("nemotron latency %s/%s, events %s: want null", fmtp(inf.Nemotron.Avg), fmtp(inf.Nemotron.P95), fmtp(inf.Throughput.EventsPerMin))
	}

	// gpus[0].processes: which model holds the GPU.
	byPID := map[uint32]metrics.ProcessView{}
	for _, p := range u.GPUs[0].Processes {
		byPID[p.PID] = p
	}
	want := []struct {
		pid                       uint32
		model, container, command string
		vram                      float64
		sm                        string
	}{
		{pidLLM, "nemotron", "ai-llm", "/app/llama-server -m /models/Nemotron-Mini-4B-Instruct-Q4_K_M.gguf --parallel 2 --metrics", 20, "31"},
		{pidDetector, "rtdetr", detContainerID[:12], "python3 /app/rtdetr_server.py --port 8090", 0.5, "6"},
		{pidHost, "", "", "blender -b scene.blend", 2, "null"},
	}
	for _, w := range want {
		p, ok := byPID[w.pid]
		if !ok {
			t.Errorf("pid %d missing from gpus[0].processes", w.pid)
			continue
		}
		if p.Model != w.model || p.Container != w.container || p.Command != w.command || !approxEq(p.VRAMGB, w.vram, 1e-9) || fmtp(p.SMPercent) != w.sm {
			t.Errorf("pid %d = model %q container %q command %q vram %s sm %s; want %q %q %q %v %s",
				w.pid, p.Model, p.Container, p.Command, fmtp(p.VRAMGB), fmtp(p.SMPercent), w.model, w.container, w.command, w.vram, w.sm)
		}
	}
	if u.Sources[metrics.SectionRTDETR] != "agent:gpu01" || u.Sources[metrics.SectionNemotron] != "agent:gpu01" {
		t.Errorf("sources %v", u.Sources)
	}
}

// TestModelServersMisbehaving runs one agent per kind of trouble against
// one hub and reads every host's models from the same update: each status
// and reason is right, and the hung server's host keeps publishing.
func TestModelServersMisbehaving(t *testing.T) {
	const iv = 500 * time.Millisecond
	slots := collectTestdata(t, "llamacpp_slots.json")
	props := collectTestdata(t, "llamacpp_props.json")
	// A port freed on 127.0.0.2: the stubs below listen on 127.0.0.1 and
	// may be handed the same port number, which then answered (HTTP 503
	// from another case's stub) where a refusal was expected.
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()

	type want struct {
		rtdetr, nemotron func(metrics.ModelView) string
	}
	check := func(status metrics.Status, reason string) func(metrics.ModelView) string {
		return func(m metrics.ModelView) string {
			if m.Status != status || !strings.Contains(m.Reason, reason) {
				return fmt.Sprintf("status %q reason %q, want %q with %q", m.Status, m.Reason, status, reason)
			}
			return ""
		}
	}
	cases := []struct {
		host     string
		det, llm map[string]http.HandlerFunc
		detURL   string // instead of a stub
		want     want
	}{
		{
			host: "loading",
			det:  map[string]http.HandlerFunc{"/health": reply(200, `{"status":"degraded","model_loaded":false,"device":"cpu","cuda_available":false}`)},
			llm:  map[string]http.HandlerFunc{"/health": reply(503, llamaLoading), "/slots": reply(503, llamaLoading), "/props": reply(503, llamaLoading)},
			want: want{check("degraded", "no model loaded"), check("loading", "Loading model")},
		},
		{
			host: "noslots",
			det:  map[string]http.HandlerFunc{"/health": reply(200, `{"status":"healthy","model_name":"rtdetr_v2_r101vd","gpu_utilization":41.5,"temperature":63,"power_watts":120.25}`)},
			llm: map[string]http.HandlerFunc{"/health": reply(200, `{"status":"ok"}`), "/slots": reply(501, llamaNoSlots),
				"/props": reply(200, props), "/metrics": reply(501, llamaNoMetrics)},
			want: want{
				func(m metrics.ModelView) string {
					if m.Status != "healthy" || m.Model != "rtdetr_v2_r101vd" || m.VRAMGB != nil || m.Extra["gpu_utilization"] != 41.5 || m.Extra["power_watts"] != 120.25 {
						return fmt.Sprintf("%+v: want healthy, base name, no VRAM, the extra fields kept", m)
					}
					return ""
				},
				func(m metrics.ModelView) string {
					if m.Status != "healthy" || m.SlotsActive != nil || fmtp(m.SlotsTotal) != "2" || fmtp(m.ContextSize) != "4096" {
						return fmt.Sprintf("status %s slots %s/%s ctx %s: want /props' 2 slots, 4096, active unknown",
							m.Status, fmtp(m.SlotsActive), fmtp(m.SlotsTotal), fmtp(m.ContextSize))
					}
					return ""
				},
			},
		},
		{
			host: "oldllama",
			det:  map[string]http.HandlerFunc{"/health": reply(200, `{"status":"healthy","model_loaded":true`)},
			llm:  map[string]http.HandlerFunc{"/health": reply(200, `{"status":"ok"}`), "/slots": reply(200, collectTestdata(t, "llamacpp_slots_state.json"))},
			want: want{check("unreachable", "bad JSON"), func(m metrics.ModelView) string {
				if m.Status != "healthy" || fmtp(m.SlotsActive) != "2" || fmtp(m.SlotsTotal) != "4" || fmtp(m.ContextSize) != "8192" {
					return fmt.Sprintf("state-form slots %s/%s ctx %s, want 2/4 8192", fmtp(m.SlotsActive), fmtp(m.SlotsTotal), fmtp(m.ContextSize))
				}
				return ""
			}},
		},
		{
			host:   "slow",
			detURL: refused,
			llm:    map[string]http.HandlerFunc{"/health": hang(t), "/slots": reply(200, slots)},
			want:   want{check("unreachable", "connection refused"), check("unreachable", "timeout")},
		},
	}
	h := StartHub(t, iv, nil)
	for _, c := range cases {
		detURL := c.detURL
		if detURL == "" {
			detURL = stub(t, c.det)
		}
		llmURL := stub(t, c.llm)
		StartAgent(t, h.NATSURL(), c.host, iv, func(cfg *AgentSetup) {
			cfg.Collectors = []collect.Collector{collect.NewRTDETR(detURL, nil), collect.NewLlamaCpp(llmURL, nil)}
		})
	}
	ws := DialWS(t, h)
	all := func(u metrics.Update) bool {
		for _, c := range cases {
			st, ok := HostStatus(u, c.host)
			if !ok || st.Models["rtdetr"].Status == "" || st.Models["nemotron"].Status == "" {
				return false
			}
		}
		return true
	}
	_, u := ws.UpdateWhere(t, "every host's models", all)
	for _, c := range cases {
		st, _ := HostStatus(u, c.host)
		if msg := c.want.rtdetr(st.Models["rtdetr"]); msg != "" {
			t.Errorf("%s rtdetr: %s", c.host, msg)
		}
		if msg := c.want.nemotron(st.Models["nemotron"]); msg != "" {
			t.Errorf("%s nemotron: %s", c.host, msg)
		}
		if st.Errors["nemotron"] != "" || st.Errors["rtdetr"] != "" {
			t.Errorf("%s: collector errors %v; an unhealthy server is a status, not a collector failure", c.host, st.Errors)
		}
	}

	// The hung llama server never holds a sample back: while it still
	// hangs, the slow host's samples keep coming, one per tick, each
	// saying "timeout" rather than leaving a hole.
	first, _ := HostStatus(u, "slow")
	_, u = ws.UpdateWhere(t, "three more samples from the slow host", func(u metrics.Update) bool {
		st, ok := HostStatus(u, "slow")
		return ok && st.Seq >= first.Seq+3
	})
	st, _ := HostStatus(u, "slow")
	if !st.Online || st.Models["nemotron"].Reason != "timeout" {
		t.Errorf("slow host online %v nemotron %+v", st.Online, st.Models["nemotron"])
	}
}
