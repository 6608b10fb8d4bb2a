package hub

import (
	"context"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Source is something the hub reads itself every interval: PostgreSQL,
// Redis, containers, Prometheus. The hub polls each source in its own
// goroutine with a timeout, so a slow one never delays the update; the
// newest Patch is applied to every update until the next poll returns.
type Source interface {
	// Name is the section the source fills, e.g. metrics.SectionPostgreSQL.
	Name() string
	// Poll reads the source once within ctx's deadline. A dead source
	// returns a Patch that marks its section unreachable with the reason.
	Poll(ctx context.Context) Patch
}

// Patch writes one source's reading into an update being built. Patches
// of direct sources run first; a fallback source (Prometheus) runs last and
// fills only what is still empty. It is an alias so that internal/sources
// can implement Source without importing this package, which constructs
// them (hub -> sources, never sources -> hub).
type Patch = func(u *metrics.Update)

// Latency turns scraped histograms and pushed observations into windowed
// averages and percentiles.
type Latency interface {
	AddSample(s *metrics.Sample)
	AddObservations(host, stage string, obs []metrics.Observation)
	Latencies(now time.Time, window time.Duration) metrics.Latencies
}

// History keeps the windows the charts read.
type History interface {
	// Add places a sample in its slots by its own timestamp, so a late
	// sample from an agent's backlog lands where it belongs.
	Add(s *metrics.Sample)
	// Record places the hub's own readings (databases, containers) of the
	// update built at u.Timestamp.
	Record(u *metrics.Update)
	// Window returns the points of a range ("5m", "15m", "60m", ...).
	Window(now time.Time, rng, host string) (metrics.History, error)
}

// Evaluator applies the alert rules to each update and returns the alerts
// now pending or firing.
type Evaluator interface {
	Evaluate(now time.Time, u *metrics.Update) []metrics.Alert
}
