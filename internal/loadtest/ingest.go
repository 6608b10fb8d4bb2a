package loadtest

// The ingest mode: every host publishes real samples as fast as JetStream
// acks them, a bounded window of asynchronous publishes each, for a while;
// then the tool waits until the hub has consumed all of them. It reports
// what JetStream stored per second and what the whole hub process (its
// embedded NATS with the file store included) spent per sample consumed.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// IngestConfig is one ingest run: Config's hosts, GPUs, hub and Duration
// (how long the hosts publish); Window is each host's publishes awaiting
// their ack.
type IngestConfig struct {
	Config
	Window int
	// Stamp, when set, gives sample seq of host n its timestamp (a backlog
	// spread over the past); nil stamps each sample when it is built.
	Stamp func(n int, seq uint64) time.Time
	// PerHost, when positive, stops each host after that many samples.
	PerHost int
	// NoMsgID publishes without Nats-Msg-Id. Only for filling a hub's
	// past (Prefill): the server keeps every id of its de-duplication
	// window in a map that never shrinks while it holds any, so a backlog
	// of an hour published in minutes would leave the hub with a map sized
	// for a rate its live agents never reach.
	NoMsgID bool
}

// IngestResult holds the figures of an ingest run.
type IngestResult struct {
	Stored  int64         // samples JetStream acked
	Errors  int64         // publishes that failed
	Publish time.Duration // while the hosts published
	// Consumed is what the hub accepted (sysperf_ingest_samples_total)
	// and Dropped what it refused (a sample stamped before its 60m window)
	// from the start until it had handled all stored samples, and Drained
	// how long that took from the start.
	Consumed int64
	Dropped  int64
	Drained  time.Duration
	Complete bool // false: the hub had not consumed every sample in time
	HubCPU   time.Duration
	ToolCPU  time.Duration
}

// drainWait bounds the wait for the hub to consume a backlog.
const drainWait = 5 * time.Minute

// Ingest runs the ingest mode.
func Ingest(ctx context.Context, cfg IngestConfig, log *slog.Logger) (IngestResult, error) {
	if cfg.Hosts <= 0 || cfg.Duration <= 0 || cfg.Window <= 0 {
		return IngestResult{}, errors.New("loadtest: hosts, duration and window must be positive")
	}
	conns, err := connect(cfg.Config)
	if err != nil {
		return IngestResult{}, err
	}
	defer func() {
		for _, c := range conns {
			c.nc.Close()
		}
	}()
	// One JetStream context per connection, each bounding its own window.
	jss := make([]jetstream.JetStream, len(conns))
	for i, c := range conns {
		if jss[i], err = jetstream.New(c.nc, jetstream.WithPublishAsyncMaxPending(cfg.Window)); err != nil {
			return IngestResult{}, fmt.Errorf("loadtest: jetstream: %w", err)
		}
	}
	consumed0, dropped0, err := hubSamples(ctx, cfg.Config)
	if err != nil {
		return IngestResult{}, err
	}
	cpu0, tool0 := procCPU(cfg.HubPID), procCPU(os.Getpid())
	start := time.Now()
	pctx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var stored, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range cfg.Hosts {
		js := jss[min(i, len(jss)-1)]
		if len(jss) < cfg.Hosts {
			// One shared connection: one context per host, so the window
			// stays per host.
			if js, err = jetstream.New(conns[0].nc, jetstream.WithPublishAsyncMaxPending(cfg.Window)); err != nil {
				return IngestResult{}, fmt.Errorf("loadtest: jetstream: %w", err)
			}
		}
		wg.Go(func() { flood(pctx, js, cfg, i+cfg.HostShift, &stored, &failed) })
	}
	wg.Wait()
	r := IngestResult{Stored: stored.Load(), Errors: failed.Load(), Publish: time.Since(start)}
	stop()

	// The hub has consumed the run once its count has grown by what was
	// stored; it is read every 500 ms, which costs it little. A publish
	// that failed here (a timeout) may have been stored all the same, so
	// with any failed the count must also have stopped moving: a restart
	// run that read the old hub's history at the acked count compared a
	// minute one sample short of what the new hub replayed.
	deadline := time.Now().Add(drainWait)
	last := int64(-1)
	for {
		n, d, err := hubSamples(ctx, cfg.Config)
		if err != nil {
			return r, err
		}
		r.Consumed, r.Dropped, r.Drained = n-consumed0, d-dropped0, time.Since(start)
		if done := r.Consumed + r.Dropped; done >= r.Stored && (r.Errors == 0 || done >= r.Stored+r.Errors || done == last) {
			r.Complete = true
			break
		}
		last = r.Consumed + r.Dropped
		if time.Now().After(deadline) || ctx.Err() != nil {
			log.Warn("hub did not consume every stored sample in time", "stored", r.Stored, "consumed", r.Consumed)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.HubCPU, r.ToolCPU = procCPU(cfg.HubPID)-cpu0, procCPU(os.Getpid())-tool0
	return r, nil
}

// flood publishes host n's samples asynchronously, at most the window
// awaiting their acks, until ctx ends or PerHost are sent; it returns once
// every publish has its ack or error.
func flood(ctx context.Context, js jetstream.JetStream, cfg IngestConfig, n int, stored, failed *atomic.Int64) {
	name := HostName(n)
	boot := strconv.FormatInt(time.Now().UnixNano(), 36)
	rng := rand.New(rand.NewPCG(uint64(n), 11))
	// Each host's run has its own id key, as an agent's does.
	key := strconv.FormatUint(rng.Uint64(), 16)
	futures := make(chan jetstream.PubAckFuture, cfg.Window)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range futures {
			select {
			case <-f.Ok():
				stored.Add(1)
			case <-f.Err():
				failed.Add(1)
			}
		}
	}()
	for seq := uint64(0); ctx.Err() == nil && (cfg.PerHost <= 0 || seq < uint64(cfg.PerHost)); seq++ {
		ts := time.Now()
		if cfg.Stamp != nil {
			ts = cfg.Stamp(n, seq)
		}
		s := Sample(name, boot, seq, ts, cfg.Config, rng)
		b, err := metrics.Encode(s)
		if err != nil {
			failed.Add(1)
			break
		}
		msg := &nats.Msg{Subject: metrics.SampleSubject(name), Data: b, Header: nats.Header{}}
		if !cfg.NoMsgID {
			msg.Header.Set(jetstream.MsgIDHeader, metrics.MsgID(s, key))
		}
		// A full window blocks here until an ack frees a place.
		f, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			failed.Add(1)
			continue
		}
		futures <- f
	}
	close(futures)
	<-done
}

// hubSamples reads the hub's counts of accepted and dropped samples from
// its /metrics.
func hubSamples(ctx context.Context, cfg Config) (accepted, dropped int64, err error) {
	found := false
	err = hubMetrics(ctx, cfg, func(name string, v float64) {
		switch {
		case name == "sysperf_ingest_samples_total":
			accepted, found = int64(v), true
		case strings.HasPrefix(name, "sysperf_ingest_dropped_samples_total{"):
			dropped += int64(v)
		}
	})
	if err == nil && !found {
		err = errors.New("loadtest: hub /metrics has no sysperf_ingest_samples_total")
	}
	return accepted, dropped, err
}

// hubMetrics hands each sample of the hub's /metrics, its name with its
// labels, to each.
func hubMetrics(ctx context.Context, cfg Config, each func(name string, v float64)) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.HubURL, "/")+"/metrics", nil)
	if err != nil {
		return fmt.Errorf("loadtest: hub url: %w", err)
	}
	req.Header = cfg.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("loadtest: hub /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadtest: hub /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			each(name, f)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("loadtest: hub /metrics: %w", err)
	}
	return nil
}

// HubMemory is where the hub's memory goes, from the Go runtime's figures
// on its /metrics: what its resident set is made of.
type HubMemory struct {
	HeapAlloc  float64 // bytes of live and not yet collected objects
	HeapInuse  float64 // bytes of the heap's spans in use
	StackInuse float64 // bytes of goroutine stacks
	Sys        float64 // bytes the runtime obtained from the OS
	NextGC     float64 // the heap size the next collection starts at
	Limit      float64 // the soft memory limit; 0: not reported
	Goroutines float64
}

// hubMemory reads HubMemory; ok false when the hub's /metrics has no
// go_memstats.
func hubMemory(ctx context.Context, cfg Config) (m HubMemory, ok bool) {
	err := hubMetrics(ctx, cfg, func(name string, v float64) {
		switch name {
		case "go_memstats_heap_alloc_bytes":
			m.HeapAlloc, ok = v, true
		case "go_memstats_heap_inuse_bytes":
			m.HeapInuse = v
		case "go_memstats_stack_inuse_bytes":
			m.StackInuse = v
		case "go_memstats_sys_bytes":
			m.Sys = v
		case "go_memstats_next_gc_bytes":
			m.NextGC = v
		case "go_gc_gomemlimit_bytes":
			m.Limit = v
		case "go_goroutines":
			m.Goroutines = v
		}
	})
	return m, err == nil && ok
}

// Report writes the ingest figures.
func (r IngestResult) Report(w io.Writer, cfg IngestConfig) {
	fmt.Fprintf(w, "ingest: %d hosts × %d GPUs publishing as fast as JetStream acks (window %d per host) for %s\n",
		cfg.Hosts, cfg.GPUs, cfg.Window, r.Publish.Round(time.Millisecond))
	fmt.Fprintf(w, "stored              %d samples (%.0f/s), errors %d\n", r.Stored, float64(r.Stored)/r.Publish.Seconds(), r.Errors)
	state := "all consumed"
	if !r.Complete {
		state = "NOT all consumed"
	}
	fmt.Fprintf(w, "hub consumed        %d samples (%d dropped) in %s from the start (%.0f/s), %s\n",
		r.Consumed, r.Dropped, r.Drained.Round(time.Millisecond), float64(r.Consumed)/r.Drained.Seconds(), state)
	if cfg.HubPID > 0 && r.Consumed > 0 {
		fmt.Fprintf(w, "hub CPU             %s per sample, %.0f samples/s per core, %.0f %% of a core on average\n",
			(r.HubCPU / time.Duration(r.Consumed)).Round(100*time.Nanosecond), float64(r.Consumed)/r.HubCPU.Seconds(), 100*r.HubCPU.Seconds()/r.Drained.Seconds())
	}
	if r.Stored > 0 {
		fmt.Fprintf(w, "tool CPU            %s per sample (it shares the machine)\n", (r.ToolCPU / time.Duration(r.Stored)).Round(100*time.Nanosecond))
	}
}
