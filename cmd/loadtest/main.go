// Command loadtest plays a fleet of agents and browsers against a running
// hub and prints what it cost the hub (see internal/loadtest, and
// `make loadtest`, which starts a hub of its own).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sysperf/sysperf/internal/config"
	"github.com/sysperf/sysperf/internal/loadtest"
)

type settings struct {
	NATSURL   string        `flag:"nats-url" usage:"the hub's NATS"`
	NATSCreds string        `flag:"nats-creds" usage:"credentials file for NATS (empty: none)"`
	Hub       string        `flag:"hub" usage:"the hub's dashboard URL"`
	TokenFile string        `flag:"token-file" usage:"file holding the dashboard token, sent as a bearer token (empty: none)"`
	HubPID    int           `flag:"hub-pid" usage:"the hub's pid, for its CPU and memory (0: not measured)"`
	Hosts     int           `flag:"hosts" usage:"hosts to play"`
	GPUs      int           `flag:"gpus" usage:"GPUs per host"`
	Procs     int           `flag:"procs" usage:"GPU processes per GPU"`
	Figures   string        `flag:"figures" usage:"walk: each figure a bounded random walk per GPU, a few GPUs hot at a time; uniform: every figure drawn at random each sample (the tool's figures before the walk)"`
	Interval  time.Duration `flag:"interval" usage:"sample interval of each host"`
	Browsers  int           `flag:"browsers" usage:"WebSocket clients"`
	View      string        `flag:"view" usage:"query string of the browsers' /ws/system URL (e.g. host=load0000)"`
	Warmup    time.Duration `flag:"warmup" usage:"time before measuring"`
	Duration  time.Duration `flag:"duration" usage:"time measured"`
	HostShift int           `flag:"host-shift" usage:"number of the first host (two tools on one hub)"`
	DataDir   string        `flag:"data-dir" usage:"the hub's data directory: each host is enrolled there and connects with its own credential (empty: one connection, with --nats-creds if set)"`
	// The ingest mode (internal/loadtest/ingest.go).
	Ingest bool `flag:"ingest" usage:"publish as fast as JetStream acks for --duration, no browsers, and report samples stored per second and the hub's CPU per sample"`
	Window int  `flag:"window" usage:"ingest and restart: publishes awaiting their ack, per host"`
	// The restart mode (internal/loadtest/restart.go).
	Restart bool          `flag:"restart" usage:"run a hub of its own (--hub-bin), fill --span of samples, restart it and time /healthz and the 60m history"`
	HubBin  string        `flag:"hub-bin" usage:"restart: the hub binary"`
	Span    time.Duration `flag:"span" usage:"restart: history filled before the restart"`
	// The prefill (internal/loadtest/prefill.go).
	Prefill time.Duration `flag:"prefill" usage:"before the live load, fill the hub with this much of every host's samples stamped over the past (e.g. 60m: the figures are then those of a hub that has run for an hour); 0: none"`
}

func main() { os.Exit(run()) }

func run() int {
	s := settings{
		NATSURL: "nats://127.0.0.1:4321", Hub: "http://127.0.0.1:8321",
		Hosts: 200, GPUs: 8, Procs: 2, Figures: loadtest.FiguresWalk, Interval: 5 * time.Second, Browsers: 10,
		Warmup: 15 * time.Second, Duration: 60 * time.Second, Window: 32, HubBin: "bin/hub", Span: 60 * time.Minute,
	}
	if err := config.Load("loadtest", os.Args[1:], &s); err != nil {
		if errors.Is(err, config.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 2
	}
	if err := loadtest.CheckFigures(s.Figures); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := loadtest.Config{
		NATSURL: s.NATSURL, HubURL: s.Hub, Header: http.Header{}, Hosts: s.Hosts, GPUs: s.GPUs, Procs: s.Procs, Figures: s.Figures,
		Interval: s.Interval, Duration: s.Duration, Warmup: s.Warmup, Browsers: s.Browsers, View: s.View,
		HubPID: s.HubPID, HostShift: s.HostShift, DataDir: s.DataDir,
	}
	if s.DataDir != "" {
		dir, err := os.MkdirTemp("", "sysperf-loadtest-creds-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		cfg.CredsDir = dir
	}
	if s.NATSCreds != "" {
		cfg.NATSOpts = append(cfg.NATSOpts, nats.UserCredentials(s.NATSCreds))
	}
	if s.TokenFile != "" {
		b, err := os.ReadFile(s.TokenFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			return 2
		}
		tok, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		cfg.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if s.Restart {
		rcfg := loadtest.RestartConfig{Config: cfg, HubBin: s.HubBin, Span: s.Span, Window: s.Window}
		r, err := loadtest.Restart(ctx, rcfg, log)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			return 1
		}
		r.Report(os.Stdout, rcfg)
		return 0
	}
	if s.Ingest {
		icfg := loadtest.IngestConfig{Config: cfg, Window: s.Window}
		r, err := loadtest.Ingest(ctx, icfg, log)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			return 1
		}
		r.Report(os.Stdout, icfg)
		return 0
	}
	if s.Prefill > 0 {
		if cfg.DataDir != "" {
			creds, err := loadtest.Enroll(cfg.DataDir, cfg.CredsDir, cfg.HostShift, cfg.Hosts)
			if err != nil {
				fmt.Fprintln(os.Stderr, "loadtest:", err)
				return 1
			}
			cfg.Creds = creds
		}
		p, err := loadtest.Prefill(ctx, cfg, s.Window, s.Prefill, log)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			return 1
		}
		p.Report(os.Stdout, cfg, s.Prefill)
	}
	r, err := loadtest.Run(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 1
	}
	r.Report(os.Stdout, cfg)
	return 0
}
