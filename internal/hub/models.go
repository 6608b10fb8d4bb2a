package hub

import (
	"time"

	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// modelWindows is what a Latency offers for per-model figures; the
// tracker in internal/latency implements it.
type modelWindows interface {
	HostStats(host, role string, now time.Time, window time.Duration) metrics.Stats
	HostIncrease(host, role string, now time.Time, window time.Duration) (inc, seconds float64, ok bool)
}

// seedKind is the kind of the seed's two entries when an older agent
// sends none.
func seedKind(name string) string {
	switch name {
	case metrics.RoleRTDETR:
		return metrics.KindRTDETR
	case metrics.RoleNemotron:
		return metrics.KindLlamaCpp
	}
	return ""
}

// modelEntry is a model server's entry; v is its view (view.Model), which
// the ingest converted.
func modelEntry(s *metrics.Sample, name string, m metrics.Model, v metrics.ModelView) metrics.ModelEntry {
	var e metrics.ModelEntry
	modelEntryTo(&e, s, name, m, v)
	return e
}

// modelEntryTo is modelEntry written to *e, which must be zero (fresh):
// field by field, where a composite literal (some 400 bytes) was built on
// the stack and copied over.
func modelEntryTo(e *metrics.ModelEntry, s *metrics.Sample, name string, m metrics.Model, v metrics.ModelView) {
	e.Host, e.Name, e.Kind, e.Status, e.Reason, e.Model = s.Host, name, m.Kind, v.Status, m.Reason, m.Model
	e.VRAMGB, e.GPUs, e.SMPercent = v.VRAMGB, m.GPUs, m.SMPercent
	e.Waiting, e.Running, e.KVCachePercent = m.Waiting, m.Running, m.KVCache
	e.SlotsActive, e.SlotsTotal, e.ContextSize = m.SlotsActive, m.SlotsTotal, m.ContextSize
	e.Slots, e.Notes, e.Stale = m.Slots, m.Notes, v.Stale
	if e.Kind == "" {
		e.Kind = seedKind(name)
	}
	for _, l := range m.Loaded {
		e.Loaded = append(e.Loaded, metrics.LoadedModel{
			Name: l.Name, SizeGB: *view.GB(l.Size), VRAMGB: *view.GB(l.SizeVRAM), VRAMSharePercent: l.VRAMShare,
			ContextLength: l.Context, ExpiresAt: l.ExpiresAt, ParameterSize: l.Params, Quantization: l.Quant,
		})
	}
	if m.Energy != nil {
		e.Energy = &metrics.EnergyEstimate{Estimate: true, Method: metrics.EnergyMethod, IntervalJoules: m.Energy, IntervalWatts: m.Power}
	}
}

// applyModelWindows fills each entry's figures over window: latency
// percentiles from the server's histograms (Triton's averages from its
// time counters), token and request rates, and the energy over the
// window with joules per token, image or inference. The seed's detector
// and LLM fall back to the host's rtdetr and nemotron latency roles when
// their servers keep no histogram of their own.
func applyModelWindows(u *metrics.Update, lat Latency, now time.Time, window time.Duration) {
	mw, ok := lat.(modelWindows)
	if !ok {
		return
	}
	for i := range u.Models {
		e := &u.Models[i]
		role := func(key string) string { return latency.ModelRole(e.Name, key) }
		stats := func(key string) metrics.Stats { return mw.HostStats(e.Host, role(key), now, window) }
		e.Latency, e.TTFT, e.ITL, e.Queue = stats(metrics.HistE2E), stats(metrics.HistTTFT), stats(metrics.HistITL), stats(metrics.HistQueue)
		if e.Latency.Count == nil {
			switch e.Name {
			case metrics.RoleRTDETR:
				e.Latency = mw.HostStats(e.Host, metrics.RoleRTDETR, now, window)
			case metrics.RoleNemotron:
				e.Latency = mw.HostStats(e.Host, metrics.RoleNemotron, now, window)
			}
		}
		inc := func(key string) (float64, float64, bool) { return mw.HostIncrease(e.Host, role(key), now, window) }
		reqs, reqSecs, reqOK := inc(metrics.CounterRequests)
		if reqOK && reqSecs > 0 {
			e.RequestsPerS = ptrF(reqs / reqSecs)
		}
		// Counted time: average = Δtime / Δrequests.
		for _, c := range []struct {
			key string
			st  *metrics.Stats
		}{{metrics.CounterLatencySum, &e.Latency}, {metrics.CounterQueueSum, &e.Queue}} {
			if c.st.Count != nil {
				continue
			}
			if t, _, ok := inc(c.key); ok && reqOK {
				c.st.Count = ptrF(reqs)
				if reqs > 0 {
					c.st.Avg = ptrF(t / reqs * 1000)
				}
			}
		}
		gen, genSecs, genOK := inc(metrics.CounterGenTokens)
		if genOK && genSecs > 0 {
			e.GenTokensPerS = ptrF(gen / genSecs)
		}
		if p, secs, ok := inc(metrics.CounterPromptTokens); ok && secs > 0 {
			e.PromptTokensPerS = ptrF(p / secs)
		}
		joules, secs, ok := inc(metrics.CounterEnergy)
		if !ok || secs <= 0 {
			continue
		}
		// A copy: the entry's own estimate is the merger's, shared by the
		// next updates.
		en := &metrics.EnergyEstimate{Estimate: true, Method: metrics.EnergyMethod}
		if e.Energy != nil {
			*en = *e.Energy
		}
		e.Energy = en
		en.Window = u.Inference.Window
		en.WindowJoules, en.WindowWatts = ptrF(joules), ptrF(joules/secs)
		if genOK && gen > 0 {
			en.JoulesPerToken = ptrF(joules / gen)
		}
		if n, _, ok := inc(metrics.CounterInferences); ok && n > 0 {
			en.JoulesPerInference = ptrF(joules / n)
		}
		images, _, ok := inc(metrics.CounterImages)
		if !ok && e.Kind == metrics.KindRTDETR {
			// The seed's detector counts images in the inference section.
			images, _, ok = mw.HostIncrease(e.Host, metrics.RoleImages, now, window)
		}
		if ok && images > 0 {
			en.JoulesPerImage = ptrF(joules / images)
		}
	}
}

func ptrF(v float64) *float64 { return &v }
