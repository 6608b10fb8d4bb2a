package latency

import (
	"slices"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// run is one host's and role's histogram snapshots, oldest first, laid
// out for the GC: a hub keeps an hour of them (about 800 at 5 s) per
// host and role, thousands of hosts, and a snapshot holding its own
// bucket counts was an object and two pointers each for every GC to
// trace. Here a snapshot holds no pointer: its counts are a stretch of
// one array and its bounds one of the run's few layouts.
type run struct {
	snaps timeline[snapshot]
	// vals holds the snapshots' bucket counts, each a stretch of
	// len(layouts[layout]) from off; stretches no snapshot points at any
	// more (dropped or replaced) go when they are most of it.
	vals []float64
	// layouts are the distinct bucket bounds of the run's snapshots: one,
	// almost always.
	layouts [][]float64
}

type snapshot struct {
	ts     int64
	count  float64
	sum    float64
	off    int32
	layout int32
}

// len is how many snapshots r holds; 0 for a run never started.
func (r *run) len() int {
	if r == nil {
		return 0
	}
	return len(r.snaps.all())
}

// at is the i-th snapshot kept, oldest first.
func (r *run) at(i int) snapshot { return r.snaps.all()[i] }

func (r *run) bounds(i int) []float64 { return r.layouts[r.at(i).layout] }

func (r *run) counts(i int) []float64 {
	s := r.at(i)
	return r.vals[s.off : int(s.off)+len(r.layouts[s.layout])]
}

// add places the snapshot of a histogram at ts (see timeline.insert),
// its counts at the end of vals and its bounds among the layouts.
func (r *run) add(ts int64, count, sum float64, buckets []metrics.Bucket, retain int64, limit int) {
	if live := r.len() * len(buckets); len(r.vals) > 2*live+64 {
		r.compact()
	}
	snap := snapshot{ts: ts, count: count, sum: sum, off: int32(len(r.vals)), layout: r.layoutOf(buckets)}
	for _, b := range buckets {
		r.vals = append(r.vals, b.Count)
	}
	r.snaps.insert(snap, func(x snapshot) int64 { return x.ts }, retain, limit)
}

// layoutOf is the index of buckets' bounds in r.layouts, added when new.
// The newest snapshot's layout is tried first.
func (r *run) layoutOf(buckets []metrics.Bucket) int32 {
	if n := r.len(); n > 0 && sameBounds(r.bounds(n-1), buckets) {
		return r.at(n - 1).layout
	}
	for i, l := range r.layouts {
		if sameBounds(l, buckets) {
			return int32(i)
		}
	}
	bounds := make([]float64, len(buckets))
	for i, b := range buckets {
		bounds[i] = b.UpperBound
	}
	r.layouts = append(r.layouts, bounds)
	return int32(len(r.layouts) - 1)
}

// compact moves the counts the snapshots point at to the front of vals,
// in their order, and drops the layouts none of them has. In place when
// the snapshots' counts are in vals' order (always, but after a late or
// redelivered sample): each stretch then moves down.
func (r *run) compact() {
	snaps := r.snaps.all()
	used := make([]int32, len(r.layouts))
	inOrder := true
	for i, s := range snaps {
		used[s.layout] = 1
		inOrder = inOrder && (i == 0 || s.off > snaps[i-1].off)
	}
	var layouts [][]float64
	for i, u := range used {
		if u > 0 {
			used[i] = int32(len(layouts))
			layouts = append(layouts, r.layouts[i])
		}
	}
	vals := r.vals[:0]
	if !inOrder {
		vals = make([]float64, 0, len(r.vals))
	}
	for i := range snaps {
		c := r.counts(i)
		snaps[i].off = int32(len(vals))
		snaps[i].layout = used[snaps[i].layout]
		vals = append(vals, c...)
	}
	r.vals, r.layouts = vals, slices.Clip(layouts)
}
