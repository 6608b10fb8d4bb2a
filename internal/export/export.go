// Package export serves the hub's own /metrics: its ingest counters, its
// WebSocket clients, the health and poll latency of its sources, and the
// merged gauges of the latest performance update, so that an existing
// Prometheus and Grafana can use sysperf as their exporter.
//
// Everything lives on a private registry owned by the Exporter; nothing is
// registered with client_golang's global default registry.
package export

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Ingest is the hub's ingest counters as the exporter needs them.
type Ingest struct {
	Samples, Late, Observations uint64
	// Dropped samples and observations by cause.
	Dropped, ObservationsDropped map[string]uint64
	Hosts                        int
}

// Hub is what the exporter reads of the hub at scrape time.
type Hub interface {
	Ingest() Ingest
	// Clients is the number of connected WebSocket clients.
	Clients() int
	// Latest is the newest performance update, nil before the first.
	Latest() *metrics.Update
}

// Source is the hub's polled source (hub.Source, restated here so this
// package does not import the hub that wires it).
type Source interface {
	Name() string
	Poll(ctx context.Context) func(*metrics.Update)
}

// upReporter is implemented by sources that know whether their last poll
// reached what they watch.
type upReporter interface {
	Up() (bool, string)
}

type fallback interface{ Fallback() bool }

// Exporter owns the registry behind /metrics.
type Exporter struct {
	reg     *prometheus.Registry
	up      *prometheus.GaugeVec
	latency *prometheus.HistogramVec
}

// New builds the registry: Go runtime and process metrics, the source
// instruments, and a collector that reads hub at every scrape.
func New(hub Hub) *Exporter {
	e := &Exporter{
		reg: prometheus.NewRegistry(),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sysperf_source_up",
			Help: "Whether the source's last poll reached what it watches (1) or not (0).",
		}, []string{"source"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sysperf_source_poll_duration_seconds",
			Help:    "Time one poll of a source took.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"source"}),
	}
	e.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		e.up, e.latency,
		newUpdateCollector(hub),
	)
	return e
}

// Handler serves the exposition. A collector failing mid-scrape still
// serves what the others gathered.
func (e *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the private registry, for tests and for a caller that wants
// to add its own collectors.
func (e *Exporter) Registry() *prometheus.Registry { return e.reg }

// Instrument wraps a source so that each poll's duration and outcome are
// recorded. The wrapper keeps the source's Fallback() so the hub still
// applies a fallback's patch last.
func (e *Exporter) Instrument(src Source) Source {
	in := &instrumented{src: src, up: e.up.WithLabelValues(src.Name()), latency: e.latency.WithLabelValues(src.Name())}
	if fb, ok := src.(fallback); ok && fb.Fallback() {
		return instrumentedFallback{in}
	}
	return in
}

type instrumented struct {
	src     Source
	up      prometheus.Gauge
	latency prometheus.Observer
}

func (s *instrumented) Name() string { return s.src.Name() }

func (s *instrumented) Poll(ctx context.Context) func(*metrics.Update) {
	start := time.Now()
	p := s.src.Poll(ctx)
	s.latency.Observe(time.Since(start).Seconds())
	up := p != nil
	if r, ok := s.src.(upReporter); ok {
		up, _ = r.Up()
	}
	if up {
		s.up.Set(1)
	} else {
		s.up.Set(0)
	}
	return p
}

type instrumentedFallback struct{ *instrumented }

func (instrumentedFallback) Fallback() bool { return true }
