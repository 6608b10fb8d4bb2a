package latency

import (
	"math"
	"slices"
)

// delta is the change of a cumulative histogram over a window: per-bucket
// cumulative counts at the finite upper bounds, the total (the +Inf
// bucket) and the sum of observed values, in the exporter's unit.
type delta struct {
	bounds []float64
	counts []float64
	count  float64
	sum    float64
}

// bucketQuantile is Prometheus' histogram_quantile on one histogram: find
// the bucket holding rank q·count and interpolate linearly inside it, the
// lowest bucket starting at 0. A rank that falls in the +Inf bucket returns
// the highest finite upper bound, as Prometheus does. ok is false when
// there is nothing to rank.
func bucketQuantile(q float64, d delta) (float64, bool) {
	if d.count <= 0 || len(d.bounds) == 0 || math.IsNaN(q) {
		return 0, false
	}
	counts := monotonic(d.counts)
	rank := q * d.count
	b := len(counts) // index of the +Inf bucket
	for i, c := range counts {
		if c >= rank {
			b = i
			break
		}
	}
	if b == len(counts) {
		return d.bounds[len(d.bounds)-1], true
	}
	if b == 0 && d.bounds[0] <= 0 {
		return d.bounds[0], true
	}
	start, below := 0.0, 0.0
	if b > 0 {
		start, below = d.bounds[b-1], counts[b-1]
	}
	end := d.bounds[b]
	inBucket := counts[b] - below
	if inBucket <= 0 {
		return end, true
	}
	return start + (end-start)*((rank-below)/inBucket), true
}

// monotonic repairs cumulative counts that dip (a scrape racing an
// observation, float noise), as Prometheus does before interpolating.
func monotonic(counts []float64) []float64 {
	for i := 1; i < len(counts); i++ {
		if counts[i] < counts[i-1] {
			fixed := slices.Clone(counts)
			for j := 1; j < len(fixed); j++ {
				fixed[j] = math.Max(fixed[j], fixed[j-1])
			}
			return fixed
		}
	}
	return counts
}

// exactQuantile is the q-quantile of sorted values by linear interpolation
// between the closest ranks (the definition numpy and most spreadsheets use
// by default), so p50 of 1,2,3,4 is 2.5.
func exactQuantile(q float64, sorted []float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo] + (sorted[lo+1]-sorted[lo])*frac
}

// mergeDeltas sums window deltas of several hosts bucket by bucket, as
// sum by (le) would. Hosts with different bucket layouts merge over the
// union of the bounds, each counting at a bound it lacks what it had at its
// next lower bound: a conservative step that is exact when layouts agree.
func mergeDeltas(ds []delta) delta {
	if len(ds) == 1 {
		return ds[0]
	}
	same := true
	for _, d := range ds[1:] {
		if !slices.Equal(d.bounds, ds[0].bounds) {
			same = false
			break
		}
	}
	var out delta
	if same {
		out.bounds = ds[0].bounds
	} else {
		for _, d := range ds {
			out.bounds = append(out.bounds, d.bounds...)
		}
		slices.Sort(out.bounds)
		out.bounds = slices.Compact(out.bounds)
	}
	out.counts = make([]float64, len(out.bounds))
	for _, d := range ds {
		out.count += d.count
		out.sum += d.sum
		if same {
			for i, c := range d.counts {
				out.counts[i] += c
			}
			continue
		}
		j, cum := 0, 0.0
		for i, ub := range out.bounds {
			for j < len(d.bounds) && d.bounds[j] <= ub {
				cum = d.counts[j]
				j++
			}
			out.counts[i] += cum
		}
	}
	return out
}
