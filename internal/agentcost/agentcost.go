// Package agentcost measures what a running agent costs the machine it
// watches, the way its user sees it: the whole process's CPU and resident
// memory over many collections, with the agent publishing to a real NATS
// server. It starts the agent binary given, against an embedded
// nats-server with the samples stream, counts the samples that arrive and
// reads the agent's scheduler statistics between the first and the last.
package agentcost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// HostID is the host token the measured agent publishes under.
const HostID = "agentcost"

// Run is one measurement.
type Run struct {
	// Agent is the path of the agent binary.
	Agent string
	// Interval is the agent's --interval.
	Interval time.Duration
	// Collections is how many samples the measurement spans.
	Collections int
	// Warmup is how many samples pass before the measurement starts: the
	// first has no CPU baseline and start-up is not what runs for months.
	Warmup int
	// Args are more agent flags.
	Args []string
	// ProcRoot is where the agent's /proc entry is read; default /proc.
	ProcRoot string
}

// Result is what one measurement found.
type Result struct {
	Run
	Elapsed  time.Duration
	CPU      time.Duration // over Collections
	Switches uint64        // thread switches over Collections
	Threads  int           // at the end
	Memory   Memory        // at the end
	RSSMax   uint64        // the largest VmRSS seen at a sample
	Load     [2]string     // /proc/loadavg's first three figures at start and end
}

// CPUPerCollection is the agent's whole CPU time divided by the samples it
// published: collection, encoding, publishing and everything idle between.
func (r Result) CPUPerCollection() time.Duration {
	return r.CPU / time.Duration(r.Collections)
}

// SwitchesPerCollection is the thread switches per sample.
func (r Result) SwitchesPerCollection() float64 {
	return float64(r.Switches) / float64(r.Collections)
}

// Measure starts an embedded NATS and the agent, and measures run.
func Measure(ctx context.Context, run Run, log *slog.Logger) (Result, error) {
	if run.Collections < 1 {
		return Result{}, errors.New("collections: at least 1")
	}
	if run.ProcRoot == "" {
		run.ProcRoot = "/proc"
	}
	store, err := os.MkdirTemp("", "agentcost-nats-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(store)
	// A private loopback server the measured agent alone uses: it needs
	// no enrolment, which would only add the hub's work to the figures.
	srv, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: store, Open: true}, log)
	if err != nil {
		return Result{}, err
	}
	defer srv.Shutdown()
	nc, err := srv.Connect("agentcost", log)
	if err != nil {
		return Result{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Result{}, fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = natsx.EnsureSamplesStream(sctx, js, natsx.SamplesStream{MaxAge: time.Hour})
	cancel()
	if err != nil {
		return Result{}, err
	}
	samples := make(chan *nats.Msg, run.Warmup+run.Collections+16)
	sub, err := nc.ChanSubscribe(metrics.SampleSubject(HostID), samples)
	if err != nil {
		return Result{}, fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Unsubscribe()

	args := append([]string{"--nats-url=" + srv.ClientURL(), "--host-id=" + HostID,
		"--interval=" + run.Interval.String()}, run.Args...)
	cmd := exec.Command(run.Agent, args...)
	// A service's state directory would put the backlog on disk; the
	// measurement is of the default, in-memory one unless Args say.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "STATE_DIRECTORY=") || strings.HasPrefix(kv, "SYSPERF_")
	})
	stderr := &tail{max: 8 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start %s: %w", run.Agent, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid
	res := Result{Run: run}

	// Start-up, NATS connect and the aligned first tick take up to an
	// interval more than the samples themselves.
	wait := func(what string) error {
		select {
		case m := <-samples:
			if _, err := metrics.Decode(m.Data); err != nil {
				return fmt.Errorf("%s: the agent published a sample that does not decode: %w", what, err)
			}
			return nil
		case err := <-exited:
			exited <- err
			return fmt.Errorf("%s: the agent exited (%v): %s", what, err, stderr)
		case <-time.After(3*run.Interval + 15*time.Second):
			return fmt.Errorf("%s: no sample from the agent for %v: %s", what, 3*run.Interval+15*time.Second, stderr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Reading /proc fails once the agent has exited and been reaped (with
	// no warm-up that can come before its exit is seen): then the exit and
	// its log are the error, not the missing threads.
	procErr := func(err error) error {
		select {
		case werr := <-exited:
			exited <- werr
			return fmt.Errorf("the agent exited (%v): %s", werr, stderr)
		case <-time.After(time.Second):
			return err
		}
	}
	for i := range run.Warmup {
		if err := wait(fmt.Sprintf("warm-up sample %d", i+1)); err != nil {
			return res, err
		}
	}
	res.Load[0] = loadavg(run.ProcRoot)
	start, err := ReadUsage(run.ProcRoot, pid)
	if err != nil {
		return res, procErr(err)
	}
	began := time.Now()
	for i := range run.Collections {
		if err := wait(fmt.Sprintf("sample %d of %d", i+1, run.Collections)); err != nil {
			return res, err
		}
		m, err := ReadMemory(run.ProcRoot, pid)
		if err != nil {
			return res, procErr(err)
		}
		res.RSSMax = max(res.RSSMax, m.RSS)
	}
	end, err := ReadUsage(run.ProcRoot, pid)
	if err != nil {
		return res, procErr(err)
	}
	res.Elapsed = time.Since(began)
	res.Load[1] = loadavg(run.ProcRoot)
	res.CPU = end.CPU - start.CPU
	res.Switches = end.Switches - start.Switches
	res.Threads = end.Threads
	if res.Memory, err = ReadMemory(run.ProcRoot, pid); err != nil {
		return res, procErr(err)
	}
	res.RSSMax = max(res.RSSMax, res.Memory.RSS)
	return res, nil
}

// loadavg is the machine's 1, 5 and 15 minute load, which tells how much
// else competed for the CPUs during a measurement.
func loadavg(procRoot string) string {
	b, err := os.ReadFile(procRoot + "/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// tail keeps the last max bytes written to it: the agent's log, quoted
// when it fails.
type tail struct {
	max int
	mu  sync.Mutex
	buf []byte
}

var _ io.Writer = (*tail)(nil)

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.TrimSpace(t.buf))
	if s == "" {
		return "(no log)"
	}
	return "agent log: " + s
}
