package hub

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/internal/sources"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// pgSource reports a fixed connection count, like a direct source.
func pgSource(active int) SourceSpec {
	return SourceSpec{Name: metrics.SectionPostgreSQL, Poll: func(context.Context) Reading {
		return Reading{Via: "postgres", Up: true, Fill: func(u *metrics.Update) map[string]bool {
			n := active
			u.Databases.PostgreSQL = metrics.PostgreSQL{Status: metrics.StatusHealthy, ConnectionsActive: &n}
			return nil
		}}
	}}
}

// promSource fills only what is still empty, as Prometheus does.
func promSource() SourceSpec {
	return SourceSpec{Name: "prometheus", Fallback: true, Poll: func(context.Context) Reading {
		return Reading{Up: true, Fill: func(u *metrics.Update) map[string]bool {
			filled := map[string]bool{}
			if u.Databases.PostgreSQL.ConnectionsActive == nil {
				n := -1
				u.Databases.PostgreSQL.ConnectionsActive = &n
			}
			if u.Databases.Redis.ConnectedClients == nil {
				n := int64(8)
				u.Databases.Redis.ConnectedClients = &n
				filled[metrics.SectionRedis] = true
			}
			return filled
		}}
	}}
}

func panicSource() SourceSpec {
	return SourceSpec{Name: metrics.SectionContainers, Poll: func(context.Context) Reading {
		return Reading{Fill: func(*metrics.Update) map[string]bool { panic("boom") }}
	}}
}

// blockSource ignores its deadline, as a buggy source might.
func blockSource(release chan struct{}) SourceSpec {
	return SourceSpec{Name: metrics.SectionRedis, Poll: func(context.Context) Reading {
		<-release
		return Reading{}
	}}
}

func polled(t *testing.T, src SourceSpec, at time.Time) *runner {
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
		if u.Databases.PostgreSQL.Status != metrics.StatusUnconfigured || u.Databases.Redis.Status != metrics.StatusUnconfigured ||
			u.Sources[metrics.SectionPostgreSQL] != SourceNone || u.Errors[metrics.SectionContainers] != "not configured" || u.Containers == nil {
			t.Fatalf("defaults: %+v sources %v errors %v", u.Databases, u.Sources, u.Errors)
		}
	})

	t.Run("direct first, fallback fills the rest, panics contained", func(t *testing.T) {
		runners := []*runner{
			polled(t, promSource(), now), // listed first, applied last
			polled(t, pgSource(5), now),
			polled(t, panicSource(), now),
		}
		if !runners[0].src.Fallback || runners[1].src.Fallback {
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

	t.Run("a dead Prometheus says why in errors and blanks nothing", func(t *testing.T) {
		closed := "http://" + sourcestest.FreeAddr(t)
		prom, err := sources.NewPrometheus(closed, sources.PrometheusOptions{})
		if err != nil {
			t.Fatal(err)
		}
		runners := []*runner{polled(t, SourceSpec{Name: prom.Name(), Fallback: true, Poll: prom.Poll}, now), polled(t, pgSource(5), now)}
		u := merge(now, nil, interval)
		applySources(&u, runners, now, interval, log)
		if why := u.Errors["prometheus"]; !strings.Contains(why, closed) || !strings.Contains(why, "connection refused") {
			t.Fatalf("errors[prometheus] = %q, want the refused %s", why, closed)
		}
		if _, ok := u.Errors[metrics.SectionPostgreSQL]; ok || *u.Databases.PostgreSQL.ConnectionsActive != 5 || u.Sources[metrics.SectionPostgreSQL] != "postgres" {
			t.Fatalf("postgres blanked: %+v errors %v", u.Databases.PostgreSQL, u.Errors)
		}
	})

	t.Run("a source whose answer is old is stale", func(t *testing.T) {
		r := polled(t, pgSource(5), now.Add(-time.Minute))
		u := merge(now, nil, interval)
		applySources(&u, []*runner{r}, now, interval, log)
		if !u.Stale[metrics.SectionPostgreSQL] || u.Errors[metrics.SectionPostgreSQL] != "last answer 1m0s ago" {
			t.Fatalf("stale %v errors %v", u.Stale, u.Errors)
		}
	})

	t.Run("a source not polled yet is waited for, not reported silent", func(t *testing.T) {
		// As in the hub's first update, built before the pollers ran.
		r := newRunner(pgSource(5), time.Second, log)
		u := merge(now, nil, interval)
		applySources(&u, []*runner{r}, time.Now(), interval, log)
		if u.Databases.PostgreSQL.Status != metrics.StatusUnknown || u.Errors[metrics.SectionPostgreSQL] != "waiting for the first poll" {
			t.Fatalf("postgresql %+v errors %v", u.Databases.PostgreSQL, u.Errors)
		}
	})

	t.Run("a hung source does not block and is reported", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		r := newRunner(blockSource(release), 10*time.Millisecond, log)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.run(ctx, interval)
		_, _, started := r.state()
		u := merge(now, nil, interval)
		applySources(&u, []*runner{r}, started.Add(time.Minute), interval, log)
		if u.Databases.Redis.Status != metrics.StatusUnknown || u.Errors[metrics.SectionRedis] != "no answer from the source in 1m0s" {
			t.Fatalf("redis %+v errors %v", u.Databases.Redis, u.Errors)
		}
	})
}

// The update carries the inference figures over each chart range, not
// only over the latency window: the real tracker is fed an RT-DETRv2
// histogram (buckets up to 500 ms, every request inside them; +Inf
// travels as Count) and an image counter at known times, so each range
// sees a different slice of the requests.
func TestApplyLatencyPerRange(t *testing.T) {
	t.Parallel()
	tr := latency.New(latency.Config{Retain: 65 * time.Minute})
	feed := func(age time.Duration, le05, le1, le5, sum, images float64) {
		s := sample("gpu-box", age)
		s.Inference = &metrics.Inference{
			Histograms: map[string]metrics.Histogram{metrics.RoleRTDETR: {
				Count: le5, Sum: sum,
				Buckets: []metrics.Bucket{{UpperBound: 0.05, Count: le05}, {UpperBound: 0.1, Count: le1}, {UpperBound: 0.5, Count: le5}},
			}},
			Counters: map[string]float64{metrics.RoleImages: images},
		}
		tr.AddSample(s)
	}
	feed(59*time.Minute, 0, 0, 0, 0, 0)
	feed(20*time.Minute, 0, 100, 100, 8, 0)   // 100 requests of 80 ms
	feed(6*time.Minute, 0, 100, 200, 38, 100) // 100 of 300 ms
	feed(0, 100, 200, 300, 40, 150)           // 100 of 20 ms

	// Expected figures: histogram_quantile over each range's bucket deltas.
	want := map[string]struct{ avg, p95, p99, images float64 }{
		// Only the newest 100 (all <= 50 ms); the 6m-old snapshot bounds it.
		"5m": {avg: 20, p95: 47.5, p99: 49.5, images: 50.0 / 6},
		// Back to the 20m-old snapshot: 100 fast and 100 slow requests.
		"15m": {avg: 160, p95: 460, p99: 492, images: 150.0 / 20},
		// Everything since the first snapshot, 59 minutes ago.
		"60m": {avg: 40.0 / 300 * 1000, p95: 440, p99: 488, images: 150.0 / 59},
	}
	check := func(t *testing.T, key string, l metrics.Latencies) {
		t.Helper()
		w := want[key]
		if l.Window != key {
			t.Errorf("%s: window %q", key, l.Window)
		}
		eq(t, key+" rtdetr avg", l.RTDETR.Avg, w.avg)
		eq(t, key+" rtdetr p95", l.RTDETR.P95, w.p95)
		eq(t, key+" rtdetr p99", l.RTDETR.P99, w.p99)
		eq(t, key+" images/min", l.Throughput.ImagesPerMin, w.images)
		if l.Nemotron.Avg != nil || l.Throughput.EventsPerMin != nil {
			t.Errorf("%s: figures without data: %+v", key, l)
		}
	}

	for _, window := range []time.Duration{5 * time.Minute, 2 * time.Minute} {
		t.Run("latency window "+window.String(), func(t *testing.T) {
			u := merge(now, nil, 5*time.Second)
			applyLatency(&u, tr, now, window)
			if len(u.InferenceWindows) != 3 {
				t.Fatalf("inference_windows: %v", u.InferenceWindows)
			}
			for key, l := range u.InferenceWindows {
				check(t, key, l)
			}
			if u.Sources[metrics.SectionInference] != "agents" {
				t.Errorf("source %q", u.Sources[metrics.SectionInference])
			}
			// The seed's field keeps the configured window.
			if window == 5*time.Minute {
				check(t, "5m", u.Inference)
			} else if u.Inference.Window != "2m" || u.Inference.RTDETR.Avg == nil || *u.Inference.RTDETR.Avg != 20 {
				t.Errorf("inference over 2m: %+v", u.Inference)
			}
		})
	}

	t.Run("no latency plug", func(t *testing.T) {
		u := merge(now, nil, 5*time.Second)
		applyLatency(&u, nil, now, 5*time.Minute)
		if u.InferenceWindows != nil || u.Sources[metrics.SectionInference] != SourceNone || u.Errors[metrics.SectionInference] == "" {
			t.Fatalf("windows %v source %q error %q", u.InferenceWindows, u.Sources[metrics.SectionInference], u.Errors[metrics.SectionInference])
		}
	})
}
