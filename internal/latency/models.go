package latency

import (
	"strings"
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
		roles := hs.models[name]
		if roles == nil {
			if len(hs.models) >= t.cfg.MaxModels {
				continue
			}
			roles = map[string]string{}
			hs.models[strings.Clone(name)] = roles
		}
		for k, h := range m.Histograms {
			t.addHist(hs, modelRole(roles, name, k), s.TS, h, limit)
		}
		for k, v := range m.Counters {
			t.addCounter(hs, modelRole(roles, name, k), s.TS, v, limit)
		}
	}
}

// modelRole is ModelRole(name, key), kept in roles, the model's.
func modelRole(roles map[string]string, name, key string) string {
	r, ok := roles[key]
	if !ok {
		r = ModelRole(name, key)
		roles[strings.Clone(key)] = r
	}
	return r
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
	run := hs.counters[role].all()
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
