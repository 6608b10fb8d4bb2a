//go:build cgo

package agent

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/collect/gpumock"
	"github.com/sysperf/sysperf/internal/collect/modelstub"
)

// BenchmarkTick is one tick of the agent's collection path on a full GPU
// box: the host collector on this machine's /proc; the GPU collector on
// go-nvml's DGX H200 mock, 8 GPUs with every health field answering; four
// model servers (vLLM, SGLang, TGI, Ollama) on loopback stubs answering
// their documented payloads; 40 GPU processes, 5 per GPU, named from a
// fake /proc and attributed to the models; and the energy split: the
// agent's collection, less encoding and publishing. cpu-ns/op is the CPU the process spent per tick, the
// loopback servers' included; ns/op the tick's wall time.
func BenchmarkTick(b *testing.B) {
	srv := dgxh200.New()
	gpumock.NotSupported(srv)
	h := &gpumock.H200{}
	h.Healthy(srv, nil)
	var energy atomic.Uint64 // mJ, moving every read so each tick has joules to split
	procRoot := b.TempDir()
	commands := []string{"vllm serve Qwen/Qwen3-8B", "python3 -m sglang.launch_server", "text-generation-server serve m", "ollama runner --model m"}
	for i, dev := range srv.Devices {
		var procs []nvml.ProcessInfo
		for p := range 5 {
			pid := uint32(20_000 + 5*i + p)
			procs = append(procs, nvml.ProcessInfo{Pid: pid, UsedGpuMemory: 8 << 30})
			writeProc(b, procRoot, pid, commands[(i+p)%len(commands)])
		}
		d := dev.(*server.Device)
		gpumock.Processes(d, procs, nil, nil)
		// Each call has samples newer than the last, as a busy GPU does.
		d.GetProcessUtilizationFunc = func(after uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
			out := make([]nvml.ProcessUtilizationSample, len(procs))
			for j, p := range procs {
				out[j] = nvml.ProcessUtilizationSample{Pid: p.Pid, TimeStamp: after + 1, SmUtil: uint32(10 + j)}
			}
			return out, nvml.SUCCESS
		}
		d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return energy.Add(3_500_000), nvml.SUCCESS }
	}
	gpu := collect.NewGPU(srv, nil, nil)
	cs := []collect.Collector{collect.NewHost(nil), gpu}
	cfg := testConfig(5*time.Second, cs...)
	cfg.ProcRoot = procRoot
	for _, d := range modelstub.Documented {
		spec := collect.ModelSpec{Kind: d.Kind, Name: d.Kind, URL: modelstub.Serve(b, filepath.Join("..", "collect", "testdata", d.File))}
		c, err := collect.NewModel(spec, nil)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Models = append(cfg.Models, spec)
		cfg.Collectors = append(cfg.Collectors, c)
	}
	cfg.Annotate = ModelAnnotator(cfg.Config)
	a, err := New(cfg.Config, cfg.Plugs, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Close() })
	ctx := context.Background()
	tick := time.Now()
	a.gather(ctx, tick)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		tick = tick.Add(5 * time.Second)
		h.Tick.Add(1)
		s := a.gather(ctx, tick)
		if len(s.GPUs) != 8 || len(s.Models) != 4 || len(s.Errors) > 0 {
			b.Fatalf("%d GPUs, %d models, errors %v", len(s.GPUs), len(s.Models), s.Errors)
		}
		if m := s.Models["vllm"]; m.Energy == nil || s.GPUs[7].Processes[4].Model == "" {
			b.Fatalf("no energy or model for the GPU processes: %+v, %+v", m, s.GPUs[7].Processes)
		}
	}
	// The stub servers' share of the process's CPU is in it too.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU the process has spent, user and system, in ns.
func processCPU(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// writeProc makes a process's comm, cmdline, cgroup and stat under root.
func writeProc(tb testing.TB, root string, pid uint32, cmdline string) {
	tb.Helper()
	dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, body := range map[string]string{
		"comm":    strings.Fields(cmdline)[0],
		"cmdline": strings.ReplaceAll(cmdline, " ", "\x00") + "\x00",
		"cgroup":  "0::/system.slice/model-" + strconv.FormatUint(uint64(pid), 10) + ".service\n",
		// pid (comm) state, 18 more fields, the start time, and more.
		"stat": strconv.FormatUint(uint64(pid), 10) + " (" + strings.Fields(cmdline)[0] + ") S " + strings.Repeat("0 ", 18) + "4242 0 0\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}
