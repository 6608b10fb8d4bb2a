package latency

import (
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// BenchmarkAddSampleHourKept is one sample of a host whose runs are full,
// as in a hub that has run for more than the retention: three histograms
// of 13 buckets and two counters, each run dropping its oldest entry.
func BenchmarkAddSampleHourKept(b *testing.B) {
	tr := New(Config{})
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	per := []float64{1, 2, 5, 10, 20, 5, 3, 2, 1, 1, 0, 0, 0}
	h := hist(bounds, per, 1, 10)
	hists := map[string]metrics.Histogram{"rtdetr": h, "nemotron": h, "pipeline": h}
	i := 0
	add := func() {
		tr.AddSample(sample("gpu01", t0.Add(time.Duration(i)*interval), hists, map[string]float64{"images": float64(i), "events": float64(i) / 10}))
		i++
	}
	for range 2 * tr.maxSnapshots(int64(interval)) {
		add()
	}
	b.ReportAllocs()
	for b.Loop() {
		add()
	}
}
