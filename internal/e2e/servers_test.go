package e2e

import (
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/sysperf/sysperf/internal/agent"
	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/collect/gpumock"
	"github.com/sysperf/sysperf/pkg/metrics"
)

const (
	pidVLLM   = 6100
	pidOllama = 6200
)

// vllmMetrics is a vLLM 0.10 /metrics whose every scrape finds ten more
// requests, each with a 75 ms time to first token (all in the 50–100 ms
// bucket), and 500 more generated tokens: over any window the TTFT p95 is
// 97.5 ms and the average 75 ms, and at one scrape per 500 ms tick the
// agent sees 1000 tokens/s.
func vllmMetrics() http.HandlerFunc {
	var scrapes atomic.Int64
	return func(w http.ResponseWriter, _ *http.Request) {
		n := float64(scrapes.Add(1))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		l := `engine="0",model_name="Qwen/Qwen3-8B"`
		fmt.Fprintf(w, `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{%[1]s} 5.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{%[1]s} 6.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{%[1]s} 0.82
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{%[1]s} %[2]v
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.05",%[1]s} 0.0
vllm:time_to_first_token_seconds_bucket{le="0.1",%[1]s} %[3]v
vllm:time_to_first_token_seconds_bucket{le="+Inf",%[1]s} %[3]v
vllm:time_to_first_token_seconds_count{%[1]s} %[3]v
vllm:time_to_first_token_seconds_sum{%[1]s} %[4]v
`, l, n*500, n*10, n*10*0.075)
	}
}

// serversNVML is the H200 mock with GPU 0 running vLLM's engine core at
// 60 % SM and Ollama's runner at 20 %, drawing 310 W with no energy
// counter, so the agent estimates power × interval.
func serversNVML() nvml.Interface {
	srv := dgxh200.New()
	// The health calls the mock does not implement answer NOT_SUPPORTED
	// (a real driver's answer for an unsupported field), not a panic.
	gpumock.NotSupported(srv)
	ns := nvml.ERROR_NOT_SUPPORTED
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 80, Memory: 40}, nvml.SUCCESS }
		dev.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
			return nvml.Memory_v2{Total: 150_754_820_096, Used: 60 << 30}, nvml.SUCCESS
		}
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 55, nvml.SUCCESS }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 310_000, nvml.SUCCESS }
		dev.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, ns }
		dev.GetClockInfoFunc = func(nvml.ClockType) (uint32, nvml.Return) { return 0, ns }
		dev.GetFanSpeedFunc = func() (uint32, nvml.Return) { return 0, ns }
		dev.GetPerformanceStateFunc = func() (nvml.Pstates, nvml.Return) { return nvml.PSTATE_UNKNOWN, ns }
		dev.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, ns }
		dev.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) { return 0, ns }
		dev.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, ns }
		if i != 0 {
			dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
			dev.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) { return nil, nvml.ERROR_NOT_FOUND }
			continue
		}
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			return []nvml.ProcessInfo{{Pid: pidVLLM, UsedGpuMemory: 70 << 30}, {Pid: pidOllama, UsedGpuMemory: 5 << 30}}, nvml.SUCCESS
		}
		dev.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
			ts := uint64(time.Now().UnixMicro())
			return []nvml.ProcessUtilizationSample{{Pid: pidVLLM, TimeStamp: ts, SmUtil: 60}, {Pid: pidOllama, TimeStamp: ts, SmUtil: 20}}, nvml.SUCCESS
		}
	}
	return srv
}

// TestModelServersToWebSocket: a vLLM and an Ollama from the agent's
// models: list, their GPU processes found by their kinds' command lines,
// read into the update's models list with the windowed figures and the
// energy estimate worked out by hand.
func TestModelServersToWebSocket(t *testing.T) {
	const iv = 500 * time.Millisecond
	vllm := stub(t, map[string]http.HandlerFunc{"/health": reply(200, ""), "/metrics": vllmMetrics()})
	ollama := stub(t, map[string]http.HandlerFunc{"/api/ps": reply(200, collectTestdata(t, "ollama_ps.json"))})
	procRoot := t.TempDir()
	for _, p := range []struct {
		pid  int
		comm string
		args []string
	}{
		{pidVLLM, "VLLM::EngineCor", []string{"VLLM::EngineCore"}},
		{pidOllama, "ollama", []string{"/usr/bin/ollama", "runner", "--model", "/root/.ollama/models/blobs/sha256-a2af", "--port", "40231"}},
	} {
		dir := filepath.Join(procRoot, strconv.Itoa(p.pid))
		write(t, filepath.Join(dir, "comm"), p.comm+"\n")
		write(t, filepath.Join(dir, "cmdline"), strings.Join(p.args, "\x00")+"\x00")
		write(t, filepath.Join(dir, "cgroup"), "0::/system.slice/model.service\n")
	}

	h := StartHub(t, iv, nil)
	StartAgent(t, h.NATSURL(), "gpu02", iv, func(c *AgentSetup) {
		c.Models = []collect.ModelSpec{
			{Kind: metrics.KindVLLM, Name: "qwen", URL: vllm},
			{Kind: metrics.KindOllama, Name: "ollama", URL: ollama},
		}
		c.ProcRoot = procRoot
		c.Collectors = []collect.Collector{collect.NewGPU(serversNVML(), nil, nil)}
		for _, spec := range c.Models {
			m, err := collect.NewModel(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.Collectors = append(c.Collectors, m)
		}
		c.Annotate = agent.ModelAnnotator(c.Config)
	})
	ws := DialWS(t, h)

	find := func(u metrics.Update, name string) (metrics.ModelEntry, bool) {
		for _, e := range u.Models {
			if e.Host == "gpu02" && e.Name == name {
				return e, true
			}
		}
		return metrics.ModelEntry{}, false
	}
	_, u := ws.UpdateWhere(t, "qwen's TTFT and joules per token", func(u metrics.Update) bool {
		q, ok := find(u, "qwen")
		return ok && q.TTFT.P95 != nil && q.Energy != nil && q.Energy.JoulesPerToken != nil
	})
	q, _ := find(u, "qwen")
	near := func(what string, got *float64, want float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > 0.01*math.Abs(want) {
			t.Errorf("qwen %s = %s, want %v (±1 %%)", what, fmtp(got), want)
		}
	}
	if q.Kind != "vllm" || q.Status != "healthy" || q.Model != "Qwen/Qwen3-8B" || fmt.Sprint(q.GPUs) != "[0]" {
		t.Errorf("qwen = kind %q status %q model %q gpus %v", q.Kind, q.Status, q.Model, q.GPUs)
	}
	near("TTFT p95 ms", q.TTFT.P95, 97.5) // 0.05 + 0.95 × 0.05 s
	near("TTFT avg ms", q.TTFT.Avg, 75)
	near("tokens/s", q.GenTokensPerS, 1000) // 500 per 500 ms tick
	near("KV %", q.KVCachePercent, 82)
	near("waiting", q.Waiting, 6)
	near("SM %", q.SMPercent, 60)
	near("VRAM GB", q.VRAMGB, 70)
	// 310 W × 0.5 s split 60 : 20 — qwen 75 %: 116.25 J, 232.5 W; per
	// token 232.5 W / 1000 tokens/s.
	near("interval joules", q.Energy.IntervalJoules, 116.25)
	near("window watts", q.Energy.WindowWatts, 232.5)
	near("joules per token", q.Energy.JoulesPerToken, 0.2325)
	if !q.Energy.Estimate {
		t.Error("energy not labelled an estimate")
	}

	o, ok := find(u, "ollama")
	if !ok || o.Kind != "ollama" || o.Status != "healthy" || len(o.Loaded) != 2 || o.Loaded[0].Name != "gemma3:12b" {
		t.Fatalf("ollama = %+v", o)
	}
	if o.Energy == nil || o.Energy.IntervalWatts == nil || math.Abs(*o.Energy.IntervalWatts-77.5) > 0.775 {
		t.Errorf("ollama energy = %+v, want 77.5 W (25 %% of 310 W)", o.Energy)
	}
	if o.Energy.JoulesPerToken != nil || o.TTFT.P95 != nil {
		t.Error("Ollama counts no tokens and keeps no histogram, yet figures appeared")
	}
	if u.AIModels.RTDETR.Status != "unconfigured" || u.AIModels.Nemotron.Status != "unconfigured" {
		t.Errorf("seed sections = %+v", u.AIModels)
	}
}
