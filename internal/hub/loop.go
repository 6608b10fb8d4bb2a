package hub

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	rmetrics "runtime/metrics"
	"sync"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// runner polls one source on its own schedule and keeps its newest
// reading.
type runner struct {
	src     SourceSpec
	timeout time.Duration
	log     *slog.Logger
	// observe, when set, is told each poll's duration and whether it
	// reached what the source watches (/metrics).
	observe func(source string, took time.Duration, up bool)

	mu      sync.Mutex
	reading *Reading
	lastOK  time.Time // when the newest poll returned
	started time.Time // when the runner was made, just before its first poll
}

func newRunner(src SourceSpec, timeout time.Duration, log *slog.Logger) *runner {
	return &runner{
		src:     src,
		timeout: timeout,
		log:     log.With("source", src.Name),
		// Set here, not in run: the hub's first update is built while the
		// runners' goroutines may not have started yet.
		started: time.Now(),
	}
}

// run polls until ctx ends. A poll that overruns the interval delays only
// this source: the next poll starts when it returns.
func (r *runner) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *runner) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	start := time.Now()
	rd, ok := func() (rd Reading, ok bool) {
		defer func() {
			if v := recover(); v != nil {
				r.log.Error("source poll panicked", "panic", v)
				ok = false
			}
		}()
		return r.src.Poll(ctx), true
	}()
	if r.observe != nil {
		r.observe(r.src.Name, time.Since(start), ok && rd.Up)
	}
	if !ok {
		// Nothing to apply: keep the previous answer, which ages into stale.
		return
	}
	// The hub's bookkeeping is keyed by the registered name, whatever
	// the reading says.
	rd.Section = r.src.Name
	r.mu.Lock()
	r.reading, r.lastOK = &rd, time.Now()
	r.mu.Unlock()
}

func (r *runner) state() (*Reading, time.Time, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reading, r.lastOK, r.started
}

// applySources writes each source's newest reading into u: the hub's
// defaults for sections nobody fills, then direct sources, then fallbacks.
// A source whose newest answer is older than three intervals is marked
// stale, and one that has not answered yet says so.
func applySources(u *metrics.Update, runners []*runner, now time.Time, interval time.Duration, log *slog.Logger) {
	configured := map[string]bool{}
	for _, r := range runners {
		configured[r.src.Name] = true
	}
	defaults := []struct {
		section string
		set     func(status metrics.Status, reason string)
	}{
		{metrics.SectionPostgreSQL, func(st metrics.Status, why string) {
			u.Databases.PostgreSQL = metrics.PostgreSQL{Status: st, Reason: why}
		}},
		{metrics.SectionRedis, func(st metrics.Status, why string) { u.Databases.Redis = metrics.Redis{Status: st, Reason: why} }},
		{metrics.SectionContainers, func(metrics.Status, string) {}},
	}
	for _, d := range defaults {
		status, reason := metrics.StatusUnconfigured, "not configured"
		if configured[d.section] {
			status, reason = metrics.StatusUnknown, "waiting for the first poll"
		}
		d.set(status, reason)
		u.Sources[d.section] = SourceNone
		u.Errors[d.section] = reason
	}

	for _, pass := range []bool{false, true} {
		for _, r := range runners {
			if r.src.Fallback != pass {
				continue
			}
			name := r.src.Name
			rd, lastOK, started := r.state()
			if rd == nil {
				if now.Sub(started) > staleAfter*interval {
					u.Errors[name] = fmt.Sprintf("no answer from the source in %s", now.Sub(started).Round(time.Second))
				}
				continue
			}
			applyReading(u, *rd, log)
			if age := now.Sub(lastOK); age > staleAfter*interval {
				u.Stale[name] = true
				u.Errors[name] = fmt.Sprintf("last answer %s ago", age.Round(time.Second))
			} else if _, ok := u.Stale[name]; !ok {
				u.Stale[name] = false
			}
		}
	}
	if u.Containers == nil {
		u.Containers = []metrics.Container{}
	}
}

// applyReading keeps one faulty reading from taking the update down with
// it.
func applyReading(u *metrics.Update, rd Reading, log *slog.Logger) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("source reading panicked", "source", rd.Section, "panic", v)
		}
	}()
	rd.Apply(u)
}

// tickPhases times one tick's steps for the debug log, so an operator can
// see which step held a late update back. With debug off it costs one
// Enabled check per tick and records nothing.
type tickPhases struct {
	log    *slog.Logger
	at     time.Time // the tick's time, the update's timestamp
	last   time.Time
	gcFrom uint64
	attrs  []any
}

// gcCycles reads the collector's completed cycles without stopping the
// world (runtime.ReadMemStats would).
func gcCycles() uint64 {
	s := []rmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	rmetrics.Read(s)
	if s[0].Value.Kind() != rmetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func (h *Hub) phases(at time.Time) *tickPhases {
	if !h.log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	now := time.Now()
	// started: how long after its time the loop took the tick up (a late
	// ticker, or the loop still busy with the previous tick).
	return &tickPhases{log: h.log, at: at, last: now, gcFrom: gcCycles(), attrs: []any{"started", now.Sub(at)}}
}

func (p *tickPhases) mark(phase string) {
	if p == nil {
		return
	}
	now := time.Now()
	p.attrs = append(p.attrs, phase, now.Sub(p.last))
	p.last = now
}

func (p *tickPhases) done() {
	if p == nil {
		return
	}
	p.attrs = append(p.attrs, "total", p.last.Sub(p.at), "gc_cycles", gcCycles()-p.gcFrom)
	p.log.Debug("tick phases", p.attrs...)
}

// gcPacer moves the collector's cycles between ticks. The Go collector
// starts a cycle when the heap reaches a trigger, and the heap reaches it
// most often during a tick, the process's burst of allocation (the merge,
// then a view per host and a message per browser): a tick caught by a
// cycle ran its merge and alerts several times slower (mark assists, a
// core's quarter taken by the mark workers) and published late, and its
// browsers' writes stretched past the 50 ms the fleet's updates are
// meant to arrive in (README, "A fleet's tick"). So when the next
// interval's allocation could reach the trigger, the loop collects half an
// interval after the tick, when nothing waits on it. The collector then
// runs a little more often (gcDue), and the soft memory limit (internal/memlimit) still sets
// the goal it paces against.
//
// The loop alone uses it.
type gcPacer struct {
	samples []rmetrics.Sample
	// heap and cycles after the previous tick.
	heap, cycles uint64
	// dueAt is the cycle count when a collection was found due, so one
	// the runtime started meanwhile is not followed by another.
	dueAt uint64
	// forced counts the collections it started (tests).
	forced uint64
}

func newGCPacer() *gcPacer {
	return &gcPacer{samples: []rmetrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}}
}

// afterTick reads the heap once a tick is done and reports whether a
// collection is due before the next.
func (p *gcPacer) afterTick() bool {
	rmetrics.Read(p.samples)
	var v [4]uint64
	for i, s := range p.samples {
		if s.Value.Kind() != rmetrics.KindUint64 {
			return false // a runtime that does not say: leave it alone
		}
		v[i] = s.Value.Uint64()
	}
	heap, live, goal, cycles := v[0], v[1], v[2], v[3]
	var grew uint64
	if cycles == p.cycles && heap > p.heap {
		grew = heap - p.heap
	}
	p.heap, p.cycles = heap, cycles
	if !gcDue(heap, grew, live, goal) {
		return false
	}
	p.dueAt = cycles
	return true
}

// gcDue says whether the heap, grown by grew over the last interval,
// could reach the collector's trigger by the end of the next tick. The
// runtime's trigger lies about 70% of the way from the live heap to the
// goal or past it, but it counts the heap in whole spans, a little more
// than the objects read here, and a tick's burst varies: so the margin is
// 60% of the way and half again the last interval's growth (a trigger
// found at 68% under the load tool). A heap less than a third of the way
// is never collected early, so the cycles are at most three times as
// frequent (in steady state they come about an interval early). grew 0 is
// unknown (a cycle ran meanwhile).
func gcDue(heap, grew, live, goal uint64) bool {
	if grew == 0 || goal <= live || heap <= live {
		return false
	}
	runway := goal - live
	return heap-live >= runway/3 && heap+grew+grew/2 >= live+runway/10*6
}

// collect runs the cycle found due, unless the runtime ran one since.
func (p *gcPacer) collect() {
	rmetrics.Read(p.samples[3:])
	if p.samples[3].Value.Kind() != rmetrics.KindUint64 || p.samples[3].Value.Uint64() != p.dueAt {
		return
	}
	runtime.GC()
	p.forced++
}
