package hub

import (
	"context"
	"time"

	"github.com/sysperf/sysperf/internal/hub/source"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// SourceSpec registers something the hub reads itself every interval:
// PostgreSQL, Redis, containers, Prometheus, or a plug of a test. What a
// source can do is declared here, not found out by type assertions. The
// hub polls each source in its own goroutine with a timeout, so a slow one
// never delays the update; the newest reading is applied to every update
// until the next poll returns.
type SourceSpec struct {
	// Name is the source's name in logs and /metrics; by convention the
	// section it fills, e.g. metrics.SectionPostgreSQL.
	Name string
	// Fallback sources fill only what direct sources left empty; their
	// readings are applied last (Prometheus).
	Fallback bool
	// Poll reads the source once within ctx's deadline. A dead source
	// returns a reading that marks its section unreachable with the
	// reason.
	Poll func(ctx context.Context) Reading
	// Close, when set, is called once by the hub's Close, after the last
	// poll returned.
	Close func() error
}

// Reading is one poll's answer; the hub writes its entries in the
// update's sources, errors and stale (internal/hub/source, a leaf package
// so that internal/sources need not import the hub).
type Reading = source.Reading

// Latency turns scraped histograms and pushed observations into windowed
// averages and percentiles.
type Latency interface {
	AddSample(s *metrics.Sample)
	AddObservations(host, stage string, obs []metrics.Observation)
	Latencies(now time.Time, window time.Duration) metrics.Latencies
}

// History keeps the windows the charts read.
type History interface {
	// Add places a sample, converted once to the dashboard's units
	// (view.Of), in its slots by its own timestamp, so a late sample from
	// an agent's backlog lands where it belongs. f is the hub's, and its
	// GPU list's memory is reused once a newer sample of the host has
	// replaced it (spares.go): Add must copy what it keeps of it.
	Add(f *view.Figures)
	// Record places the hub's own readings (databases, containers) of the
	// update built at u.Timestamp.
	Record(u *metrics.Update)
	// Window returns the points of a range ("5m", "15m", "60m", ...).
	Window(now time.Time, rng, host string) (metrics.History, error)
	// FleetWindow returns the fleet view's points of a range: the site's
	// totals of each update Record placed.
	FleetWindow(now time.Time, rng string) (metrics.History, error)
}

// Evaluator applies the alert rules to each update and returns the alerts
// now pending or firing.
type Evaluator interface {
	Evaluate(now time.Time, u *metrics.Update) []metrics.Alert
}
