// Command hub is sysperf's hub: it merges agent samples and its own
// sources and serves the dashboard, the API and the live feed.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysperf/sysperf/internal/config"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/hub"
	"github.com/sysperf/sysperf/internal/memlimit"
	"github.com/sysperf/sysperf/internal/server"
	"github.com/sysperf/sysperf/internal/sources"
	"github.com/sysperf/sysperf/internal/version"
)

type settings struct {
	hub.Config
	Healthcheck bool       `flag:"healthcheck" usage:"check GET /healthz on --http and exit 0 when healthy, 1 when not (for container health checks)"`
	LogLevel    slog.Level `flag:"log-level" usage:"debug, info, warn or error"`
	MemoryLimit int64      `flag:"memory-limit" usage:"soft memory limit of the hub in bytes (0: GOMEMLIMIT if set, else 3/4 of the container's memory limit, else 448 MiB; the last two are raised when they leave the heap less than a quarter of the live heap to allocate between collections)"`
}

func main() {
	s := settings{Config: hub.DefaultConfig(), LogLevel: slog.LevelInfo}
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		dataDir := s.DataDir
		if d := os.Getenv("SYSPERF_DATA_DIR"); d != "" {
			dataDir = d
		}
		if err := enroll.Command(os.Args[2:], dataDir, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "hub agent:", err)
			if errors.Is(err, enroll.ErrUsage) {
				fmt.Fprint(os.Stderr, enroll.Usage)
			}
			os.Exit(2)
		}
		return
	}
	if err := config.Load("hub", os.Args[1:], &s); err != nil {
		if errors.Is(err, config.ErrHelp) {
			os.Exit(0)
		}
		if errors.Is(err, config.ErrVersion) {
			fmt.Println(version.Line("hub"))
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "hub:", err)
		// Docker reserves exit code 2 of a health check; 1 is "unhealthy".
		if slices.Contains(os.Args[1:], "--healthcheck") || slices.Contains(os.Args[1:], "-healthcheck") {
			os.Exit(1)
		}
		os.Exit(2)
	}
	if s.Healthcheck {
		os.Exit(healthcheck(s.HTTP, s.HTTPTLSCert))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: s.LogLevel}))
	// go-redis has one process-wide logger; its lines go to debug.
	redis.SetLogger(sources.RedisLog{Log: log})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The process's setting, not the hub's: tests run many hubs in one.
	memlimit.Apply(ctx, memlimit.Choose(s.MemoryLimit, os.Getenv("GOMEMLIMIT"), "/sys/fs/cgroup"), log)
	if err := hub.Run(ctx, s.Config, hub.Plugs{}, log); err != nil {
		log.Error("hub failed", "err", err)
		os.Exit(1)
	}
}

// healthcheck is the exit status of --healthcheck: 0 healthy, 1 not.
func healthcheck(addr, certFile string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := server.Check(ctx, addr, certFile); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	return 0
}
