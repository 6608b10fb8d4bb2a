// Command hub is sysperf's hub: it merges agent samples and its own
// sources and serves the dashboard, the API and the live feed.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/sysperf/sysperf/internal/config"
	"github.com/sysperf/sysperf/internal/hub"
)

type settings struct {
	hub.Config
	Healthcheck bool   `flag:"healthcheck" usage:"check GET /healthz on --http and exit 0 when healthy, 1 when not (for container health checks)"`
	LogLevel    string `flag:"log-level" usage:"debug, info, warn or error"`
}

func main() {
	s := settings{Config: hub.DefaultConfig(), LogLevel: "info"}
	if err := config.Load("hub", os.Args[1:], &s); err != nil {
		if errors.Is(err, config.ErrHelp) {
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
		os.Exit(healthcheck(s.HTTP))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.LogLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "hub: log-level %q: %v\n", s.LogLevel, err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := hub.Run(ctx, s.Config, log); err != nil {
		log.Error("hub failed", "err", err)
		os.Exit(1)
	}
}

// healthcheck GETs /healthz; an unspecified listen host is reached on
// loopback.
func healthcheck(addr string) int {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "healthcheck: http %q: %v\n", addr, err)
		return 1
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: /healthz answered", resp.Status)
		return 1
	}
	return 0
}
