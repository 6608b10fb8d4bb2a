package view

import (
	"slices"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// The dashboard's units are binary: a GB is 2^30 bytes and an MB 2^20, so
// a 24 GiB card reads "vram_total_gb": 24 as in the seed's example and Redis
// memory reads as redis-cli's used_memory_human does.
const (
	bytesPerGB = 1 << 30
	bytesPerMB = 1 << 20
)

// GB converts bytes to the dashboard's binary gigabytes.
func GB(b uint64) *float64 {
	v := float64(b) / bytesPerGB
	return &v
}

func gbp(b *uint64) *float64 {
	if b == nil {
		return nil
	}
	return GB(*b)
}

func mbps(bps *float64) *float64 {
	if bps == nil {
		return nil
	}
	v := *bps / bytesPerMB
	return &v
}

// gpuFigures holds every figure a GPU view points at: its own copies,
// never the sample's, so the sample's memory may be reused once it is
// converted (metrics.Decoder) and the view keeps nothing of it but its
// strings. A sample's GPUs have theirs in one allocation.
type gpuFigures struct {
	index       int
	name        string
	used, total float64

	util, memUtil, temp, power, powerLimit, fan, energy float64
	smActive, smOccupancy, tensorActive                 float64
	smClock, memClock                                   uint32
	pstate                                              int
	throttleMask                                        uint64
	persistence, migMode                                bool
}

// procFigures are a process view's figures, as gpuFigures.
type procFigures struct{ vram, sm float64 }

// gpuArena holds what the GPU views of one sample point at: three
// allocations for all of its GPUs and their processes, not up to three per
// GPU.
type gpuArena struct {
	figs  []gpuFigures
	procs []metrics.ProcessView
	pfigs []procFigures
}

func newGPUArena(gpus, procs int) gpuArena {
	a := gpuArena{figs: make([]gpuFigures, gpus)}
	if procs > 0 {
		a.procs, a.pfigs = make([]metrics.ProcessView, procs), make([]procFigures, procs)
	}
	return a
}

// copyTo copies *p to *dst and points at dst; nil stays nil.
func copyTo[T any](dst *T, p *T) *T {
	if p == nil {
		return nil
	}
	*dst = *p
	return dst
}

// GPU converts one GPU of a sample to the dashboard's units; the live views
// and history both read it from here.
func GPU(host string, g metrics.GPU, stale bool) metrics.GPUView {
	a := newGPUArena(1, len(g.Processes))
	var v metrics.GPUView
	a.gpu(&v, host, &g, stale)
	return v
}

// gpu is GPU into *v, which must be zero (fresh), taking the figures
// from a. Both the GPU and its view are large structs: passed by
// pointer, a sample's GPUs are not copied twice more each on the way,
// and v's fields are set one by one (a composite literal was built on
// the stack, then copied over v).
func (a *gpuArena) gpu(v *metrics.GPUView, host string, g *metrics.GPU, stale bool) {
	fig := &a.figs[0]
	a.figs = a.figs[1:]
	fig.index, fig.name = g.Index, g.Name
	v.Host = host
	v.Index = &fig.index
	v.UUID = g.UUID
	v.Utilization = copyTo(&fig.util, g.Util)
	v.MemoryUtilization = copyTo(&fig.memUtil, g.MemUtil)
	v.Temperature = copyTo(&fig.temp, g.Temp)
	v.PowerWatts = copyTo(&fig.power, g.Power)
	v.PowerLimitWatts = copyTo(&fig.powerLimit, g.PowerLimit)
	v.SMClockMHz = copyTo(&fig.smClock, g.SMClock)
	v.MemClockMHz = copyTo(&fig.memClock, g.MemClock)
	v.FanPercent = copyTo(&fig.fan, g.Fan)
	v.PState = copyTo(&fig.pstate, g.PState)
	v.Throttle = g.Throttle
	v.ThrottleMask = copyTo(&fig.throttleMask, g.ThrottleMask)
	v.EnergyJoules = copyTo(&fig.energy, g.Energy)
	v.Stale = stale
	if g.MemUsed != nil {
		fig.used = float64(*g.MemUsed) / bytesPerGB
		v.VRAMUsedGB = &fig.used
	}
	if g.MemTotal != nil {
		fig.total = float64(*g.MemTotal) / bytesPerGB
		v.VRAMTotalGB = &fig.total
	}
	if g.Name != "" {
		v.Name = &fig.name
	}
	if n := len(g.Processes); n > 0 {
		// Full slice expressions: an append to one GPU's list never
		// writes into the next one's.
		v.Processes, a.procs = a.procs[:n:n], a.procs[n:]
		pfigs := a.pfigs[:n:n]
		a.pfigs = a.pfigs[n:]
		for i := range g.Processes {
			p, pf := &g.Processes[i], &pfigs[i]
			var gb *float64
			if p.MemUsed != nil {
				pf.vram = float64(*p.MemUsed) / bytesPerGB
				gb = &pf.vram
			}
			pv := &v.Processes[i] // fresh, zero
			pv.PID, pv.Name, pv.Command = p.PID, p.Name, p.Command
			pv.VRAMGB, pv.SMPercent = gb, copyTo(&pf.sm, p.SMUtil)
			pv.Container, pv.Model = p.Container, p.Model
		}
	}
	gpuHealthView(v, g, fig)
}

// gpuHealthView converts a GPU's health fields. A MIG instance's processes
// take their command, container and model from the GPU's own list, which
// the agent attributed. The details metrics.Decoder leaves to the caller
// (XIDs, ECC, PCIe, NVLinks, MIG) are shared; the GPU's own figures are
// copied to fig.
func gpuHealthView(v *metrics.GPUView, g *metrics.GPU, fig *gpuFigures) {
	v.PersistenceMode = copyTo(&fig.persistence, g.Persistence)
	v.DriverVersion, v.CUDAVersion, v.VBIOSVersion = g.Driver, g.CUDA, g.VBIOS
	v.ECC = g.ECC
	v.MIGMode = copyTo(&fig.migMode, g.MIGMode)
	v.SMActivePercent = copyTo(&fig.smActive, g.SMActive)
	v.SMOccupancyPercent = copyTo(&fig.smOccupancy, g.SMOccupancy)
	v.TensorActivePercent = copyTo(&fig.tensorActive, g.TensorActive)
	for _, x := range g.XIDs {
		v.XIDs = append(v.XIDs, metrics.XIDView{
			Code: x.Code, Time: time.Unix(0, x.TS).UTC(), Count: x.Count,
			GPUInstance: x.GPUInstance, ComputeInstance: x.ComputeInstance,
		})
	}
	if p := g.PCIe; p != nil {
		v.PCIe = &metrics.PCIeView{
			Gen: p.Gen, MaxGen: p.MaxGen, Width: p.Width, MaxWidth: p.MaxWidth,
			TxMBps: mbps(p.TxBps), RxMBps: mbps(p.RxBps), Replays: p.Replays, Degraded: p.Degraded,
		}
	}
	for _, l := range g.NVLinks {
		v.NVLinks = append(v.NVLinks, metrics.NVLinkView{Link: l.Link, Up: l.Up, TxMBps: mbps(l.TxBps), RxMBps: mbps(l.RxBps)})
	}
	if len(g.MIG) == 0 {
		return
	}
	byPID := make(map[uint32]metrics.ProcessView, len(v.Processes))
	for _, p := range v.Processes {
		byPID[p.PID] = p
	}
	for _, m := range g.MIG {
		mv := metrics.MIGView{
			GPUInstance: m.GPUInstance, ComputeInstance: m.ComputeInstance, UUID: m.UUID,
			VRAMUsedGB: gbp(m.MemUsed), VRAMTotalGB: gbp(m.MemTotal),
			SMActivePercent: m.SMActive, TensorActivePercent: m.TensorActive,
		}
		for _, p := range m.Processes {
			pv := byPID[p.PID] // zero when the GPU's list lacks it
			pv.PID, pv.VRAMGB = p.PID, gbp(p.MemUsed)
			mv.Processes = append(mv.Processes, pv)
		}
		v.MIG = append(v.MIG, mv)
	}
}

// hostFigures holds the figures a host view points at, allocated together
// (one allocation per host section instead of up to eleven): copies, as
// gpuFigures are.
type hostFigures struct {
	cpu, load1, load5, load15              float64
	ramUsed, ramTotal, swapUsed, swapTotal float64
	diskUsed, diskTotal                    float64
	read, write, rx, tx                    float64
	uptime                                 uint64
}

// System converts a host section. Totals of zero mean the agent could not
// read them (no real machine has no RAM or disk), so they become null.
func System(sys *metrics.System) metrics.HostView {
	if sys == nil {
		return metrics.HostView{}
	}
	return system(sys, &hostFigures{})
}

// system is System with the figures written to fig.
func system(sys *metrics.System, fig *hostFigures) metrics.HostView {
	v := metrics.HostView{
		CPUPercent:    copyTo(&fig.cpu, sys.CPUPercent),
		PerCore:       slices.Clone(sys.PerCore),
		Load1:         copyTo(&fig.load1, sys.Load1),
		Load5:         copyTo(&fig.load5, sys.Load5),
		Load15:        copyTo(&fig.load15, sys.Load15),
		DiskReadMBps:  mbpsIn(&fig.read, sys.DiskReadBps),
		DiskWriteMBps: mbpsIn(&fig.write, sys.DiskWriteBps),
		NetRxMBps:     mbpsIn(&fig.rx, sys.NetRxBps),
		NetTxMBps:     mbpsIn(&fig.tx, sys.NetTxBps),
	}
	if sys.MemTotal > 0 {
		v.RAMUsedGB, v.RAMTotalGB = gbIn(&fig.ramUsed, sys.MemUsed), gbIn(&fig.ramTotal, sys.MemTotal)
		// Swap is read with memory; a total of 0 is a machine without swap.
		v.SwapUsedGB, v.SwapTotalGB = gbIn(&fig.swapUsed, sys.SwapUsed), gbIn(&fig.swapTotal, sys.SwapTotal)
	}
	// The agent reports the mounts it was configured for (default "/"); the
	// seed's single disk figure is their sum.
	var used, total uint64
	for _, d := range sys.Disks {
		used += d.Used
		total += d.Total
	}
	if total > 0 {
		v.DiskUsedGB, v.DiskTotalGB = gbIn(&fig.diskUsed, used), gbIn(&fig.diskTotal, total)
	}
	if sys.Uptime > 0 {
		fig.uptime = sys.Uptime
		v.UptimeS = &fig.uptime
	}
	return v
}

// gbIn writes b in GB to dst and returns dst.
func gbIn(dst *float64, b uint64) *float64 {
	*dst = float64(b) / bytesPerGB
	return dst
}

// mbpsIn writes bps in MB/s to dst and returns dst; nil when bps is.
func mbpsIn(dst *float64, bps *float64) *float64 {
	if bps == nil {
		return nil
	}
	*dst = *bps / bytesPerMB
	return dst
}

// Model converts a model server's report. VRAM is what the server
// says it uses, else the sum of the GPU processes attributed to it.
func Model(s *metrics.Sample, role string, m metrics.Model, stale bool) metrics.ModelView {
	v := metrics.ModelView{
		Status:      m.Status,
		Reason:      m.Reason,
		Host:        s.Host,
		VRAMGB:      gbp(m.MemUsed),
		Model:       m.Model,
		Device:      m.Device,
		SlotsActive: m.SlotsActive,
		SlotsTotal:  m.SlotsTotal,
		ContextSize: m.ContextSize,
		Gauges:      m.Gauges,
		Extra:       m.Extra,
		Stale:       stale,
	}
	if v.Status == "" {
		v.Status = metrics.StatusUnknown
	}
	if v.VRAMGB == nil {
		var sum uint64
		found := false
		for _, g := range s.GPUs {
			for _, p := range g.Processes {
				if p.MemUsed == nil || (p.Model != role && !slices.Contains(m.PIDs, p.PID)) {
					continue
				}
				sum += *p.MemUsed
				found = true
			}
		}
		if found {
			v.VRAMGB = GB(sum)
		}
	}
	return v
}

// Figures are one sample's figures in the dashboard's units, converted
// once: what the live views show of a host and what history keeps of it.
// Boot and Seq identify the sample, so a sample delivered twice counts
// once.
type Figures struct {
	Host string
	TS   int64 // unix ns, the sample's own
	Boot string
	Seq  uint64
	// System is nil when the sample has no host section.
	System *metrics.HostView
	GPUs   []metrics.GPUView
	// ByIndex: GPUs are in index order (the agent's usual order), found
	// while converting them, so the merger never reads them back to
	// check.
	ByIndex bool
	// Models are by role ("rtdetr", "nemotron").
	Models map[string]metrics.ModelView
}

// Of converts a sample, its sections as fresh (not stale) views.
func Of(s *metrics.Sample) Figures { return OfIn(s, nil) }

// OfIn is Of with the GPU views written into gpus' memory when it has
// room for them, else into a new list: the hub reuses a list once
// nothing reads it any more (internal/hub, spares). The caller must own
// gpus: its old views are overwritten. What the views point at (their
// figures, processes) is always new, as published updates share it.
func OfIn(s *metrics.Sample, gpus []metrics.GPUView) Figures {
	f := Figures{Host: s.Host, TS: s.TS, Boot: s.Boot, Seq: s.Seq}
	if s.System != nil {
		// The view and the figures it points at in one allocation.
		h := &struct {
			v   metrics.HostView
			fig hostFigures
		}{}
		h.v = system(s.System, &h.fig)
		f.System = &h.v
	}
	if len(s.GPUs) > 0 {
		procs := 0
		for i := range s.GPUs {
			procs += len(s.GPUs[i].Processes)
		}
		a := newGPUArena(len(s.GPUs), procs)
		if n := len(s.GPUs); cap(gpus) >= n {
			// a.gpu writes only the fields a GPU has: the rest must be
			// zero.
			f.GPUs = gpus[:n]
			clear(f.GPUs)
		} else {
			f.GPUs = make([]metrics.GPUView, n)
		}
		f.ByIndex = true
		for i := range s.GPUs {
			a.gpu(&f.GPUs[i], s.Host, &s.GPUs[i], false)
			if i > 0 && s.GPUs[i].Index < s.GPUs[i-1].Index {
				f.ByIndex = false
			}
		}
	}
	if len(s.Models) > 0 {
		f.Models = make(map[string]metrics.ModelView, len(s.Models))
		for role, m := range s.Models {
			f.Models[role] = Model(s, role, m, false)
		}
	}
	return f
}

// Counts reduces an update's container list to what a chart plots; nil
// when the list is (its source has not answered). Unhealthy is the alert
// rule's count, so the chart agrees with the alert.
func Counts(cs []metrics.Container) *metrics.ContainerCounts {
	if cs == nil {
		return nil
	}
	total, bad := float64(len(cs)), 0.0
	for _, c := range cs {
		if u, _ := c.Unhealthy(); u {
			bad++
		}
	}
	return &metrics.ContainerCounts{Total: &total, Unhealthy: &bad}
}

// Totals are the fleet's figures in an update, as the fleet view's
// history keeps them: GPU figures over every GPU that reports them (the
// fleet rows' own sums, unrounded), the hosts online and the firing
// alerts by severity.
func Totals(u *metrics.Update) metrics.FleetFigures {
	var util, used, total, power, limit acc
	for i := range u.GPUs {
		g := &u.GPUs[i]
		util.add(g.Utilization)
		used.add(g.VRAMUsedGB)
		total.add(g.VRAMTotalGB)
		power.add(g.PowerWatts)
		limit.add(g.PowerLimitWatts)
	}
	online, crit, warn := 0, 0, 0
	for _, h := range u.Hosts {
		if h.Online {
			online++
		}
	}
	for _, a := range u.Alerts {
		c, w := firing(a)
		crit += c
		warn += w
	}
	n := func(v int) *float64 {
		f := float64(v)
		return &f
	}
	return metrics.FleetFigures{
		Hosts: n(len(u.Hosts)), Online: n(online), GPUs: n(len(u.GPUs)),
		UtilMean: util.raw(util.sum / float64(max(util.n, 1))), UtilMax: util.raw(util.max),
		VRAMUsed: used.raw(used.sum), VRAMTotal: total.raw(total.sum),
		Power: power.raw(power.sum), PowerLimit: limit.raw(limit.sum),
		Critical: n(crit), Warning: n(warn),
	}
}

// raw is x, or nil when a reported nothing.
func (a acc) raw(x float64) *float64 {
	if a.n == 0 {
		return nil
	}
	return &x
}
