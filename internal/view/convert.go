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

// gpuFigures holds the figures a GPU view points at, allocated together
// (one allocation per GPU per update instead of four).
type gpuFigures struct {
	index       int
	name        string
	used, total float64
}

// GPU converts one GPU of a sample to the dashboard's units; the live views
// and history both read it from here.
func GPU(host string, g metrics.GPU, stale bool) metrics.GPUView {
	fig := &gpuFigures{index: g.Index, name: g.Name}
	v := metrics.GPUView{
		Host:              host,
		Index:             &fig.index,
		UUID:              g.UUID,
		Utilization:       g.Util,
		MemoryUtilization: g.MemUtil,
		Temperature:       g.Temp,
		PowerWatts:        g.Power,
		PowerLimitWatts:   g.PowerLimit,
		SMClockMHz:        g.SMClock,
		MemClockMHz:       g.MemClock,
		FanPercent:        g.Fan,
		PState:            g.PState,
		Throttle:          g.Throttle,
		ThrottleMask:      g.ThrottleMask,
		EnergyJoules:      g.Energy,
		Stale:             stale,
	}
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
	var vram []float64
	if len(g.Processes) > 0 {
		v.Processes = make([]metrics.ProcessView, 0, len(g.Processes))
		vram = make([]float64, len(g.Processes))
	}
	for i, p := range g.Processes {
		var gb *float64
		if p.MemUsed != nil {
			vram[i] = float64(*p.MemUsed) / bytesPerGB
			gb = &vram[i]
		}
		v.Processes = append(v.Processes, metrics.ProcessView{
			PID:       p.PID,
			Name:      p.Name,
			Command:   p.Command,
			VRAMGB:    gb,
			SMPercent: p.SMUtil,
			Container: p.Container,
			Model:     p.Model,
		})
	}
	gpuHealthView(&v, g)
	return v
}

// gpuHealthView converts a GPU's health fields. A MIG instance's processes
// take their command, container and model from the GPU's own list, which
// the agent attributed.
func gpuHealthView(v *metrics.GPUView, g metrics.GPU) {
	v.PersistenceMode = g.Persistence
	v.DriverVersion, v.CUDAVersion, v.VBIOSVersion = g.Driver, g.CUDA, g.VBIOS
	v.ECC = g.ECC
	v.MIGMode = g.MIGMode
	v.SMActivePercent, v.SMOccupancyPercent, v.TensorActivePercent = g.SMActive, g.SMOccupancy, g.TensorActive
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
		}
		for _, p := range m.Processes {
			pv := byPID[p.PID] // zero when the GPU's list lacks it
			pv.PID, pv.VRAMGB = p.PID, gbp(p.MemUsed)
			mv.Processes = append(mv.Processes, pv)
		}
		v.MIG = append(v.MIG, mv)
	}
}

// System converts a host section. Totals of zero mean the agent could not
// read them (no real machine has no RAM or disk), so they become null.
func System(sys *metrics.System) metrics.HostView {
	if sys == nil {
		return metrics.HostView{}
	}
	v := metrics.HostView{
		CPUPercent:    sys.CPUPercent,
		PerCore:       sys.PerCore,
		Load1:         sys.Load1,
		Load5:         sys.Load5,
		Load15:        sys.Load15,
		DiskReadMBps:  mbps(sys.DiskReadBps),
		DiskWriteMBps: mbps(sys.DiskWriteBps),
		NetRxMBps:     mbps(sys.NetRxBps),
		NetTxMBps:     mbps(sys.NetTxBps),
	}
	if sys.MemTotal > 0 {
		v.RAMUsedGB, v.RAMTotalGB = GB(sys.MemUsed), GB(sys.MemTotal)
		// Swap is read with memory; a total of 0 is a machine without swap.
		v.SwapUsedGB, v.SwapTotalGB = GB(sys.SwapUsed), GB(sys.SwapTotal)
	}
	// The agent reports the mounts it was configured for (default "/"); the
	// seed's single disk figure is their sum.
	var used, total uint64
	for _, d := range sys.Disks {
		used += d.Used
		total += d.Total
	}
	if total > 0 {
		v.DiskUsedGB, v.DiskTotalGB = GB(used), GB(total)
	}
	if sys.Uptime > 0 {
		up := sys.Uptime
		v.UptimeS = &up
	}
	return v
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
