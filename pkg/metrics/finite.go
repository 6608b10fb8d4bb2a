package metrics

import "math"

// NaN and ±Inf enter samples easily (Prometheus text allows NaN, msgpack
// carries both) and JSON, which the hub serves, has no such numbers: one
// in an update would make it unencodable and stop the feed. Decode
// therefore removes them, once, where the sample enters, and keeps the
// rest of the sample: one model server's NaN gauge must not cost its
// host's GPU figures. A removed value becomes what the contract says an
// unread value is: a nil pointer, a missing map entry, an absent series
// (a per-core list with one bad core is dropped whole, since its
// positions are the cores); a plain float field, which has no "unknown",
// becomes 0.

func bad(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

// finite sets *p to nil when it points at NaN or ±Inf and counts it.
func finite(p **float64, n *int) {
	if *p != nil && bad(**p) {
		*p = nil
		*n++
	}
}

func finiteValue(f *float64, n *int) {
	if bad(*f) {
		*f = 0
		*n++
	}
}

func finiteMap(m map[string]float64, n *int) {
	for k, v := range m {
		if bad(v) {
			delete(m, k)
			*n++
		}
	}
}

// finiteAny cleans a free-form value (a model's Extra) and reports whether
// v itself is a bad number, for its container to remove.
func finiteAny(v any, n *int) bool {
	switch v := v.(type) {
	case float64:
		return bad(v)
	case float32:
		return bad(float64(v))
	case map[string]any:
		for k, e := range v {
			if finiteAny(e, n) {
				delete(v, k)
				*n++
			}
		}
	case []any:
		for i, e := range v {
			if finiteAny(e, n) {
				v[i] = nil
				*n++
			}
		}
	}
	return false
}

func finiteProcesses(ps []Process, n *int) {
	for i := range ps {
		finite(&ps[i].SMUtil, n)
	}
}

// dropNonFinite removes every NaN and ±Inf of s and returns how many.
func (s *Sample) dropNonFinite() int {
	n := 0
	if y := s.System; y != nil {
		for _, p := range []**float64{&y.CPUPercent, &y.Load1, &y.Load5, &y.Load15, &y.DiskReadBps, &y.DiskWriteBps, &y.NetRxBps, &y.NetTxBps} {
			finite(p, &n)
		}
		for _, v := range y.PerCore {
			if bad(v) {
				y.PerCore = nil
				n++
				break
			}
		}
	}
	for i := range s.GPUs {
		g := &s.GPUs[i]
		for _, p := range []**float64{&g.Util, &g.MemUtil, &g.Temp, &g.Power, &g.PowerLimit, &g.Fan, &g.Energy, &g.SMActive, &g.SMOccupancy, &g.TensorActive} {
			finite(p, &n)
		}
		finiteProcesses(g.Processes, &n)
		if g.PCIe != nil {
			finite(&g.PCIe.TxBps, &n)
			finite(&g.PCIe.RxBps, &n)
		}
		for j := range g.NVLinks {
			finite(&g.NVLinks[j].TxBps, &n)
			finite(&g.NVLinks[j].RxBps, &n)
		}
		for j := range g.MIG {
			m := &g.MIG[j]
			finite(&m.SMActive, &n)
			finite(&m.TensorActive, &n)
			finiteProcesses(m.Processes, &n)
		}
	}
	for name, m := range s.Models {
		// Maps and slices are cleaned in place (the copy in the range
		// variable shares them); pointers are set on the copy, stored back
		// when one changed.
		finiteMap(m.Gauges, &n)
		finiteAny(m.Extra, &n)
		finiteMap(m.Counters, &n)
		for role, h := range m.Histograms {
			if finiteHistogram(&h, &n) {
				m.Histograms[role] = h
			}
		}
		for j := range m.Loaded {
			finite(&m.Loaded[j].VRAMShare, &n)
		}
		c := n
		finite(&m.Waiting, &n)
		finite(&m.Running, &n)
		finite(&m.KVCache, &n)
		finite(&m.SMPercent, &n)
		finite(&m.Energy, &n)
		finite(&m.Power, &n)
		if n != c {
			s.Models[name] = m
		}
	}
	if in := s.Inference; in != nil {
		for role, h := range in.Histograms {
			if finiteHistogram(&h, &n) {
				in.Histograms[role] = h
			}
		}
		finiteMap(in.Counters, &n)
	}
	return n
}

// finiteHistogram cleans a histogram's figures and reports whether any
// changed, so the caller stores the copy back into its map.
func finiteHistogram(h *Histogram, n *int) bool {
	k := *n
	finiteValue(&h.Count, n)
	finiteValue(&h.Sum, n)
	for j := range h.Buckets {
		finiteValue(&h.Buckets[j].UpperBound, n)
		finiteValue(&h.Buckets[j].Count, n)
	}
	return *n != k
}
