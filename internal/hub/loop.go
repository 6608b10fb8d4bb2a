package hub

import (
	"context"
	"fmt"
	"log/slog"
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
