// Command agent samples one GPU host (NVML, host statistics, model
// servers) and publishes the samples on NATS for the hub.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/sysperf/sysperf/internal/agent"
	"github.com/sysperf/sysperf/internal/config"
	"github.com/sysperf/sysperf/internal/version"
)

type settings struct {
	agent.Config
	LogLevel slog.Level `flag:"log-level" usage:"debug, info, warn or error"`
}

// ConfigEnv keeps the agent off the hub's SYSPERF_CONFIG: both run side by
// side under `make run`, and the hub's keys are unknown to the agent.
func (*settings) ConfigEnv() string { return "SYSPERF_AGENT_CONFIG" }

func main() { os.Exit(run()) }

func init() { tuneRuntime(os.Getenv) }

// gcPercent is the agent's GOGC. The agent keeps well under a megabyte
// live and allocates about 7 KB per collection, so at Go's default the
// heap grows to the 4 MiB minimum goal before its first GC (some 40
// minutes at 5 s) and stays that large: after 2400 collections its anonymous
// memory was 6.6 MiB, against 2.5 after 60. At 25 the minimum goal is
// 1 MiB and the same run ends at 3.8 MiB, for no CPU per collection that
// the runs can tell; 10 saves no more (README, "Agent cost").
const gcPercent = 25

// tuneRuntime sets the agent's runtime defaults; getenv is os.Getenv, and
// whatever the environment sets (GOMAXPROCS, GOGC, GOMEMLIMIT) decides.
func tuneRuntime(getenv func(string) string) {
	// The agent works a millisecond every few seconds, mostly waiting on
	// the kernel and the network: one P is plenty, and spares the runtime
	// waking a second thread to look for work after every wake-up (half
	// the thread switches, a tenth of the CPU; see README, "Agent cost").
	// Blocked syscalls and cgo calls (a hung NVML) hand the P on as ever.
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// A memory limit set by the user paces the GC on its own; a lower
	// GOGC beside it would only add collections.
	if getenv("GOGC") == "" && getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// smaps is where the agent reads its own mappings.
const smaps = "/proc/self/smaps"

// trimDelay is how long after start the agent unmaps the pages only its
// start-up used (trim_linux.go): three collections, so that what every
// collection uses has been mapped since and is all that comes back, and
// at least 10 s, by when connecting to NATS is usually over; at most a
// minute.
func trimDelay(interval time.Duration) time.Duration {
	return min(max(3*interval, 10*time.Second), time.Minute)
}

// run returns the exit status, so that deferred clean-up (NVML shutdown,
// the signal handler) runs before the process exits.
func run() int {
	s := settings{Config: agent.DefaultConfig(), LogLevel: slog.LevelInfo}
	if err := config.Load("agent", os.Args[1:], &s); err != nil {
		if errors.Is(err, config.ErrHelp) {
			return 0
		}
		if errors.Is(err, config.ErrVersion) {
			fmt.Println(version.Line("agent"))
			return 0
		}
		fmt.Fprintln(os.Stderr, "agent:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: s.LogLevel}))

	// The mappings exec made, taken before the agent can load anything
	// (NVML, which the GPU collector loads, unloads and loads again while
	// backing off), so that only mappings that live as long as the process
	// are ever trimmed.
	maps, mapsErr := snapshotMappings(smaps)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := agent.New(s.Config, agent.Plugs{}, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		return 2
	}
	defer a.Close()

	if s.Once {
		sample, err := a.Once(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agent:", err)
			return 1
		}
		out := json.NewEncoder(os.Stdout)
		out.SetIndent("", "  ")
		if err := out.Encode(sample); err != nil {
			fmt.Fprintln(os.Stderr, "agent: print sample:", err)
			return 1
		}
		return 0
	}
	if mapsErr != nil {
		log.Debug("start-up pages stay mapped", "err", mapsErr)
	} else {
		t := time.AfterFunc(trimDelay(s.Interval), func() {
			n, err := maps.trim(smaps)
			log.Debug("unmapped start-up pages", "bytes", n, "err", err)
		})
		defer t.Stop()
	}
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped", "err", err)
		return 1
	}
	return 0
}
