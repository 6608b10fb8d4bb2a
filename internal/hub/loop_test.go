package hub

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// pgSource reports a fixed connection count, like a direct source.
type pgSource struct{ active int }

func (p pgSource) Name() string { return metrics.SectionPostgreSQL }
func (p pgSource) Poll(context.Context) Patch {
	return func(u *metrics.Update) {
		n := p.active
		u.Databases.PostgreSQL = metrics.PostgreSQL{Status: metrics.StatusHealthy, ConnectionsActive: &n}
		u.Sources[metrics.SectionPostgreSQL] = "postgres"
	}
}

// promSource fills only what is still empty, as Prometheus does.
type promSource struct{}

func (promSource) Name() string   { return "prometheus" }
func (promSource) Fallback() bool { return true }
func (promSource) Poll(context.Context) Patch {
	return func(u *metrics.Update) {
		if u.Databases.PostgreSQL.ConnectionsActive == nil {
			n := -1
			u.Databases.PostgreSQL.ConnectionsActive = &n
		}
		if u.Databases.Redis.ConnectedClients == nil {
			n := int64(8)
			u.Databases.Redis.ConnectedClients = &n
			u.Sources[metrics.SectionRedis] = "prometheus"
		}
	}
}

type panicSource struct{}

func (panicSource) Name() string { return metrics.SectionContainers }
func (panicSource) Poll(context.Context) Patch {
	return func(*metrics.Update) { panic("boom") }
}

// blockSource ignores its deadline, as a buggy source might.
type blockSource struct{ release chan struct{} }

func (blockSource) Name() string { return metrics.SectionRedis }
func (b blockSource) Poll(context.Context) Patch {
	<-b.release
	return nil
}

func polled(t *testing.T, src Source, at time.Time) *runner {
	t.Helper()
	r := newRunner(src, time.Second, slog.New(slog.DiscardHandler))
	r.poll(context.Background())
	r.started, r.lastOK = at, at
	return r
}

func TestApplySources(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	const interval = 5 * time.Second

	t.Run("nothing configured", func(t *testing.T) {
		u := merge(now, nil, interval)
		applySources(&u, nil, now, interval, log)
		if u.Databases.PostgreSQL.Status != StatusUnconfigured || u.Databases.Redis.Status != StatusUnconfigured ||
			u.Sources[metrics.SectionPostgreSQL] != SourceNone || u.Errors[metrics.SectionContainers] != "not configured" || u.Containers == nil {
			t.Fatalf("defaults: %+v sources %v errors %v", u.Databases, u.Sources, u.Errors)
		}
	})

	t.Run("direct first, fallback fills the rest, panics contained", func(t *testing.T) {
		runners := []*runner{
			polled(t, promSource{}, now), // listed first, applied last
			polled(t, pgSource{active: 5}, now),
			polled(t, panicSource{}, now),
		}
		if !runners[0].fallback || runners[1].fallback {
			t.Fatal("fallback not detected")
		}
		u := merge(now, nil, interval)
		applySources(&u, runners, now, interval, log)
		if got := *u.Databases.PostgreSQL.ConnectionsActive; got != 5 {
			t.Fatalf("connections_active %d: the fallback overwrote the direct source", got)
		}
		if _, ok := u.Errors[metrics.SectionPostgreSQL]; ok || u.Sources[metrics.SectionPostgreSQL] != "postgres" {
			t.Fatalf("errors %v sources %v", u.Errors, u.Sources)
		}
		if *u.Databases.Redis.ConnectedClients != 8 || u.Sources[metrics.SectionRedis] != "prometheus" {
			t.Fatalf("fallback did not fill redis: %+v", u.Databases.Redis)
		}
		if u.Stale[metrics.SectionPostgreSQL] {
			t.Fatal("fresh source marked stale")
		}
	})

	t.Run("a source whose answer is old is stale", func(t *testing.T) {
		r := polled(t, pgSource{active: 5}, now.Add(-time.Minute))
		u := merge(now, nil, interval)
		applySources(&u, []*runner{r}, now, interval, log)
		if !u.Stale[metrics.SectionPostgreSQL] || u.Errors[metrics.SectionPostgreSQL] != "last answer 1m0s ago" {
			t.Fatalf("stale %v errors %v", u.Stale, u.Errors)
		}
	})

	t.Run("a hung source does not block and is reported", func(t *testing.T) {
		b := blockSource{release: make(chan struct{})}
		defer close(b.release)
		r := newRunner(b, 10*time.Millisecond, log)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.run(ctx, interval)
		for {
			if _, _, started := r.state(); !started.IsZero() {
				break
			}
			time.Sleep(time.Millisecond)
		}
		_, _, started := r.state()
		u := merge(now, nil, interval)
		applySources(&u, []*runner{r}, started.Add(time.Minute), interval, log)
		if u.Databases.Redis.Status != StatusUnknown || u.Errors[metrics.SectionRedis] != "no answer from the source in 1m0s" {
			t.Fatalf("redis %+v errors %v", u.Databases.Redis, u.Errors)
		}
	})
}
