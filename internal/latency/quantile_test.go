package latency

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
)

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestBucketQuantileClosedForm(t *testing.T) {
	uniform := delta{bounds: []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0},
		counts: []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, count: 100}
	skewed := delta{bounds: []float64{0.05, 0.1, 0.2, 0.5, 1}, counts: []float64{80, 90, 95, 99, 100}, count: 100}
	overflow := delta{bounds: []float64{0.1, 0.2}, counts: []float64{10, 20}, count: 100}
	negative := delta{bounds: []float64{-1, 0, 1}, counts: []float64{50, 60, 100}, count: 100}
	tests := []struct {
		name string
		q    float64
		d    delta
		want float64
		ok   bool
	}{
		// Ten observations per 0.1 s bucket spread evenly over 0–1 s: the
		// q-quantile is q seconds.
		{"uniform p50", 0.5, uniform, 0.5, true},
		{"uniform p95", 0.95, uniform, 0.95, true},
		{"uniform p99", 0.99, uniform, 0.99, true},
		// 80 % under 50 ms, a long tail: p50 sits 5/8 into the first
		// bucket, p95 and p99 exactly on bucket edges.
		{"skewed p50", 0.5, skewed, 0.03125, true},
		{"skewed p95", 0.95, skewed, 0.2, true},
		{"skewed p99", 0.99, skewed, 0.5, true},
		{"skewed p85", 0.85, skewed, 0.075, true},
		// 80 of 100 observations above the highest finite bucket:
		// Prometheus answers that bucket's upper bound.
		{"in +Inf bucket", 0.95, overflow, 0.2, true},
		{"first bucket with non-positive bound", 0.3, negative, -1, true},
		{"no observations", 0.95, delta{bounds: []float64{1}, counts: []float64{0}}, 0, false},
		{"no buckets", 0.95, delta{count: 5}, 0, false},
	}
	for _, tt := range tests {
		got, ok := bucketQuantile(tt.q, tt.d)
		if ok != tt.ok || (ok && !approx(got, tt.want)) {
			t.Errorf("%s: got %v,%v want %v,%v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// refHistogramQuantile follows the definition in the Prometheus
// documentation of histogram_quantile, over le-labelled buckets as
// exposed (cumulative, +Inf last): rank = φ·total; the answer lies in the
// first bucket whose cumulative count reaches the rank, linearly
// interpolated between its lower bound (the previous le, 0 for the
// first) and its le; a rank in the +Inf bucket yields the previous le.
func refHistogramQuantile(phi float64, les []string, cum []float64) float64 {
	type bucket struct {
		le    float64
		count float64
	}
	bs := make([]bucket, len(les))
	for i := range les {
		le, _ := strconv.ParseFloat(les[i], 64)
		bs[i] = bucket{le, cum[i]}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	total := bs[len(bs)-1].count
	rank := phi * total
	for i, b := range bs {
		if b.count < rank {
			continue
		}
		if math.IsInf(b.le, 1) {
			return bs[i-1].le
		}
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = bs[i-1].le, bs[i-1].count
		}
		return lower + (b.le-lower)*(rank-below)/(b.count-below)
	}
	return math.NaN()
}

func TestBucketQuantileAgreesWithReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 2000; n++ {
		nb := 1 + r.IntN(20)
		bounds := make([]float64, nb)
		les := make([]string, nb+1)
		ub := 0.0
		for i := range bounds {
			ub += 0.001 + r.Float64()
			bounds[i] = ub
			les[i] = strconv.FormatFloat(ub, 'g', -1, 64)
		}
		les[nb] = "+Inf"
		counts := make([]float64, nb)
		cum := 0.0
		for i := range counts {
			if r.IntN(3) > 0 {
				cum += float64(r.IntN(50))
			}
			counts[i] = cum
		}
		total := cum + float64(r.IntN(5))
		if total == 0 {
			continue
		}
		refCum := append(append([]float64(nil), counts...), total)
		for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
			got, ok := bucketQuantile(q, delta{bounds: bounds, counts: counts, count: total})
			want := refHistogramQuantile(q, les, refCum)
			if !ok || !approx(got, want) {
				t.Fatalf("q=%v bounds=%v counts=%v total=%v: got %v,%v want %v", q, bounds, counts, total, got, ok, want)
			}
		}
	}
}

func TestExactQuantile(t *testing.T) {
	vals := make([]float64, 100)
	for i := range vals {
		vals[i] = float64(i + 1)
	}
	for _, tt := range []struct {
		q, want float64
		vals    []float64
	}{
		{0.95, 95.05, vals},
		{0.99, 99.01, vals},
		{0.5, 50.5, vals},
		{0.5, 2.5, []float64{1, 2, 3, 4}},
		{0.99, 7, []float64{7}},
		{1, 4, []float64{1, 2, 3, 4}},
	} {
		if got := exactQuantile(tt.q, tt.vals); !approx(got, tt.want) {
			t.Errorf("exactQuantile(%v, n=%d) = %v, want %v", tt.q, len(tt.vals), got, tt.want)
		}
	}
}

func TestMergeDeltas(t *testing.T) {
	a := delta{bounds: []float64{0.1, 0.2}, counts: []float64{5, 10}, count: 10, sum: 1}
	b := delta{bounds: []float64{0.1, 0.2}, counts: []float64{1, 2}, count: 4, sum: 2}
	m := mergeDeltas([]delta{a, b})
	if m.count != 14 || m.sum != 3 || m.counts[0] != 6 || m.counts[1] != 12 {
		t.Fatalf("same layout: %+v", m)
	}
	c := delta{bounds: []float64{0.15, 0.3}, counts: []float64{3, 4}, count: 4, sum: 1}
	m = mergeDeltas([]delta{a, c})
	// union 0.1 0.15 0.2 0.3; a: 5 5 10 10; c: 0 3 3 4
	want := []float64{5, 8, 13, 14}
	for i, w := range want {
		if m.counts[i] != w {
			t.Fatalf("union layout: %+v, want counts %v", m, want)
		}
	}
	if a.counts[0] != 5 {
		t.Fatal("merge modified its input")
	}
}
