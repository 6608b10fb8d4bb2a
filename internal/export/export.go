// Package export serves the hub's own /metrics: its ingest counters, its
// WebSocket clients, the health and poll latency of its sources, and the
// merged gauges of the latest performance update, so that an existing
// Prometheus and Grafana can use sysperf as their exporter.
//
// Everything lives on a private registry owned by the Exporter; nothing is
// registered with client_golang's global default registry.
package export

import (
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
	// Gaps is how often the live subscription lost messages or
	// reconnected, and ReadBack the messages read from the samples
	// stream instead: the start-up replay and each gap.
	Gaps, ReadBack uint64
}

// Hub is what the exporter reads of the hub at scrape time.
type Hub interface {
	Ingest() Ingest
	// Clients is the number of connected WebSocket clients.
	Clients() int
	// Latest is the newest performance update, nil before the first.
	Latest() *metrics.Update
}

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

// Observe records one poll of a source: how long it took and whether it
// reached what the source watches. The hub calls it after every poll.
func (e *Exporter) Observe(source string, took time.Duration, up bool) {
	e.latency.WithLabelValues(source).Observe(took.Seconds())
	v := 0.0
	if up {
		v = 1
	}
	e.up.WithLabelValues(source).Set(v)
}
