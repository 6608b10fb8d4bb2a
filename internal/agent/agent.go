// Package agent is the agent's loop: every interval it runs the collectors
// in parallel, each on a worker of its own, merges their sections into one
// sample and publishes it on JetStream, keeping a bounded backlog while
// NATS is unreachable.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Agent samples one host.
type Agent struct {
	cfg        Config
	log        *slog.Logger
	host       string
	boot       string
	collectors []collect.Collector
	workers    []*worker
	stop       chan struct{} // closed by Close: the workers end
	closeOnce  sync.Once
	backlog    queue
	seq        atomic.Uint64 // the next sample's

	// annotate is Plugs.Annotate or the settings' process annotator.
	annotate func(context.Context, *metrics.Sample) error

	// wake tells the publisher a sample was queued.
	wake chan struct{}

	// msgKey ends each sample's Nats-Msg-Id (metrics.MsgID): drawn at
	// start, never logged nor put in a sample.
	msgKey string
}

// queue is the agent's outbox: every sample passes through it on its way
// to NATS, oldest first. backlog keeps it in memory, diskBacklog in
// --backlog-dir so that it survives a restart.
type queue interface {
	// push appends e and drops the oldest beyond the bounds. first
	// reports whether these are the first drops since it was last empty.
	push(e entry, now time.Time) (dropped int, first bool)
	// peek returns the oldest sample still young enough to send.
	peek(now time.Time) (entry, bool)
	// pop removes the oldest sample if it is still id.
	pop(id string)
	// drained reports, once empty, the drops since it was last empty.
	drained() (empty bool, dropped uint64)
	len() int
	// stats returns the queued samples, their bytes and the drops since start.
	stats() (n, bytes int, dropped uint64)
	close() error
}

// New checks cfg and builds the agent and its collectors, and opens the
// backlog directory, so that one it cannot write stops start-up. Nothing
// is dialled until Run.
func New(cfg Config, plugs Plugs, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host := cfg.HostID
	if host == "" {
		name, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("hostname (set --host-id): %w", err)
		}
		host = metrics.HostToken(name)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("boot id: %w", err)
	}
	var key [metrics.MsgKeyBytes]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("de-duplication key: %w", err)
	}
	a := &Agent{
		cfg:    cfg,
		log:    log.With("host", host),
		host:   host,
		boot:   hex.EncodeToString(id[:]),
		msgKey: hex.EncodeToString(key[:]),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	// --once publishes nothing, and must not take the directory from the
	// agent that runs as a service.
	if cfg.BacklogDir != "" && !cfg.Once {
		d, err := openDiskBacklog(cfg.BacklogDir, cfg.Backlog, cfg.BacklogMaxBytes, segmentSize(cfg.BacklogMaxBytes), a.log)
		if err != nil {
			return nil, err
		}
		a.backlog = d
	} else {
		a.backlog = newBacklog(cfg.Backlog, cfg.BacklogMaxBytes)
	}
	a.collectors, a.annotate = plugs.Collectors, plugs.Annotate
	if a.collectors == nil {
		a.collectors = defaultCollectors(cfg, a.log)
		if a.annotate == nil {
			a.annotate = ModelAnnotator(cfg)
		}
	}
	a.startWorkers()
	return a, nil
}

// defaultCollectors is every collector the configuration asks for. Model
// collectors and their flags are added here.
func defaultCollectors(cfg Config, log *slog.Logger) []collect.Collector {
	cs := []collect.Collector{
		collect.NewHost(cfg.Mounts),
		collect.NewSystemGPU(log.With("collector", metrics.CollectorGPU)),
	}
	for _, spec := range cfg.ModelSpecs() {
		// Validate has checked every spec.
		if c, err := collect.NewModel(spec, nil); err == nil {
			cs = append(cs, c)
		}
	}
	targets := cfg.Scrape
	if targets == nil {
		targets = collect.DefaultScrapeTargets(cfg.seedRTDETRURL(), cfg.BackendMetricsURL)
	}
	if len(targets) > 0 {
		cs = append(cs, collect.NewScrape(targets, nil))
	}
	return cs
}

// Host is the host token the agent publishes under.
func (a *Agent) Host() string { return a.host }

// Pending is how many samples wait in the backlog for NATS, so a caller
// (the e2e tests) can tell that an outage is being buffered.
func (a *Agent) Pending() int { return a.backlog.len() }

// Close releases the collectors that hold resources (NVML) and the
// backlog directory.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() { close(a.stop) })
	var errs []error
	if err := a.backlog.close(); err != nil {
		errs = append(errs, fmt.Errorf("close backlog: %w", err))
	}
	for _, c := range a.collectors {
		if cl, ok := c.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", c.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Once collects one sample, for --once. The CPU percent and I/O rates are
// deltas, so it reads once, waits a second and returns the second reading.
func (a *Agent) Once(ctx context.Context) (*metrics.Sample, error) {
	a.gather(ctx, time.Now())
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Second):
	}
	return a.sample(ctx, time.Now()), nil
}

// Run samples every interval and publishes until ctx ends. Only a bad NATS
// URL fails it; an unreachable server is retried forever while samples
// queue in the backlog.
func (a *Agent) Run(ctx context.Context) error {
	auth, err := a.cfg.natsOptions(a.host)
	if err != nil {
		return err
	}
	nc, err := natsx.Connect(a.cfg.NATSURL, "sysperf-agent "+a.host, a.log, append(auth,
		nats.RetryOnFailedConnect(true),
		// The backlog is the only buffer: nats.go's own reconnect buffer
		// would send its samples ahead of older queued ones.
		nats.ReconnectBufSize(-1))...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	a.log.Info("agent started", "boot", a.boot, "interval", a.cfg.Interval,
		"nats", redact.URL(a.cfg.NATSURL), "subject", metrics.SampleSubject(a.host))

	done := make(chan struct{})
	go func() {
		defer close(done)
		a.publishLoop(ctx, nc, js)
	}()
	a.tickLoop(ctx)
	<-done
	if n, _, _ := a.backlog.stats(); n > 0 {
		if a.cfg.BacklogDir != "" {
			a.log.Info("stopping; unpublished samples stay in the backlog directory", "samples", n, "dir", a.cfg.BacklogDir)
		} else {
			a.log.Warn("stopping with unpublished samples (lost: no --backlog-dir)", "samples", n)
		}
	}
	return nil
}

// tickLoop collects at every multiple of the interval. A tick missed
// (the machine suspended, a loaded box) is skipped, not caught up: each
// sample is stamped with its own tick.
func (a *Agent) tickLoop(ctx context.Context) {
	iv := a.cfg.Interval
	timer := time.NewTimer(time.Until(time.Now().Truncate(iv).Add(iv)))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		tick := time.Now().Truncate(iv)
		s := a.sample(ctx, tick)
		a.enqueue(s)
		timer.Reset(time.Until(time.Now().Truncate(iv).Add(iv)))
	}
}

// sample gathers one sample stamped tick and takes the next seq.
func (a *Agent) sample(ctx context.Context, tick time.Time) *metrics.Sample {
	s := a.gather(ctx, tick)
	s.Seq = a.seq.Add(1) - 1
	return s
}

// collectorTimeout leaves a fifth of the interval for merging and
// publishing, so a hung collector never pushes the sample past its tick.
func (a *Agent) collectorTimeout() time.Duration {
	return a.cfg.Interval * 8 / 10
}

// worker runs one collector on a goroutine that lives as long as the
// agent, so a tick starts no goroutine: it hands each idle worker its job
// and waits for the answers. A worker still in an earlier tick's call (a
// hung NVML call, a server that ignores its timeout) is not handed another:
// that collector is reported as timed out at once, and nothing piles up
// behind it.
type worker struct {
	c    collect.Collector
	jobs chan job // holds one: a job is only sent to an idle worker
	busy atomic.Bool
}

type job struct {
	ctx  context.Context
	i    int
	part *metrics.Sample
	out  chan<- result
}

type result struct {
	i    int
	part *metrics.Sample
	err  error
}

// startWorkers starts one worker per collector; Close stops them.
func (a *Agent) startWorkers() {
	for _, c := range a.collectors {
		w := &worker{c: c, jobs: make(chan job, 1)}
		a.workers = append(a.workers, w)
		go func() {
			for {
				select {
				case <-a.stop:
					return
				case j := <-w.jobs:
					err := safeCollect(j.ctx, w.c, j.part)
					// Idle again before the answer: the next tick may
					// come as soon as it is read.
					w.busy.Store(false)
					j.out <- result{i: j.i, part: j.part, err: err}
				}
			}
		}()
	}
}

// gather runs every collector in parallel, each into its own scratch
// sample, and merges those that answer in time. One that overruns is
// abandoned for this tick (it finishes into its scratch sample, which
// nobody reads) and reported as timed out.
func (a *Agent) gather(ctx context.Context, tick time.Time) *metrics.Sample {
	s := &metrics.Sample{
		V:        metrics.Version,
		Host:     a.host,
		Boot:     a.boot,
		TS:       tick.UnixNano(),
		Interval: int64(a.cfg.Interval),
	}
	timeout := a.collectorTimeout()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Buffered: an abandoned collector's late answer never blocks.
	out := make(chan result, len(a.workers))
	got := make([]*result, len(a.workers))
	pending := 0
	for i, w := range a.workers {
		if !w.busy.CompareAndSwap(false, true) {
			continue // still in an earlier call
		}
		part := &metrics.Sample{Host: a.host, Boot: a.boot, TS: s.TS, Interval: s.Interval}
		w.jobs <- job{ctx: cctx, i: i, part: part, out: out}
		pending++
	}
wait:
	for pending > 0 {
		select {
		case r := <-out:
			got[r.i] = &r
			pending--
		case <-cctx.Done():
			// The deadline and late answers can be ready together;
			// answers that are there count.
			for pending > 0 {
				select {
				case r := <-out:
					got[r.i] = &r
					pending--
				default:
					break wait
				}
			}
		}
	}
	for i, w := range a.workers {
		r := got[i]
		if r == nil {
			setError(s, w.c.Name(), fmt.Sprintf("timed out after %v", timeout))
			continue
		}
		merge(s, r.part)
		if r.err != nil {
			setError(s, w.c.Name(), r.err.Error())
		}
	}
	if a.annotate != nil {
		// Its own budget: the collectors' may be spent by a hung one.
		actx, cancel := context.WithTimeout(ctx, a.cfg.Interval/10)
		defer cancel()
		if err := a.annotate(actx, s); err != nil {
			setError(s, metrics.CollectorProcs, err.Error())
		}
	}
	return s
}

// safeCollect turns a collector's panic into its error: one broken
// collector must not take the others down with the agent.
func safeCollect(ctx context.Context, c collect.Collector, s *metrics.Sample) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.Collect(ctx, s)
}

func setError(s *metrics.Sample, name, msg string) {
	if s.Errors == nil {
		s.Errors = map[string]string{}
	}
	// A collector's error may quote the URL it failed on; samples reach
	// NATS, JetStream and the dashboard.
	s.Errors[name] = redact.Text(msg)
}

// merge copies the sections a collector filled into s.
func merge(s, part *metrics.Sample) {
	if part.System != nil {
		s.System = part.System
	}
	s.GPUs = append(s.GPUs, part.GPUs...)
	if len(part.Models) > 0 {
		if s.Models == nil {
			s.Models = map[string]metrics.Model{}
		}
		maps.Copy(s.Models, part.Models)
	}
	if in := part.Inference; in != nil {
		if s.Inference == nil {
			s.Inference = &metrics.Inference{}
		}
		if len(in.Histograms) > 0 {
			if s.Inference.Histograms == nil {
				s.Inference.Histograms = map[string]metrics.Histogram{}
			}
			maps.Copy(s.Inference.Histograms, in.Histograms)
		}
		if len(in.Counters) > 0 {
			if s.Inference.Counters == nil {
				s.Inference.Counters = map[string]float64{}
			}
			maps.Copy(s.Inference.Counters, in.Counters)
		}
	}
	for k, v := range part.Errors {
		setError(s, k, v)
	}
}

// enqueue encodes s into the backlog and wakes the publisher.
func (a *Agent) enqueue(s *metrics.Sample) {
	b, err := metrics.Encode(s)
	if err != nil {
		a.log.Error("sample dropped", "seq", s.Seq, "err", err)
		return
	}
	e := entry{id: metrics.MsgID(s, a.msgKey), subject: metrics.SampleSubject(s.Host), ts: time.Unix(0, s.TS), data: b}
	if dropped, first := a.backlog.push(e, time.Now()); first {
		n, bytes, _ := a.backlog.stats()
		a.log.Warn("backlog full: dropping the oldest samples", "dropped", dropped, "kept", n, "bytes", bytes,
			"max_age", a.cfg.Backlog, "max_bytes", a.cfg.BacklogMaxBytes)
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// publishTimeout bounds one publish and its acknowledgement.
func (a *Agent) publishTimeout() time.Duration {
	return min(5*time.Second, max(time.Second, a.cfg.Interval))
}

// publishLoop publishes the backlog oldest first whenever a sample is
// queued, and retries every second while samples wait.
func (a *Agent) publishLoop(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) {
	var (
		failing bool // the last publish failed: an outage is on
		sent    int  // published since the outage began
	)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-retry.C:
		}
		for {
			e, ok := a.backlog.peek(time.Now())
			if !ok {
				break
			}
			var err error
			if nc.IsConnected() {
				err = a.publish(ctx, js, e)
			} else {
				// Name the server: before the first connection nothing
				// else in the log says which one is missing.
				err = fmt.Errorf("NATS %s not reachable (%s)", redact.URL(a.cfg.NATSURL), nc.Status())
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if !failing {
					a.log.Warn("publish failed; keeping samples in the backlog", "err", err, "backlog", a.backlog.len())
					failing, sent = true, 0
				}
				break
			}
			a.backlog.pop(e.id)
			if failing {
				sent++
			}
		}
		if empty, dropped := a.backlog.drained(); empty {
			if failing {
				a.log.Info("backlog published", "samples", sent, "dropped", dropped)
				failing = false
			}
			continue
		}
		retry.Reset(min(time.Second, a.cfg.Interval))
	}
}

func (a *Agent) publish(ctx context.Context, js jetstream.JetStream, e entry) error {
	ctx, cancel := context.WithTimeout(ctx, a.publishTimeout())
	defer cancel()
	msg := &nats.Msg{Subject: e.subject, Data: e.data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, e.id)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish %s: %w", metrics.PublicMsgID(e.id), err)
	}
	return nil
}
