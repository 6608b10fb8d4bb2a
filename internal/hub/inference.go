package hub

import (
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// inferenceRange is a chart range the update carries inference figures
// for (metrics.Update.InferenceWindows), so the dashboard's headline
// figures cover the range its charts show.
type inferenceRange struct {
	key string
	d   time.Duration
}

func inferenceRanges() []inferenceRange {
	return []inferenceRange{{"5m", 5 * time.Minute}, {"15m", 15 * time.Minute}, {"60m", 60 * time.Minute}}
}

// applyLatency fills the update's inference section over window and its
// per-range figures, or says why there are none.
func applyLatency(u *metrics.Update, lat Latency, now time.Time, window time.Duration) {
	if lat == nil {
		u.Sources[metrics.SectionInference] = SourceNone
		u.Errors[metrics.SectionInference] = "latency windows not configured"
		return
	}
	u.Inference = lat.Latencies(now, window)
	u.Sources[metrics.SectionInference] = "agents"
	ranges := inferenceRanges()
	u.InferenceWindows = make(map[string]metrics.Latencies, len(ranges))
	for _, r := range ranges {
		l := u.Inference
		if r.d != window {
			l = lat.Latencies(now, r.d)
		}
		// The key is the window, whatever a Latency writes there.
		l.Window = r.key
		u.InferenceWindows[r.key] = l
	}
}
