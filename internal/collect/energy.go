package collect

import (
	"strconv"
	"sync"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Energy estimates the GPU energy each model draws. Per GPU and interval
// it takes the energy counter's increase (NVML's total energy since the
// driver loaded), or, where the GPU has no counter, its power times the
// interval; it splits that energy between the GPU's compute processes in
// proportion to their SM share over the interval (NVML's per-process
// utilization, averaged since the previous reading). When no process on
// the GPU has an SM share (all idle, or NVML gives none) the energy is
// split evenly between its processes, each of which holds memory and
// keeps the GPU awake; energy of a GPU without processes, and the shares
// of processes no model claims, are left unattributed. A model's share is
// summed over its processes and GPUs.
//
// It keeps the previous reading of each GPU and a running total per
// model, so it is computed once, in the agent, where both ends of every
// interval are seen; the hub only averages the totals over its windows.
type Energy struct {
	mu    sync.Mutex
	prev  map[string]gpuEnergy // by GPU UUID (index when there is none)
	total map[string]float64   // joules per model since start
}

type gpuEnergy struct {
	ts     int64
	joules *float64
}

// NewEnergy returns an estimator with no history: the first sample gets
// no energy figures.
func NewEnergy() *Energy {
	return &Energy{prev: map[string]gpuEnergy{}, total: map[string]float64{}}
}

// Apply sets Energy and Power on each model of s, its share of the GPUs'
// energy over the interval since the previous sample, and
// Counters[CounterEnergy], its running total. A model with no process on
// a GPU that was measured gets 0; with no GPU measured at all, Energy and
// Power stay absent, and without GPUs the total too.
func (e *Energy) Apply(s *metrics.Sample) {
	if s == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	perModel := map[string]float64{}
	measured := false
	var dtMax float64
	for _, g := range s.GPUs {
		key := g.UUID
		if key == "" {
			key = "#" + strconv.Itoa(g.Index)
		}
		prev, seen := e.prev[key]
		e.prev[key] = gpuEnergy{ts: s.TS, joules: g.Energy}
		if !seen || s.TS <= prev.ts {
			continue
		}
		dt := time.Duration(s.TS - prev.ts).Seconds()
		var joules float64
		switch {
		case g.Energy != nil && prev.joules != nil && *g.Energy >= *prev.joules:
			joules = *g.Energy - *prev.joules
		case g.Power != nil:
			// No counter (or it went back: a driver reload): power × time.
			joules = *g.Power * dt
		default:
			continue
		}
		measured = true
		dtMax = max(dtMax, dt)
		for model, share := range splitBySM(g.Processes) {
			perModel[model] += joules * share
		}
	}
	if len(s.GPUs) == 0 {
		return
	}
	// The running total goes out from the first reading on (0 then), so
	// that the hub's windows over it span the same samples as the token
	// counters they are divided by.
	for name, m := range s.Models {
		if measured {
			j := perModel[name]
			w := j / dtMax
			e.total[name] += j
			m.Energy, m.Power = &j, &w
		}
		if m.Counters == nil {
			m.Counters = map[string]float64{}
		}
		m.Counters[metrics.CounterEnergy] = e.total[name]
		s.Models[name] = m
	}
}

// splitBySM returns each model's fraction of a GPU's energy: its
// processes' SM share over the sum of all processes' shares, or, when no
// process has a share, its count of processes over all of them. The
// fractions of processes without a model are dropped (unattributed).
func splitBySM(procs []metrics.Process) map[string]float64 {
	out := map[string]float64{}
	var sum float64
	for _, p := range procs {
		if p.SMUtil != nil && *p.SMUtil > 0 {
			sum += *p.SMUtil
		}
	}
	for _, p := range procs {
		var f float64
		switch {
		case sum > 0 && p.SMUtil != nil && *p.SMUtil > 0:
			f = *p.SMUtil / sum
		case sum == 0:
			f = 1 / float64(len(procs))
		}
		if p.Model != "" && f > 0 {
			out[p.Model] += f
		}
	}
	return out
}
