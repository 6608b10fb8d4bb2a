package agentcost

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/logtest"
)

func quiet() *slog.Logger {
	log, _ := logtest.New(slog.LevelWarn)
	return log
}

// A thread's sched file as Linux 6.x prints it (abridged).
const schedText = `agent (4242, #threads: 7)
-------------------------------------------------------------------
se.exec_start                                :        729515.677960
se.vruntime                                  :           192.746689
se.sum_exec_runtime                          :            1234.005007
se.nr_migrations                             :                    3
nr_switches                                  :                   57
nr_voluntary_switches                        :                   50
nr_involuntary_switches                      :                    7
`

func TestParseSched(t *testing.T) {
	cpu, sw, err := parseSched([]byte(schedText))
	if err != nil {
		t.Fatal(err)
	}
	if want := 1234*time.Millisecond + 5007*time.Nanosecond; cpu != want || sw != 57 {
		t.Errorf("parseSched = %v, %d switches; want %v, 57", cpu, sw, want)
	}
	for _, bad := range []string{"", "se.sum_exec_runtime : 1.5\n", "se.sum_exec_runtime : x\nnr_switches : 1\n"} {
		if _, _, err := parseSched([]byte(bad)); err == nil {
			t.Errorf("parseSched(%q) gave no error", bad)
		}
	}
}

func TestParseMillis(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0.000001": time.Nanosecond, "12.5": 12*time.Millisecond + 500*time.Microsecond, "3": 3 * time.Millisecond,
	} {
		if got, err := parseMillis(in); err != nil || got != want {
			t.Errorf("parseMillis(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// The test's own process: its threads' run time grows as it burns CPU.
func TestReadUsageAndRSSOfThisProcess(t *testing.T) {
	before, err := ReadUsage("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.Threads < 1 || before.CPU <= 0 {
		t.Fatalf("usage = %+v", before)
	}
	x := 0
	for i := range 20_000_000 {
		x += i * i
	}
	_ = x
	after, err := ReadUsage("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.CPU <= before.CPU {
		t.Errorf("CPU %v after burning, %v before", after.CPU, before.CPU)
	}
	m, err := ReadMemory("/proc", os.Getpid())
	if err != nil || m.RSS == 0 || m.Peak < m.RSS || m.Anon == 0 || m.File == 0 || m.Anon+m.File > m.RSS {
		t.Errorf("ReadMemory = %+v, %v", m, err)
	}
	if _, err := ReadUsage("/proc", 1<<30); err == nil {
		t.Error("a process that does not exist gave no error")
	}
}

// An agent that fails at start-up ends the measurement with its log.
func TestMeasureAgentThatExits(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "agent")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'agent: nats-url: bad' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Measure(context.Background(), Run{Agent: bin, Interval: 100 * time.Millisecond, Collections: 3}, quiet())
	if err == nil || !strings.Contains(err.Error(), "agent exited") || !strings.Contains(err.Error(), "agent: nats-url: bad") {
		t.Errorf("Measure = %v, want the exit and the agent's log", err)
	}
}

// The real agent, built from this tree, measured over a few collections.
func TestMeasureRealAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent")
	}
	bin := filepath.Join(t.TempDir(), "agent")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	res, err := Measure(context.Background(), Run{Agent: bin, Interval: 100 * time.Millisecond, Collections: 5, Warmup: 1}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if res.CPU <= 0 || res.CPUPerCollection() <= 0 || res.Threads < 1 || res.Memory.RSS == 0 || res.RSSMax < res.Memory.RSS {
		t.Errorf("result = %+v", res)
	}
}
