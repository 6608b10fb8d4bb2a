package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

const (
	dockerID  = "4f6c3e1b2a9d8c7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e"
	kubeID    = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	podmanID  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	criID     = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	podUID    = "pod7d1c0b3a-5e2f-4a6b-9c8d-1e2f3a4b5c6d"
	podUIDSys = "kubepods-besteffort-pod7d1c0b3a_5e2f_4a6b_9c8d_1e2f3a4b5c6d.slice"
)

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		name, content, id, runtime string
	}{
		{"docker cgroup v2 systemd", "0::/system.slice/docker-" + dockerID + ".scope\n", dockerID, "docker"},
		{"docker cgroupfs v2", "0::/docker/" + dockerID + "\n", dockerID, "docker"},
		{"docker cgroup v1", "12:pids:/docker/" + dockerID + "\n11:memory:/docker/" + dockerID + "\n1:name=systemd:/docker/" + dockerID + "\n0::/system.slice/containerd.service\n", dockerID, "docker"},
		{"docker rootless", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker-" + dockerID + ".scope\n", dockerID, "docker"},
		{"kubernetes containerd systemd", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-" + strings.ReplaceAll(podUID, "-", "_") + ".slice/cri-containerd-" + kubeID + ".scope\n", kubeID, "containerd"},
		{"kubernetes cgroupfs", "0::/kubepods/besteffort/" + podUID + "/" + kubeID + "\n", kubeID, "kubernetes"},
		{"kubernetes v1", "11:devices:/kubepods/burstable/" + podUID + "/" + kubeID + "\n4:cpu,cpuacct:/kubepods/burstable/" + podUID + "/" + kubeID + "\n", kubeID, "kubernetes"},
		{"kubernetes cri-o", "0::/kubepods.slice/" + podUIDSys + "/crio-" + criID + ".scope\n", criID, "cri-o"},
		{"podman systemd", "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + podmanID + ".scope\n", podmanID, "podman"},
		{"podman machine.slice", "0::/machine.slice/libpod-" + podmanID + ".scope/container\n", podmanID, "podman"},
		{"podman cgroupfs", "0::/libpod_parent/" + podmanID + "\n", podmanID, "podman"},
		{"podman conmon is not the container", "0::/machine.slice/libpod-conmon-" + podmanID + ".scope\n", "", ""},
		{"host service", "0::/system.slice/llama-server.service\n", "", ""},
		{"host user session", "0::/user.slice/user-0.slice/session-3.scope\n", "", ""},
		{"host v1", "12:pids:/user.slice\n1:name=systemd:/user.slice/user-0.slice/session-1.scope\n0::/\n", "", ""},
		{"short id is not a container", "0::/docker/4f6c3e1b2a9d\n", "", ""},
		{"garbage", "not a cgroup file", "", ""},
	}
	for _, tt := range tests {
		id, rt := parseCgroup(tt.content)
		if id != tt.id || rt != tt.runtime {
			t.Errorf("%s: got %q %q, want %q %q", tt.name, id, rt, tt.id, tt.runtime)
		}
	}
}

type fakeProc struct {
	pid     uint32
	comm    string
	cmdline []string
	cgroup  string
	start   string // the stat file's start time; none without
}

func fakeProcRoot(t *testing.T, procs []fakeProc) string {
	t.Helper()
	root := t.TempDir()
	writeFakeProcs(t, root, procs)
	return root
}

func writeFakeProcs(t testing.TB, root string, procs []fakeProc) {
	t.Helper()
	for _, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(int(p.pid)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{
			"comm":    p.comm + "\n",
			"cmdline": strings.Join(p.cmdline, "\x00") + "\x00",
			"cgroup":  p.cgroup,
		}
		if p.start != "" {
			// pid (comm) state, 18 more fields, then the start time.
			files["stat"] = fmt.Sprintf("%d (%s) S %s%s 0 0 0\n", p.pid, p.comm, strings.Repeat("0 ", 18), p.start)
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestProcsAnnotate(t *testing.T) {
	root := fakeProcRoot(t, []fakeProc{
		// llama.cpp in Docker: matched by its command line.
		{pid: 4101, comm: "llama-server", cmdline: []string{"/app/llama-server", "-m", "/models/Nemotron-Mini-4B-Instruct-Q4_K_M.gguf", "-c", "4096", "--parallel", "2", "--metrics"},
			cgroup: "0::/system.slice/docker-" + dockerID + ".scope\n"},
		// The detector in a Kubernetes pod: matched by the container its
		// endpoint names (the command says only "python").
		{pid: 5202, comm: "python3", cmdline: []string{"python3", "-m", "uvicorn", "server:app", "--port", "8090"},
			cgroup: "0::/kubepods/besteffort/" + podUID + "/" + kubeID + "\n"},
		// A Podman job nobody configured: container known, model not.
		{pid: 6303, comm: "python", cmdline: []string{"python", "train.py", "--epochs", strings.Repeat("9", 1000)},
			cgroup: "0::/machine.slice/libpod-" + podmanID + ".scope\n"},
		// A host process named by pid by its model collector.
		{pid: 7404, comm: "worker", cmdline: []string{"/usr/bin/worker"}, cgroup: "0::/system.slice/worker.service\n"},
	})
	mem := func(v uint64) *uint64 { return &v }
	s := &metrics.Sample{
		GPUs: []metrics.GPU{
			{Index: 0, Processes: []metrics.Process{{PID: 4101, MemUsed: mem(20 << 30)}, {PID: 5202, MemUsed: mem(1 << 29)}}},
			{Index: 1, Processes: []metrics.Process{{PID: 4101, MemUsed: mem(4 << 30)}, {PID: 6303, MemUsed: mem(8 << 30)}, {PID: 7404}, {PID: 9999, MemUsed: mem(1)}}},
		},
		Models: map[string]metrics.Model{
			"rtdetr":   {Status: "healthy", MemUsed: mem(182536110), Container: kubeID[:12]},
			"nemotron": {Status: "healthy"},
			"worker":   {Status: "healthy", PIDs: []uint32{7404}},
		},
	}
	p := NewProcs(root)
	p.DockerRoot, p.PodmanRoot = fakeEngines(t)
	if err := p.Annotate(context.Background(), s); err != nil {
		t.Fatalf("Annotate: %v", err)
	}

	long := "python train.py --epochs " + strings.Repeat("9", maxCommand-len("python train.py --epochs ")) + "…"
	want := [][]metrics.Process{
		{
			{PID: 4101, Name: "llama-server", Command: "/app/llama-server -m /models/Nemotron-Mini-4B-Instruct-Q4_K_M.gguf -c 4096 --parallel 2 --metrics",
				MemUsed: mem(20 << 30), Container: "ai-llm", Runtime: "docker", Model: "nemotron"},
			{PID: 5202, Name: "python3", Command: "python3 -m uvicorn server:app --port 8090", MemUsed: mem(1 << 29),
				Container: kubeID[:12], Runtime: "kubernetes", Model: "rtdetr"},
		},
		{
			{PID: 4101, Name: "llama-server", Command: "/app/llama-server -m /models/Nemotron-Mini-4B-Instruct-Q4_K_M.gguf -c 4096 --parallel 2 --metrics",
				MemUsed: mem(4 << 30), Container: "ai-llm", Runtime: "docker", Model: "nemotron"},
			{PID: 6303, Name: "python", Command: long, MemUsed: mem(8 << 30), Container: "trainer", Runtime: "podman"},
			{PID: 7404, Name: "worker", Command: "/usr/bin/worker", Model: "worker"},
			// /proc has no such pid (it exited, or another namespace): NVML's word stands.
			{PID: 9999, MemUsed: mem(1)},
		},
	}
	for gi := range want {
		g, _ := json.Marshal(s.GPUs[gi].Processes)
		w, _ := json.Marshal(want[gi])
		if string(g) != string(w) {
			t.Errorf("gpu %d processes\n got %s\nwant %s", gi, g, w)
		}
	}
	// Nemotron's server reports no VRAM: NVML's sum over both GPUs fills it.
	assertModel(t, seedOnly(s.Models["nemotron"]), metrics.Model{Status: "healthy", MemUsed: mem(24 << 30), PIDs: []uint32{4101}, Container: "ai-llm"})
	// The detector's own figure stands.
	assertModel(t, seedOnly(s.Models["rtdetr"]), metrics.Model{Status: "healthy", MemUsed: mem(182536110), PIDs: []uint32{5202}, Container: kubeID[:12]})
	// NVML had no memory figure for the worker: still unknown, not zero.
	assertModel(t, seedOnly(s.Models["worker"]), metrics.Model{Status: "healthy", PIDs: []uint32{7404}})
}

// fakeEngines writes the container state Docker and Podman keep on disk,
// as they write it (trimmed to the fields around the name).
func fakeEngines(t *testing.T) (docker, podman string) {
	t.Helper()
	docker, podman = t.TempDir(), t.TempDir()
	dir := filepath.Join(docker, "containers", dockerID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"StreamConfig":{},"State":{"Running":true,"Pid":4101,"StartedAt":"2026-01-01T10:00:00Z"},"ID":"` + dockerID +
		`","Created":"2026-01-01T09:59:58Z","Path":"/app/llama-server","Args":["-m","/models/x.gguf"],"Config":{"Hostname":"4f6c3e1b2a9d","Image":"ghcr.io/ggml-org/llama.cpp:server-cuda"},"Name":"/ai-llm","RestartCount":0,"Driver":"overlay2"}`
	if err := os.WriteFile(filepath.Join(dir, "config.v2.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(podman, "overlay-containers"), 0o755); err != nil {
		t.Fatal(err)
	}
	list := `[{"id":"` + podmanID + `","names":["trainer"],"image":"b1c2","layer":"d3e4","metadata":"{\"image-name\":\"localhost/train:latest\"}","created":"2026-01-01T09:00:00Z"},` +
		`{"id":"` + criID + `","names":["other"]}]`
	if err := os.WriteFile(filepath.Join(podman, "overlay-containers", "containers.json"), []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	return docker, podman
}

// A process wedged in the kernel blocks whoever reads its cmdline, maybe
// for good (here a FIFO plays that file). The other processes are still
// named, the wedged one keeps NVML's word, the error names it, and the
// next sample does not pile a second read onto the stuck one.
func TestProcsAnnotateStuckRead(t *testing.T) {
	root := fakeProcRoot(t, []fakeProc{
		{pid: 10, comm: "llama-server", cmdline: []string{"llama-server"}, cgroup: "0::/user.slice\n"},
		{pid: 11, comm: "python3", cmdline: []string{"python3"}, cgroup: "0::/user.slice\n"},
	})
	stuck := filepath.Join(root, "11", "cmdline")
	if err := os.Remove(stuck); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(stuck, 0o600); err != nil {
		t.Skipf("no FIFO to stand for a stuck /proc file: %v", err)
	}
	p := NewProcs(root)
	p.DockerRoot, p.PodmanRoot = "", ""
	// Opening the writer end lets the blocked open return and closing it
	// gives the reader its EOF (O_NONBLOCK: no reader, no wait); a plain
	// file then takes the FIFO's place.
	release := func() {
		if w, err := os.OpenFile(stuck, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	}
	t.Cleanup(release)

	mem := uint64(1 << 30)
	newSample := func() *metrics.Sample {
		return &metrics.Sample{GPUs: []metrics.GPU{{Processes: []metrics.Process{{PID: 11, MemUsed: &mem}, {PID: 10}}}}}
	}
	for _, want := range []string{"/proc/11: no answer in time", "/proc/11: an earlier read has not returned"} {
		// Long enough for the healthy pid's three small reads on a loaded
		// machine; the stuck one never answers.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s := newSample()
		err := p.Annotate(ctx, s)
		cancel()
		if err == nil || err.Error() != want {
			t.Errorf("Annotate error = %v, want %q", err, want)
		}
		if got := s.GPUs[0].Processes[1]; got.Name != "llama-server" || got.Model != "nemotron" {
			t.Errorf("the other process was not named: %+v", got)
		}
		if got := s.GPUs[0].Processes[0]; got.Name != "" || got.MemUsed == nil || *got.MemUsed != mem {
			t.Errorf("the stuck process lost NVML's word: %+v", got)
		}
	}

	// Once the read returns, the pid is read again.
	release()
	if err := os.Remove(stuck); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stuck, []byte("python3\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	var s *metrics.Sample
	poll.Until(t, "an annotation without error once the abandoned read is out of the way", func() bool {
		s = newSample()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return p.Annotate(ctx, s) == nil
	})
	if got := s.GPUs[0].Processes[0]; got.Name != "python3" {
		t.Errorf("after the read returned: %+v", got)
	}
}

func TestProcsConfiguredMatchers(t *testing.T) {
	root := fakeProcRoot(t, []fakeProc{
		{pid: 10, comm: "python3", cmdline: []string{"python3", "detector.py"}, cgroup: "0::/system.slice/docker-" + dockerID + ".scope\n"},
		{pid: 11, comm: "llama-server", cmdline: []string{"llama-server"}, cgroup: "0::/user.slice\n"},
	})
	s := &metrics.Sample{GPUs: []metrics.GPU{{Processes: []metrics.Process{{PID: 10}, {PID: 11}}}}}
	// A container id prefix for the detector; no command matcher for
	// llama-server, so it stays unattributed.
	p := NewProcs(root, ModelMatcher{Model: "rtdetr", Container: dockerID[:16]}, ModelMatcher{Model: "bad", Command: "("})
	p.DockerRoot, p.PodmanRoot = "", ""
	if err := p.Annotate(context.Background(), s); err != nil {
		t.Fatalf("Annotate: %v", err)
	}
	if got := s.GPUs[0].Processes[0].Model; got != "rtdetr" {
		t.Errorf("by container id prefix: model = %q", got)
	}
	if got := s.GPUs[0].Processes[0].Container; got != dockerID[:12] {
		t.Errorf("without engine state the container is its short id, got %q", got)
	}
	if got := s.GPUs[0].Processes[1].Model; got != "" {
		t.Errorf("no matcher: model = %q, want none", got)
	}
	if s.Models != nil {
		t.Errorf("models appeared from nowhere: %+v", s.Models)
	}
	// By name, from Docker's state; the endpoint's configured container
	// wins over the command-line default.
	s = &metrics.Sample{GPUs: []metrics.GPU{{Processes: []metrics.Process{{PID: 10}, {PID: 11}}}},
		Models: map[string]metrics.Model{"nemotron": {Status: "healthy", Container: "/AI-LLM"}}}
	p = NewProcs(root, ModelMatcher{Model: "rtdetr", Container: "ai-llm"})
	p.DockerRoot, _ = fakeEngines(t)
	if err := p.Annotate(context.Background(), s); err != nil {
		t.Fatalf("Annotate: %v", err)
	}
	if got := s.GPUs[0].Processes[0]; got.Model != "nemotron" || got.Container != "ai-llm" {
		t.Errorf("by name: %+v", got)
	}
	for _, m := range []ModelMatcher{{Model: "x"}, {Command: "a"}, {Model: "x", Command: "("}} {
		if m.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", m)
		}
	}
	for _, m := range DefaultModelMatchers() {
		if err := m.Validate(); err != nil {
			t.Errorf("default matcher: %v", err)
		}
	}
}

// A process is read once while it lives: its start time tells it from a
// later process that takes its pid, and a pid gone from the GPUs is
// forgotten.
func TestProcsKnownWhileStartTimeHolds(t *testing.T) {
	root := t.TempDir()
	proc := func(start string, cmdline ...string) {
		writeFakeProcs(t, root, []fakeProc{{pid: 10, comm: "a) (b", cmdline: cmdline, cgroup: "0::/user.slice\n", start: start}})
	}
	p := NewProcs(root)
	p.DockerRoot, p.PodmanRoot = "", ""
	command := func(pids ...uint32) string {
		t.Helper()
		var procs []metrics.Process
		for _, pid := range pids {
			procs = append(procs, metrics.Process{PID: pid})
		}
		s := &metrics.Sample{GPUs: []metrics.GPU{{Processes: procs}}}
		if err := p.Annotate(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		return s.GPUs[0].Processes[0].Command
	}
	for _, step := range []struct {
		start, cmdline string
		pids           []uint32
		want           string
	}{
		{"100", "vllm", []uint32{10}, "vllm"},
		{"100", "changed", []uint32{10}, "vllm"},    // the same process: not read again
		{"200", "changed", []uint32{10}, "changed"}, // another process took the pid
		{"200", "third", []uint32{11}, ""},          // pid 10 left the GPUs
		{"200", "third", []uint32{10}, "third"},     // so it is read afresh
		{"", "no stat", []uint32{10}, "no stat"},    // no start time: read every time
		{"", "no stat again", []uint32{10}, "no stat again"},
	} {
		proc(step.start, step.cmdline)
		if step.start == "" {
			if err := os.Remove(filepath.Join(root, "10", "stat")); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		if got := command(step.pids...); got != step.want {
			t.Errorf("start %q, cmdline %q, pids %v: command %q, want %q", step.start, step.cmdline, step.pids, got, step.want)
		}
	}
}

// BenchmarkProcsAnnotate names the processes of a busy 8-GPU box: four
// processes per device, two of them on every device.
func BenchmarkProcsAnnotate(b *testing.B) {
	root := b.TempDir()
	var procs []fakeProc
	for pid := uint32(100); pid < 120; pid++ {
		procs = append(procs, fakeProc{pid: pid, comm: "python3", cmdline: []string{"python3", "-m", "rtdetr.serve"},
			cgroup: "0::/system.slice/docker-" + dockerID + ".scope\n", start: "4242"})
	}
	writeFakeProcs(b, root, procs)
	p := NewProcs(root)
	p.DockerRoot, p.PodmanRoot = "", ""
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s := &metrics.Sample{Models: map[string]metrics.Model{"rtdetr": {Status: "healthy"}}}
		for g := range 8 {
			s.GPUs = append(s.GPUs, metrics.GPU{Index: g, Processes: []metrics.Process{
				{PID: 100}, {PID: 101}, {PID: uint32(102 + 2*g)}, {PID: uint32(103 + 2*g)}}})
		}
		if err := p.Annotate(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// Every configured model, whatever server runs it, gets its GPUs and the
// SM share of its processes: vLLM's engine core and Ollama's runner by
// their kind's command line, a second vLLM by its container.
func TestProcsModelsOfEveryKind(t *testing.T) {
	root := fakeProcRoot(t, []fakeProc{
		{pid: 100, comm: "VLLM::EngineCor", cmdline: []string{"VLLM::EngineCore"}, cgroup: "0::/user.slice\n"},
		{pid: 101, comm: "python3", cmdline: []string{"python3", "-m", "vllm.entrypoints.openai.api_server"}, cgroup: "0::/system.slice/docker-" + dockerID + ".scope\n"},
		{pid: 200, comm: "ollama", cmdline: []string{"/usr/bin/ollama", "runner", "--model", "/root/.ollama/models/blobs/sha256-x", "--port", "40231"}, cgroup: "0::/system.slice/ollama.service\n"},
		{pid: 300, comm: "python", cmdline: []string{"python", "other.py"}, cgroup: "0::/user.slice\n"},
	})
	mem := func(v uint64) *uint64 { return &v }
	specs := []ModelSpec{
		{Kind: metrics.KindVLLM, Name: "qwen", URL: "http://h:8000", Command: `EngineCore`},
		{Kind: metrics.KindVLLM, Name: "llama", URL: "http://h:8001", Container: "ai-llm"},
		{Kind: metrics.KindOllama, Name: "ollama", URL: "http://h:11434"},
	}
	s := &metrics.Sample{
		GPUs: []metrics.GPU{
			{Index: 0, Processes: []metrics.Process{{PID: 100, MemUsed: mem(40 << 30), SMUtil: ptrF(55)}, {PID: 200, MemUsed: mem(5 << 30), SMUtil: ptrF(10)}}},
			{Index: 1, Processes: []metrics.Process{{PID: 100, MemUsed: mem(40 << 30), SMUtil: ptrF(50)}, {PID: 101, MemUsed: mem(20 << 30)}, {PID: 300, SMUtil: ptrF(5)}}},
		},
		Models: map[string]metrics.Model{"qwen": {Status: "healthy"}, "llama": {Status: "healthy"}, "ollama": {Status: "healthy"}},
	}
	p := NewProcs(root, append(KindMatchers(specs), DefaultModelMatchers()...)...)
	p.DockerRoot, p.PodmanRoot = fakeEngines(t)
	if err := p.Annotate(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		gpus []int
		sm   *float64
		vram uint64
	}{
		"qwen":   {[]int{0, 1}, ptrF(105), 80 << 30}, // 55 % on GPU 0 + 50 % on GPU 1
		"llama":  {[]int{1}, nil, 20 << 30},          // NVML gave no SM share for pid 101
		"ollama": {[]int{0}, ptrF(10), 5 << 30},
	} {
		m := s.Models[name]
		got := metrics.Model{GPUs: m.GPUs, SMPercent: m.SMPercent, MemUsed: m.MemUsed}
		assertClose(t, got, metrics.Model{GPUs: want.gpus, SMPercent: want.sm, MemUsed: mem(want.vram)})
	}
	if m := s.GPUs[1].Processes[2].Model; m != "" {
		t.Errorf("an unrelated process was given to %q", m)
	}
}
