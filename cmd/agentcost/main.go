// Command agentcost measures a running agent's CPU per collection and its
// resident memory (see internal/agentcost); `make agentcost` runs it on
// bin/agent at the default 5 s interval and at 100 ms.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sysperf/sysperf/internal/agentcost"
	"github.com/sysperf/sysperf/internal/config"
)

type settings struct {
	Agent  string   `flag:"agent" usage:"agent binary to measure"`
	Runs   []string `flag:"runs" usage:"measurements, each interval:collections, comma separated"`
	Warmup int      `flag:"warmup" usage:"samples skipped before each measurement starts"`
	Args   []string `flag:"agent-args" usage:"more agent flags, comma separated"`
}

func main() { os.Exit(run()) }

func run() int {
	s := settings{Agent: "bin/agent", Runs: []string{"5s:60", "100ms:300"}, Warmup: 3}
	if err := config.Load("agentcost", os.Args[1:], &s); err != nil {
		if errors.Is(err, config.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "agentcost:", err)
		return 2
	}
	var runs []agentcost.Run
	for _, r := range s.Runs {
		iv, n, err := parseRun(r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agentcost:", err)
			return 2
		}
		runs = append(runs, agentcost.Run{Agent: s.Agent, Interval: iv, Collections: n, Warmup: s.Warmup, Args: s.Args})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fmt.Printf("agent %s, %d CPUs\n", s.Agent, runtime.NumCPU())
	fmt.Printf("%-8s %6s %8s %12s %9s %8s %8s %8s %8s %7s  %s\n", "interval", "n", "elapsed",
		"CPU/collect", "switches", "RSS MiB", "max", "anon", "file", "threads", "load before -> after")
	for _, r := range runs {
		res, err := agentcost.Measure(ctx, r, log)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agentcost:", err)
			return 1
		}
		m := res.Memory
		fmt.Printf("%-8s %6d %8s %9.3f ms %9.1f %8.1f %8.1f %8.1f %8.1f %7d  %s -> %s\n", r.Interval, r.Collections,
			res.Elapsed.Round(time.Second), float64(res.CPUPerCollection())/1e6, res.SwitchesPerCollection(),
			mib(m.RSS), mib(res.RSSMax), mib(m.Anon), mib(m.File), res.Threads, res.Load[0], res.Load[1])
	}
	return 0
}

// parseRun reads "5s:60".
func parseRun(s string) (time.Duration, int, error) {
	a, b, ok := strings.Cut(s, ":")
	iv, err := time.ParseDuration(a)
	if !ok || err != nil || iv <= 0 {
		return 0, 0, fmt.Errorf("runs %q: want interval:collections, e.g. 5s:60", s)
	}
	n, err := strconv.Atoi(b)
	if err != nil || n < 1 {
		return 0, 0, fmt.Errorf("runs %q: want interval:collections, e.g. 5s:60", s)
	}
	return iv, n, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
