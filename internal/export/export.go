// Package export serves the hub's own /metrics: its ingest counters, its
// WebSocket clients, the health and poll latency of its sources, and the
// merged gauges of the latest performance update, so that an existing
// Prometheus and Grafana can use sysperf as their exporter.
//
// Everything lives on a private registry owned by the Exporter; nothing is
// registered with client_golang's global default registry.
package export

import (
	"compress/gzip"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

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
	// stream instead: the start-up replay and each gap; Stalls the
	// read-backs whose consumer stopped delivering and was reopened;
	// Short the read-backs that began after their start, the stream's
	// limits having removed it.
	Gaps, ReadBack, Stalls, Short uint64
	// Held is the time from the oldest sample the samples stream holds to
	// its newest: how far back a restart or a read-back reaches. Nil
	// while unknown.
	Held *time.Duration
}

// Hub is what the exporter reads of the hub at scrape time.
type Hub interface {
	Ingest() Ingest
	// Clients is the number of connected WebSocket clients.
	Clients() int
	// Latest is the newest performance update, nil before the first.
	Latest() *metrics.Update
}

// Exporter owns the registry behind /metrics and writes the hub's
// counters and latest update after what the registry gathers.
type Exporter struct {
	reg     *prometheus.Registry
	up      *prometheus.GaugeVec
	latency *prometheus.HistogramVec
	fams    *families
	// writers and gzips are reused between scrapes, which may run at
	// once: a fleet's exposition is megabytes.
	writers, gzips sync.Pool
	// size is the last exposition's length: a writer fresh from the
	// pool (a collection empties it) takes that room at once rather than
	// doubling its way to a fleet's megabytes.
	size atomic.Int64
}

// New builds the registry, Go runtime and process metrics and the source
// instruments, and the families that read hub at every scrape.
func New(hub Hub) *Exporter {
	e := &Exporter{
		fams:    newFamilies(hub),
		writers: sync.Pool{New: func() any { return newWriter() }},
		gzips:   sync.Pool{New: func() any { return gzip.NewWriter(nil) }},
		reg:     prometheus.NewRegistry(),
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
	)
	return e
}

// Handler serves the exposition as text: the registry's instruments, then
// the hub's counters and latest update. A collector failing mid-scrape
// still serves what the others gathered. The body is gzipped for a client
// that accepts it, as client_golang's handler did.
func (e *Exporter) Handler() http.Handler {
	return http.HandlerFunc(e.serve)
}

func (e *Exporter) serve(rw http.ResponseWriter, r *http.Request) {
	w := e.writers.Get().(*writer)
	defer e.writers.Put(w)
	w.reset()
	if n := int(e.size.Load()); cap(w.b) < n {
		w.b = slices.Grow(w.b, n+n/16)
	}
	// A gather error leaves the families that did gather.
	gathered, _ := e.reg.Gather()
	buf := bytesWriter{w}
	for _, mf := range gathered {
		if _, err := expfmt.MetricFamilyToText(buf, mf); err != nil {
			http.Error(rw, "encoding "+mf.GetName()+": "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	e.fams.write(w)
	e.size.Store(int64(len(w.b)))

	h := rw.Header()
	// The update's families are written as text (0.0.4), so every
	// scrape gets text, whatever it asked for.
	h.Set("Content-Type", string(expfmt.FmtText))
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		_, _ = rw.Write(w.b)
		return
	}
	h.Set("Content-Encoding", "gzip")
	gz := e.gzips.Get().(*gzip.Writer)
	defer e.gzips.Put(gz)
	gz.Reset(rw)
	_, _ = gz.Write(w.b)
	_ = gz.Close()
}

// bytesWriter lets expfmt append to a writer's buffer.
type bytesWriter struct{ w *writer }

func (b bytesWriter) Write(p []byte) (int, error) {
	b.w.b = append(b.w.b, p...)
	return len(p), nil
}

// acceptsGzip reads an Accept-Encoding header: gzip named, not with q=0.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if strings.TrimSpace(coding) != "gzip" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// Registry is the private registry of the process's own instruments, for
// tests and for a caller that wants to add its own collectors; the hub's
// counters and update are written by the handler, not gathered here.
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
