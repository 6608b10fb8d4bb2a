// Package latency turns the cumulative histograms and counters agents
// scrape, and the observations pipelines push, into windowed averages,
// percentiles and rates. It implements hub.Latency.
//
// For each host and role it keeps a time-ordered, bounded run of
// snapshots (enough for the longest window at the agent's interval). A
// window's figures come from the change between the newest snapshot and
// the one at or just before the window's start, summed pair by pair so a
// counter reset (a restarted server) counts the post-reset snapshot from
// zero instead of producing a negative delta. Percentiles use Prometheus'
// histogram_quantile interpolation over the summed bucket deltas of all
// hosts.
//
// Pushed observations of a stage feed the role of the same name. When a
// window has both for a role, one source is used, never a blend of two
// differently biased estimates: the server's histogram for rtdetr and
// nemotron (it sees every request), the pipeline's own observations for
// pipeline (it defines what a pipeline run is). Either falls back to the
// other when it has nothing in the window.
package latency

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Config bounds what a Tracker keeps.
type Config struct {
	// Retain is how far back snapshots and observations are kept; the
	// longest window asked for must fit. Default 65 minutes.
	Retain time.Duration
	// MaxSnapshots caps snapshots per host and role whatever the
	// interval. Default 8192 (an hour at 0.5 s).
	MaxSnapshots int
	// MaxObservations caps pushed observations per host and stage.
	// Default 65536; the oldest go first.
	MaxObservations int
	// PreferObservations names the roles whose pushed observations win
	// over a histogram in the same window. Default: pipeline.
	PreferObservations []string
	// MaxStages caps the pushed stages kept per host, so a publisher
	// inventing stage names cannot grow memory without end. Default 16.
	MaxStages int
	// MaxModels caps the models whose series are kept per host, for the
	// same reason. Default 64.
	MaxModels int
}

func (c Config) withDefaults() Config {
	if c.Retain <= 0 {
		c.Retain = 65 * time.Minute
	}
	if c.MaxSnapshots <= 0 {
		c.MaxSnapshots = 8192
	}
	if c.MaxObservations <= 0 {
		c.MaxObservations = 65536
	}
	if c.MaxStages <= 0 {
		c.MaxStages = 16
	}
	if c.MaxModels <= 0 {
		c.MaxModels = 64
	}
	if c.PreferObservations == nil {
		c.PreferObservations = []string{metrics.RolePipeline}
	}
	return c
}

// Tracker keeps the windows. It is safe for concurrent use: the hub's
// ingest adds while its loop reads.
type Tracker struct {
	cfg Config

	mu    sync.Mutex
	hosts map[string]*hostState
	swept int64 // when hosts were last checked for expiry
}

type hostState struct {
	hist     map[string]*run
	counters map[string]*timeline[point]
	obs      map[string][]metrics.Observation
	// models are the model names whose series are kept (see addModels),
	// each with its series' roles by key: ModelRole's, made once rather
	// than for every sample.
	models map[string]map[string]string
}

type point struct {
	ts int64
	v  float64
}

// New returns an empty Tracker.
func New(cfg Config) *Tracker {
	return &Tracker{cfg: cfg.withDefaults(), hosts: map[string]*hostState{}}
}

func (t *Tracker) host(h string) *hostState {
	hs := t.hosts[h]
	if hs == nil {
		hs = &hostState{hist: map[string]*run{}, counters: map[string]*timeline[point]{}, obs: map[string][]metrics.Observation{}, models: map[string]map[string]string{}}
		// The names a sample brings share its message's buffer (the hub
		// decodes in place): a copy, so a host's first message is not
		// kept for as long as the host is.
		t.hosts[strings.Clone(h)] = hs
	}
	return hs
}

// maxSnapshots is what one run may hold at interval: the retention's worth
// plus a margin for jitter, never more than the configured cap.
func (t *Tracker) maxSnapshots(interval int64) int {
	if interval <= 0 {
		interval = int64(5 * time.Second)
	}
	n := int(int64(t.cfg.Retain)/interval) + 16
	return min(n, t.cfg.MaxSnapshots)
}

// AddSample records the sample's scraped histograms and counters. Samples
// may come late or out of order (an agent's backlog); each lands at its own
// timestamp.
func (t *Tracker) AddSample(s *metrics.Sample) {
	if s == nil || s.Host == "" || (s.Inference == nil && len(s.Models) == 0) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	hs := t.host(s.Host)
	limit := t.maxSnapshots(s.Interval)
	t.addModels(hs, s, limit)
	if s.Inference == nil {
		return
	}
	for role, h := range s.Inference.Histograms {
		t.addHist(hs, role, s.TS, h, limit)
	}
	for role, v := range s.Inference.Counters {
		t.addCounter(hs, role, s.TS, v, limit)
	}
}

// addHist records one sample's cumulative histogram of role.
func (t *Tracker) addHist(hs *hostState, role string, ts int64, h metrics.Histogram, limit int) {
	if !validHistogram(h) {
		return
	}
	r := hs.hist[role]
	if r == nil {
		r = &run{}
		hs.hist[strings.Clone(role)] = r
	}
	r.add(ts, h.Count, h.Sum, h.Buckets, int64(t.cfg.Retain), limit)
}

// addCounter records one sample's counter of role.
func (t *Tracker) addCounter(hs *hostState, role string, ts int64, v float64, limit int) {
	if !finite(v) {
		return
	}
	l := hs.counters[role]
	if l == nil {
		l = &timeline[point]{}
		hs.counters[strings.Clone(role)] = l
	}
	l.insert(point{ts: ts, v: v}, func(x point) int64 { return x.ts }, int64(t.cfg.Retain), limit)
}

// validHistogram refuses what would poison the maths: unsorted bounds,
// NaN or infinite values (JSON has no infinity, so one would cost the hub
// its whole update), negative counts.
func validHistogram(h metrics.Histogram) bool {
	if !finite(h.Count) || h.Count < 0 || !finite(h.Sum) {
		return false
	}
	for i, b := range h.Buckets {
		if !finite(b.UpperBound) || !finite(b.Count) || b.Count < 0 {
			return false
		}
		if i > 0 && b.UpperBound <= h.Buckets[i-1].UpperBound {
			return false
		}
	}
	return true
}

// AddObservations records pushed observations of a stage.
func (t *Tracker) AddObservations(host, stage string, obs []metrics.Observation) {
	if host == "" || stage == "" || len(obs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	hs := t.host(host)
	run, known := hs.obs[stage]
	if !known && len(hs.obs) >= t.cfg.MaxStages {
		return
	}
	newest := int64(0)
	if len(run) > 0 {
		newest = run[len(run)-1].TS
	}
	for _, o := range obs {
		if o.TS <= 0 || !finite(o.MS) || o.MS < 0 {
			continue
		}
		newest = max(newest, o.TS)
		i := sort.Search(len(run), func(i int) bool { return run[i].TS > o.TS })
		run = slices.Insert(run, i, o)
	}
	hs.obs[stage] = prune(run, func(o metrics.Observation) int64 { return o.TS }, newest-int64(t.cfg.Retain), t.cfg.MaxObservations)
}

func sameBounds(bounds []float64, buckets []metrics.Bucket) bool {
	if len(bounds) != len(buckets) {
		return false
	}
	for i, b := range buckets {
		if bounds[i] != b.UpperBound {
			return false
		}
	}
	return true
}

// timeline is a run of entries sorted by time, whose oldest go from its
// front: a hub keeps an hour of them per host and series, and dropping
// the oldest by copying the rest down moved the whole hour (tens of KB)
// at every sample. The dropped front stays in buf, behind head, until
// buf is full; the rest is then moved down once, which happens every
// eighth of the run's length at most.
type timeline[T any] struct {
	buf  []T
	head int
}

// all is the entries kept, oldest first; nil for a timeline never
// started.
func (l *timeline[T]) all() []T {
	if l == nil {
		return nil
	}
	return l.buf[l.head:]
}

// insert places x by its time (replacing an entry with the same time: a
// redelivered sample), then drops what is older than retain before the
// newest entry, and the oldest beyond limit.
func (l *timeline[T]) insert(x T, ts func(T) int64, retain int64, limit int) {
	if len(l.buf) == cap(l.buf) && l.head > 0 && l.head >= len(l.buf)/8 {
		n := copy(l.buf, l.buf[l.head:])
		clear(l.buf[n:])
		l.buf, l.head = l.buf[:n], 0
	}
	run := l.buf[l.head:]
	n := len(run)
	switch {
	case n == 0 || ts(run[n-1]) < ts(x):
		run = append(run, x)
	default:
		i := sort.Search(n, func(i int) bool { return ts(run[i]) >= ts(x) })
		if i < n && ts(run[i]) == ts(x) {
			run[i] = x
		} else {
			run = slices.Insert(run, i, x)
		}
	}
	if cap(run) != cap(l.buf)-l.head {
		l.buf, l.head = run, 0 // grown into a new array
	} else {
		l.buf = l.buf[:l.head+len(run)]
	}
	cutoff := ts(run[len(run)-1]) - retain
	drop := expired(run, ts, cutoff)
	drop = max(drop, len(run)-limit)
	if drop > 0 {
		clear(run[:drop])
		l.head += drop
	}
}

// expired is how many of run's oldest entries are older than cutoff. A
// full run loses one or none per insert: the first entries, in one or
// two cache lines, are read before a search, whose ten reads of a long
// run were each a cache miss at thousands of hosts.
func expired[T any](run []T, ts func(T) int64, cutoff int64) int {
	const look = 4
	for i := range min(look, len(run)) {
		if ts(run[i]) >= cutoff {
			return i
		}
	}
	if len(run) <= look {
		return len(run)
	}
	return look + sort.Search(len(run)-look, func(i int) bool { return ts(run[look+i]) >= cutoff })
}

func prune[T any](run []T, ts func(T) int64, cutoff int64, limit int) []T {
	drop := expired(run, ts, cutoff)
	drop = max(drop, len(run)-limit)
	if drop <= 0 {
		return run
	}
	n := copy(run, run[drop:])
	clear(run[n:])
	return run[:n]
}

// Latencies computes the inference section for the window ending at now.
// A role with no data in the window has nil figures: no data, not zero.
func (t *Tracker) Latencies(now time.Time, window time.Duration) metrics.Latencies {
	end := now.UnixNano()
	start := end - int64(window)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(end)
	out := metrics.Latencies{Window: formatWindow(window)}
	out.RTDETR = t.stats(metrics.RoleRTDETR, start, end)
	out.Nemotron = t.stats(metrics.RoleNemotron, start, end)
	out.Pipeline = t.stats(metrics.RolePipeline, start, end)
	out.Throughput.ImagesPerMin = t.rate(metrics.RoleImages, start, end)
	out.Throughput.EventsPerMin = t.rate(metrics.RoleEvents, start, end)
	return out
}

func (t *Tracker) stats(role string, start, end int64) metrics.Stats {
	hist, histOK := t.histStats(role, start, end)
	obs, obsOK := t.obsStats(role, start, end)
	hasHist := histOK && hist.Avg != nil
	hasObs := obsOK && obs.Avg != nil
	switch {
	case hasObs && (!hasHist || slices.Contains(t.cfg.PreferObservations, role)):
		return obs
	case hasHist:
		return hist
	case histOK:
		return hist // a measured zero count
	case obsOK:
		return obs
	}
	return metrics.Stats{}
}

func (t *Tracker) histStats(role string, start, end int64) (metrics.Stats, bool) {
	var ds []delta
	for _, hs := range t.hosts {
		if d, ok := windowDelta(hs.hist[role], start, end); ok {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return metrics.Stats{}, false
	}
	return deltaStats(mergeDeltas(ds)), true
}

// deltaStats turns a window's histogram delta into figures: a measured
// count, and the average and percentiles when it is not zero.
func deltaStats(d delta) metrics.Stats {
	st := metrics.Stats{Count: ptr(d.count)}
	if d.count <= 0 {
		return st
	}
	// Exporters speak seconds; the dashboard milliseconds.
	st.Avg = ptr(d.sum / d.count * 1000)
	if v, ok := bucketQuantile(0.95, d); ok {
		st.P95 = ptr(v * 1000)
	}
	if v, ok := bucketQuantile(0.99, d); ok {
		st.P99 = ptr(v * 1000)
	}
	return st
}

// span returns the indices of the snapshots that bound the window: the
// newest at or before end, and the one at or just before start (or the
// oldest kept, when the run is younger than the window). ok is false when
// the run has no snapshot inside the window or only one snapshot to go on.
func span(n int, ts func(int) int64, start, end int64) (i0, i1 int, ok bool) {
	i1 = sort.Search(n, func(i int) bool { return ts(i) > end }) - 1
	if i1 < 0 || ts(i1) <= start {
		return 0, 0, false
	}
	i0 = sort.Search(n, func(i int) bool { return ts(i) > start }) - 1
	i0 = max(i0, 0)
	if i0 >= i1 {
		return 0, 0, false
	}
	return i0, i1, true
}

// windowDelta sums a run's increases over the window pair by pair. A pair
// whose count or any bucket went down is a reset, so the later snapshot
// counts from zero; a change of bucket layout is a restart with a new
// configuration, and the delta starts again at that snapshot.
func windowDelta(r *run, start, end int64) (delta, bool) {
	i0, i1, ok := span(r.len(), func(i int) int64 { return r.at(i).ts }, start, end)
	if !ok {
		return delta{}, false
	}
	d := delta{bounds: r.bounds(i1), counts: make([]float64, len(r.bounds(i1)))}
	for j := i0 + 1; j <= i1; j++ {
		prev, cur := r.at(j-1), r.at(j)
		counts := r.counts(j)
		if prev.layout != cur.layout {
			d = delta{bounds: r.bounds(j), counts: slices.Clone(counts), count: cur.count, sum: cur.sum}
			continue
		}
		prevCounts := r.counts(j - 1)
		if isReset(prev.count, cur.count, prevCounts, counts) {
			d.count += cur.count
			d.sum += cur.sum
			for i, c := range counts {
				d.counts[i] += c
			}
			continue
		}
		d.count += cur.count - prev.count
		d.sum += cur.sum - prev.sum
		for i, c := range counts {
			d.counts[i] += c - prevCounts[i]
		}
	}
	return d, true
}

func isReset(prevCount, curCount float64, prev, cur []float64) bool {
	if curCount < prevCount {
		return true
	}
	for i, c := range cur {
		if c < prev[i] {
			return true
		}
	}
	return false
}

func (t *Tracker) obsStats(stage string, start, end int64) (metrics.Stats, bool) {
	var vals []float64
	for _, hs := range t.hosts {
		run := hs.obs[stage]
		lo := sort.Search(len(run), func(i int) bool { return run[i].TS > start })
		hi := sort.Search(len(run), func(i int) bool { return run[i].TS > end })
		for _, o := range run[lo:hi] {
			vals = append(vals, o.MS)
		}
	}
	if len(vals) == 0 {
		// A quiet pushing stage is not "zero requests": pushes are not
		// a complete count, so the window simply has no figure.
		return metrics.Stats{}, false
	}
	slices.Sort(vals)
	sum := 0.0
	for _, v := range vals {
		sum += v
	}
	return metrics.Stats{
		Avg:   ptr(sum / float64(len(vals))),
		P95:   ptr(exactQuantile(0.95, vals)),
		P99:   ptr(exactQuantile(0.99, vals)),
		Count: ptr(float64(len(vals))),
	}, true
}

// rate is a counter's increase per minute over the window, summed over
// hosts, each host's increase divided by the time its snapshots span.
func (t *Tracker) rate(role string, start, end int64) *float64 {
	total, found := 0.0, false
	for _, hs := range t.hosts {
		run := hs.counters[role].all()
		i0, i1, ok := span(len(run), func(i int) int64 { return run[i].ts }, start, end)
		if !ok {
			continue
		}
		inc := 0.0
		for j := i0 + 1; j <= i1; j++ {
			if run[j].v < run[j-1].v {
				inc += run[j].v
			} else {
				inc += run[j].v - run[j-1].v
			}
		}
		minutes := float64(run[i1].ts-run[i0].ts) / float64(time.Minute)
		total += inc / minutes
		found = true
	}
	if !found {
		return nil
	}
	return &total
}

// sweep forgets hosts that sent nothing within the retention, at most once
// a minute: a host gone for good (or a made-up one in a latency subject)
// must not stay in memory for ever.
func (t *Tracker) sweep(now int64) {
	if now-t.swept < int64(time.Minute) {
		return
	}
	t.swept = now
	cutoff := now - int64(t.cfg.Retain)
	for name, hs := range t.hosts {
		if hs.newest() < cutoff {
			delete(t.hosts, name)
		}
	}
}

func (hs *hostState) newest() int64 {
	var n int64
	for _, r := range hs.hist {
		if k := r.len(); k > 0 {
			n = max(n, r.at(k-1).ts)
		}
	}
	for _, l := range hs.counters {
		if run := l.all(); len(run) > 0 {
			n = max(n, run[len(run)-1].ts)
		}
	}
	for _, run := range hs.obs {
		if len(run) > 0 {
			n = max(n, run[len(run)-1].TS)
		}
	}
	return n
}

// formatWindow names a window as the range selector does: "5m", "60m".
func formatWindow(w time.Duration) string {
	if w > 0 && w%time.Minute == 0 {
		return fmt.Sprintf("%dm", w/time.Minute)
	}
	return w.String()
}

func ptr(v float64) *float64 { return &v }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
