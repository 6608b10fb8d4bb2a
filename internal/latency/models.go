package latency

import (
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// ModelRole is the role under which a model's own histogram or counter is
// kept: "model/<name>/<key>", so it never mixes with the seed's roles,
// which sum over hosts.
func ModelRole(name, key string) string { return "model/" + name + "/" + key }

// addModels records each model's histograms and counters under its
// ModelRole. Models past MaxModels on a host are not kept.
func (t *Tracker) addModels(hs *hostState, s *metrics.Sample, limit int) {
	for name, m := range s.Models {
		if len(m.Histograms) == 0 && len(m.Counters) == 0 {
			continue
		}
		if !hs.models[name] {
			if len(hs.models) >= t.cfg.MaxModels {
				continue
			}
			hs.models[name] = true
		}
		hists := make(map[string]metrics.Histogram, len(m.Histograms))
		for k, h := range m.Histograms {
			hists[ModelRole(name, k)] = h
		}
		counters := make(map[string]float64, len(m.Counters))
		for k, v := range m.Counters {
			counters[ModelRole(name, k)] = v
		}
		t.addSeries(hs, s.TS, hists, counters, limit)
	}
}

// HostStats is the latency figures of one host's role over the window
// ending at now, in milliseconds; nil figures when the window has none.
func (t *Tracker) HostStats(host, role string, now time.Time, window time.Duration) metrics.Stats {
	end := now.UnixNano()
	start := end - int64(window)
	t.mu.Lock()
	defer t.mu.Unlock()
	hs := t.hosts[host]
	if hs == nil {
		return metrics.Stats{}
	}
	d, ok := windowDelta(hs.hist[role], start, end)
	if !ok {
		return metrics.Stats{}
	}
	return deltaStats(d)
}

// HostIncrease is how much one host's counter grew over the window ending
// at now (a reset counts the new value from zero) and the seconds its
// snapshots span; ok is false without two snapshots in the window.
func (t *Tracker) HostIncrease(host, role string, now time.Time, window time.Duration) (inc, seconds float64, ok bool) {
	end := now.UnixNano()
	start := end - int64(window)
	t.mu.Lock()
	defer t.mu.Unlock()
	hs := t.hosts[host]
	if hs == nil {
		return 0, 0, false
	}
	run := hs.counters[role]
	i0, i1, ok := span(len(run), func(i int) int64 { return run[i].ts }, start, end)
	if !ok {
		return 0, 0, false
	}
	for j := i0 + 1; j <= i1; j++ {
		if run[j].v < run[j-1].v {
			inc += run[j].v
		} else {
			inc += run[j].v - run[j-1].v
		}
	}
	return inc, time.Duration(run[i1].ts - run[i0].ts).Seconds(), true
}
