package hub

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/history"
	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/poll"
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

// stuckHistory is a history whose Record, from its second call on, waits
// for release, as one stuck on its store's lock would: it tells the test
// which update it holds.
type stuckHistory struct {
	*history.Store
	calls   atomic.Int32
	held    chan time.Time
	release chan struct{}
}

func (s *stuckHistory) Record(u *metrics.Update) {
	if s.calls.Add(1) == 1 {
		return // Start's first tick
	}
	select {
	case s.held <- u.Timestamp:
	default:
	}
	<-s.release
}

// The history records an update after it is published: a history that
// takes its time holds no browser's update back.
func TestTickPublishesBeforeTheHistoryRecords(t *testing.T) {
	t.Parallel()
	hist := &stuckHistory{Store: history.New(), held: make(chan time.Time, 1), release: make(chan struct{})}
	h := startHub(t, testConfig(t), Plugs{History: hist})
	// Before the hub closes (cleanups run last first).
	t.Cleanup(func() { close(hist.release) })
	var at time.Time
	select {
	case at = <-hist.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the history was never asked to record a second update")
	}
	u := performance(t, h, func(u metrics.Update) bool { return !u.Timestamp.Before(at) })
	if !u.Timestamp.Equal(at) {
		t.Fatalf("served update of %s, want the one the history holds, of %s", u.Timestamp, at)
	}
}

// At debug level each tick logs its steps in their order, each with its
// duration, for an operator looking for what held an update back.
func TestTickLogsItsPhasesAtDebug(t *testing.T) {
	t.Parallel()
	log, out := logtest.New(slog.LevelDebug)
	h, err := Start(context.Background(), testConfig(t), Plugs{}, log)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	want := []string{"started=", "merge=", "latency=", "sources=", "scrub=", "alerts=", "publish=", "history=", "total=", "gc_cycles="}
	var line string
	poll.Until(t, "a tick phases line", func() bool {
		for l := range strings.Lines(out.String()) {
			if strings.Contains(l, `msg="tick phases"`) {
				line = l
				return true
			}
		}
		return false
	})
	at := 0
	for _, w := range want {
		i := strings.Index(line[at:], w)
		if i < 0 {
			t.Fatalf("no %s after byte %d in %q", w, at, line)
		}
		at += i + len(w)
		if _, err := time.ParseDuration(strings.Fields(line[at:])[0]); err != nil && w != "gc_cycles=" {
			t.Fatalf("%s: %v in %q", w, err, line)
		}
	}
}

// At info level the tick does not time its steps.
func TestTickPhasesOffBelowDebug(t *testing.T) {
	log, _ := logtest.New(slog.LevelInfo)
	h := &Hub{log: log}
	if p := h.phases(time.Now()); p != nil {
		t.Fatalf("phases timed at info: %+v", p)
	}
}

func TestGCDue(t *testing.T) {
	const mb = 1 << 20
	// live 60 MB, goal 120 MB: the margin is 96 MB, a third of the way 80 MB.
	for _, c := range []struct {
		name       string
		heap, grew uint64
		live, goal uint64
		want       bool
	}{
		{"next tick may reach the trigger", 90 * mb, 6 * mb, 60 * mb, 120 * mb, true},
		{"next tick stays below the margin", 82 * mb, 8 * mb, 60 * mb, 120 * mb, false},
		{"not a third of the way: a big interval collects at most three times as often", 75 * mb, 40 * mb, 60 * mb, 120 * mb, false},
		{"a third of the way with a big interval", 81 * mb, 40 * mb, 60 * mb, 120 * mb, true},
		{"growth unknown: a cycle ran since the last tick", 110 * mb, 0, 60 * mb, 120 * mb, false},
		{"goal at the live heap (at the memory limit): the runtime's to handle", 110 * mb, 12 * mb, 120 * mb, 120 * mb, false},
		{"heap below live", 50 * mb, 12 * mb, 60 * mb, 120 * mb, false},
	} {
		if got := gcDue(c.heap, c.grew, c.live, c.goal); got != c.want {
			t.Errorf("%s: gcDue(heap %d, grew %d, live %d, goal %d) = %v, want %v", c.name, c.heap/mb, c.grew/mb, c.live/mb, c.goal/mb, got, c.want)
		}
	}
}

// The pacer reads the runtime's own figures: a heap that grows towards
// its goal between ticks gets a collection, and one the runtime ran on its
// own since is not followed by another.
func TestGCPacerCollectsBeforeTheTrigger(t *testing.T) {
	p := newGCPacer()
	var keep [][]byte
	poll.Until(t, "a collection found due while the heap grows", func() bool {
		// An interval's allocation, kept live until the collection.
		for range 4 {
			keep = append(keep, make([]byte, 64<<10))
		}
		return p.afterTick()
	})
	runtime.GC() // the runtime's own, after the pacer's decision
	p.collect()
	if p.forced != 0 {
		t.Fatalf("collected again after the runtime's own cycle")
	}
	poll.Until(t, "a collection found due again", func() bool {
		for range 4 {
			keep = append(keep, make([]byte, 64<<10))
		}
		return p.afterTick()
	})
	before := gcCycles()
	p.collect()
	if p.forced != 1 || gcCycles() == before {
		t.Fatalf("forced %d, cycles %d then %d: no collection", p.forced, before, gcCycles())
	}
	runtime.KeepAlive(keep)
}
