package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Procs names the GPU compute processes NVML lists: their command, the
// container they run in, and the model they serve. It reads /proc through
// a root so tests can point it at a fake tree.
//
// NVML reports host pids, so the agent must run in the host's pid
// namespace (systemd on the host, or a container with pid: host), and in
// the host's cgroup namespace so /proc/<pid>/cgroup shows the full path
// that names the container. In a private pid namespace /proc/<pid> would
// be another process, or none.
type Procs struct {
	root     string
	matchers []compiledMatcher
	// DockerRoot and PodmanRoot are where the engines keep container
	// state, read to turn a container id into its name without talking
	// to the engine. Empty skips the lookup.
	DockerRoot string
	PodmanRoot string

	mu sync.Mutex
	// reading holds the pids whose /proc read has not returned. Reading
	// a process's cmdline takes its memory lock, so a process wedged in
	// the kernel (a hung GPU driver is the classic) blocks the reader in
	// uninterruptible sleep, possibly for good; such a pid is not read
	// again until that read returns.
	reading map[uint32]bool
	// known is what was read of each pid of the last annotation, kept
	// while the process with that start time lives: its command line and
	// cgroup are read once rather than every tick (three opens of 40
	// processes were half a GPU box's tick).
	known map[uint32]procInfo
}

// ModelMatcher says how to recognise the processes of one model: by the
// container they run in (its name, its id, or an id prefix of at least 12
// hex digits), or, as a fallback, by a regular expression over the command
// line.
type ModelMatcher struct {
	Model     string `yaml:"model"`
	Container string `yaml:"container"`
	Command   string `yaml:"command"`
}

// DefaultModelMatchers recognise llama.cpp's server as Nemotron and
// anything with "rtdetr" in its command line as the detector.
func DefaultModelMatchers() []ModelMatcher {
	return []ModelMatcher{
		{Model: metrics.RoleNemotron, Command: `llama-server|llama\.cpp`},
		{Model: metrics.RoleRTDETR, Command: `(?i)rt-?detr`},
	}
}

// Validate reports a matcher without a model or with a pattern that does
// not compile.
func (m ModelMatcher) Validate() error {
	if m.Model == "" {
		return fmt.Errorf("model matcher: model is empty")
	}
	if m.Container == "" && m.Command == "" {
		return fmt.Errorf("model matcher %s: needs a container or a command", m.Model)
	}
	if m.Command != "" {
		if _, err := regexp.Compile(m.Command); err != nil {
			return fmt.Errorf("model matcher %s: command: %w", m.Model, err)
		}
	}
	return nil
}

type compiledMatcher struct {
	model     string
	container string
	command   *regexp.Regexp
}

// maxCommand caps the command line kept per process: enough to tell
// servers apart, not a whole prompt someone passed as an argument.
const maxCommand = 512

// NewProcs returns an annotator reading root (default "/proc"). With no
// matchers it uses DefaultModelMatchers; a matcher that does not validate
// is skipped (call ModelMatcher.Validate at start-up to refuse it).
func NewProcs(root string, matchers ...ModelMatcher) *Procs {
	if root == "" {
		root = "/proc"
	}
	if len(matchers) == 0 {
		matchers = DefaultModelMatchers()
	}
	p := &Procs{root: root, DockerRoot: "/var/lib/docker", PodmanRoot: "/var/lib/containers/storage", reading: map[uint32]bool{}, known: map[uint32]procInfo{}}
	for _, m := range matchers {
		if m.Validate() != nil {
			continue
		}
		cm := compiledMatcher{model: m.Model, container: strings.ToLower(m.Container)}
		if m.Command != "" {
			cm.command = regexp.MustCompile(m.Command)
		}
		p.matchers = append(p.matchers, cm)
	}
	return p
}

// procInfo is what /proc says of one pid.
type procInfo struct {
	start              string // field 22 of /proc/<pid>/stat; "" unknown
	name, command      string
	container, runtime string // full id and engine
	containerName      string // when the engine's state names it
}

// label is what the dashboard shows for the container: its name when
// known, else the short id.
func (i procInfo) label() string {
	if i.containerName != "" {
		return i.containerName
	}
	return shortID(i.container)
}

// Annotate fills each GPU process's name, command, container and model,
// then gives each model the pids serving it, the GPUs they run on, the sum
// of their SM shares and, when the server did not report its own VRAM,
// the VRAM NVML counts for those processes. A pid
// that /proc cannot read keeps what NVML said. The pids are read side by
// side until ctx ends; the error names those that did not answer.
func (p *Procs) Annotate(ctx context.Context, s *metrics.Sample) error {
	if s == nil {
		return nil
	}
	var pidList []uint32
	for _, g := range s.GPUs {
		for _, proc := range g.Processes {
			pidList = append(pidList, proc.PID)
		}
	}
	cache, err := p.readAll(ctx, pidList)
	names := map[string]string{} // container id → name, per call
	vram := map[string]uint64{}
	vramKnown := map[string]bool{}
	pids := map[string][]uint32{}
	gpus := map[string][]int{}
	sm := map[string]float64{}
	smKnown := map[string]bool{}
	roles := sortedKeys(s.Models)
	for gi := range s.GPUs {
		for pi := range s.GPUs[gi].Processes {
			proc := &s.GPUs[gi].Processes[pi]
			info := cache[proc.PID]
			if info.container != "" && info.containerName == "" {
				name, seen := names[info.container]
				if !seen {
					name = p.containerName(info.container, info.runtime)
					names[info.container] = name
				}
				info.containerName = name
				cache[proc.PID] = info
				p.remember(proc.PID, info)
			}
			proc.Name, proc.Command = info.name, info.command
			proc.Container, proc.Runtime = info.label(), info.runtime
			proc.Model = p.modelOf(proc.PID, info, roles, s.Models)
			if proc.Model == "" {
				continue
			}
			if !containsPID(pids[proc.Model], proc.PID) {
				pids[proc.Model] = append(pids[proc.Model], proc.PID)
			}
			if proc.MemUsed != nil {
				vram[proc.Model] += *proc.MemUsed
				vramKnown[proc.Model] = true
			}
			if idx := s.GPUs[gi].Index; !slices.Contains(gpus[proc.Model], idx) {
				gpus[proc.Model] = append(gpus[proc.Model], idx)
			}
			if proc.SMUtil != nil {
				sm[proc.Model] += *proc.SMUtil
				smKnown[proc.Model] = true
			}
		}
	}
	for model, ps := range pids {
		m, ok := s.Models[model]
		if !ok {
			continue // no endpoint configured for it: nothing to annotate
		}
		for _, pid := range ps {
			if !containsPID(m.PIDs, pid) {
				m.PIDs = append(m.PIDs, pid)
			}
		}
		if m.MemUsed == nil && vramKnown[model] {
			v := vram[model]
			m.MemUsed = &v
		}
		m.GPUs = slices.Sorted(slices.Values(gpus[model]))
		if smKnown[model] {
			v := sm[model]
			m.SMPercent = &v
		}
		if m.Container == "" {
			if info := cache[ps[0]]; info.container != "" {
				m.Container = info.label()
			}
		}
		s.Models[model] = m
	}
	return err
}

// readAll reads /proc for each distinct pid, each on its own goroutine,
// and waits until all answered or ctx ended. A read that overruns goes on
// in the background and its pid is skipped until it returns.
func (p *Procs) readAll(ctx context.Context, pids []uint32) (map[uint32]procInfo, error) {
	type result struct {
		pid  uint32
		info procInfo
	}
	out := make(map[uint32]procInfo, len(pids))
	results := make(chan result, len(pids)) // buffered: a late read never blocks
	var errs []error
	waiting := map[uint32]bool{}
	p.mu.Lock()
	for _, pid := range pids {
		if waiting[pid] {
			continue // on two GPUs
		}
		if p.reading[pid] {
			errs = append(errs, fmt.Errorf("/proc/%d: an earlier read has not returned", pid))
			continue
		}
		p.reading[pid] = true
		waiting[pid] = true
		go func() {
			info := p.read(pid)
			p.mu.Lock()
			delete(p.reading, pid)
			p.mu.Unlock()
			results <- result{pid, info}
		}()
	}
	// Forget the pids gone from the GPUs.
	for pid := range p.known {
		if !waiting[pid] && !p.reading[pid] {
			delete(p.known, pid)
		}
	}
	p.mu.Unlock()
	for len(waiting) > 0 {
		select {
		case r := <-results:
			out[r.pid] = r.info
			delete(waiting, r.pid)
		case <-ctx.Done():
			for _, pid := range slices.Sorted(maps.Keys(waiting)) {
				errs = append(errs, fmt.Errorf("/proc/%d: no answer in time", pid))
			}
			return out, errors.Join(errs...)
		}
	}
	return out, errors.Join(errs...)
}

func containsPID(ps []uint32, pid uint32) bool { return slices.Contains(ps, pid) }

// modelOf attributes a process: the model's own pid list first, then the
// container its endpoint names, then the configured matchers. roles are
// the keys of models, sorted.
func (p *Procs) modelOf(pid uint32, info procInfo, roles []string, models map[string]metrics.Model) string {
	for _, role := range roles {
		if containsPID(models[role].PIDs, pid) {
			return role
		}
	}
	for _, role := range roles {
		if c := models[role].Container; c != "" && info.matchesContainer(c) {
			return role
		}
	}
	for _, m := range p.matchers {
		if m.container != "" && info.matchesContainer(m.container) {
			return m.model
		}
	}
	for _, m := range p.matchers {
		if m.command != nil && (m.command.MatchString(info.command) || m.command.MatchString(info.name)) {
			return m.model
		}
	}
	return ""
}

// sortedKeys keeps attribution stable when two models claim a process.
func sortedKeys(m map[string]metrics.Model) []string {
	return slices.Sorted(maps.Keys(m))
}

// matchesContainer compares a process's container with a configured one:
// the same name, the same id, or an id prefix of at least 12 characters
// (the short id runtimes print).
func (i procInfo) matchesContainer(want string) bool {
	if i.container == "" || want == "" {
		return false
	}
	want = strings.TrimPrefix(strings.ToLower(want), "/")
	if i.containerName != "" && strings.ToLower(i.containerName) == want {
		return true
	}
	return i.container == want || (len(want) >= 12 && strings.HasPrefix(i.container, want))
}

// containerName looks the id up in the engine's own state on disk:
// Docker's containers/<id>/config.v2.json ("Name": "/ai-llm"), Podman's
// overlay-containers/containers.json. Kubernetes names live in the API
// server, out of the agent's reach; those stay ids.
func (p *Procs) containerName(id, runtime string) string {
	switch runtime {
	case "docker":
		if p.DockerRoot == "" {
			return ""
		}
		b, err := readCapped(filepath.Join(p.DockerRoot, "containers", id, "config.v2.json"), 4<<20)
		if err != nil {
			return ""
		}
		var cfg struct {
			Name string `json:"Name"`
		}
		if json.Unmarshal(b, &cfg) != nil {
			return ""
		}
		return strings.TrimPrefix(cfg.Name, "/")
	case "podman":
		if p.PodmanRoot == "" {
			return ""
		}
		b, err := readCapped(filepath.Join(p.PodmanRoot, "overlay-containers", "containers.json"), 16<<20)
		if err != nil {
			return ""
		}
		var list []struct {
			ID    string   `json:"id"`
			Names []string `json:"names"`
		}
		if json.Unmarshal(b, &list) != nil {
			return ""
		}
		for _, c := range list {
			if c.ID == id && len(c.Names) > 0 {
				return c.Names[0]
			}
		}
	}
	return ""
}

// read names pid: from what is known of it while its start time is the
// same (a pid taken again by another process has another), else from its
// comm, cmdline and cgroup.
func (p *Procs) read(pid uint32) procInfo {
	dir := filepath.Join(p.root, strconv.FormatUint(uint64(pid), 10))
	start := startTime(dir)
	p.mu.Lock()
	old, ok := p.known[pid]
	p.mu.Unlock()
	if ok && start != "" && old.start == start {
		return old
	}
	info := procInfo{start: start}
	if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		info.name = strings.TrimSpace(string(b))
	}
	if b, err := readCapped(filepath.Join(dir, "cmdline"), 64<<10); err == nil {
		info.command = cleanCommand(b)
	}
	if b, err := readCapped(filepath.Join(dir, "cgroup"), 64<<10); err == nil {
		info.container, info.runtime = parseCgroup(string(b))
	}
	p.remember(pid, info)
	return info
}

// remember keeps info for pid when its start time is known.
func (p *Procs) remember(pid uint32, info procInfo) {
	if info.start == "" {
		return
	}
	p.mu.Lock()
	p.known[pid] = info
	p.mu.Unlock()
}

// startTime is the process's start time, in clock ticks since boot, from
// /proc/<pid>/stat: the 20th field after the command, which is in
// parentheses and may hold anything.
func startTime(dir string) string {
	b, err := readCapped(filepath.Join(dir, "stat"), 4<<10)
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

func readCapped(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(limit)))
}

// cleanCommand turns /proc/<pid>/cmdline's NUL-separated arguments into
// one line, capped at maxCommand bytes on a rune boundary.
func cleanCommand(b []byte) string {
	s := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	if len(s) <= maxCommand {
		return s
	}
	cut := maxCommand
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// parseCgroup finds the container in a /proc/<pid>/cgroup file (v2's one
// line or v1's many) and returns its id and runtime: "docker", "podman",
// "containerd", "cri-o", or "kubernetes" for a pod path that names no
// engine. A host process returns "", "".
func parseCgroup(content string) (id, runtime string) {
	for _, line := range strings.Split(content, "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if id, runtime = containerOfPath(parts[2]); id != "" {
			return id, runtime
		}
	}
	return "", ""
}

func containerOfPath(p string) (id, runtime string) {
	segs := strings.Split(p, "/")
	kube := strings.Contains(p, "kubepods")
	// The innermost segment that names a container wins: a container's
	// own sub-cgroups (init.scope under a delegated scope) sit below it.
	for i := len(segs) - 1; i >= 0; i-- {
		seg := strings.TrimSuffix(segs[i], ".scope")
		switch {
		case strings.HasPrefix(seg, "docker-") && isHexID(seg[len("docker-"):]):
			return seg[len("docker-"):], "docker"
		case strings.HasPrefix(seg, "cri-containerd-") && isHexID(seg[len("cri-containerd-"):]):
			return seg[len("cri-containerd-"):], "containerd"
		case strings.HasPrefix(seg, "crio-") && isHexID(seg[len("crio-"):]):
			return seg[len("crio-"):], "cri-o"
		case strings.HasPrefix(seg, "libpod-conmon-"):
			// Podman's monitor process, not the container itself.
			return "", ""
		case strings.HasPrefix(seg, "libpod-") && isHexID(seg[len("libpod-"):]):
			return seg[len("libpod-"):], "podman"
		case isHexID(seg) && i > 0:
			parent := segs[i-1]
			switch {
			case parent == "docker":
				return seg, "docker"
			case parent == "libpod_parent" || strings.HasPrefix(parent, "libpod_pod_"):
				return seg, "podman"
			case kube && (strings.HasPrefix(parent, "pod") || strings.Contains(parent, "-pod")):
				return seg, "kubernetes"
			case parent == "containerd" || (strings.HasSuffix(parent, ".slice") && strings.Contains(parent, "containerd")):
				return seg, "containerd"
			}
		}
	}
	return "", ""
}

// isHexID reports a full container id: 64 lowercase hex digits.
func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// shortID is the 12-digit form runtimes print.
func shortID(id string) string {
	if isHexID(id) {
		return id[:12]
	}
	return id
}
