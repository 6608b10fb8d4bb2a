package hub

import (
	"fmt"
	"maps"
	"slices"
	"strings"
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

// SourceNone is Update.Sources' value for a section nothing filled.
const SourceNone = "none"

// staleAfter is how many of its intervals a host may stay silent before it
// is offline and its sections are stale.
const staleAfter = 3

func gb(b uint64) *float64 {
	v := float64(b) / bytesPerGB
	return &v
}

func gbp(b *uint64) *float64 {
	if b == nil {
		return nil
	}
	return gb(*b)
}

func mbps(bps *float64) *float64 {
	if bps == nil {
		return nil
	}
	v := *bps / bytesPerMB
	return &v
}

// sampleInterval is the interval the agent declares, else the hub's.
func sampleInterval(s *metrics.Sample, fallback time.Duration) time.Duration {
	if s.Interval > 0 {
		return time.Duration(s.Interval)
	}
	return fallback
}

// online reports whether a host's newest sample is recent enough: it is
// judged by the sample's own timestamp, so a backlog replayed after an
// outage does not make a host look live.
func online(now time.Time, s *metrics.Sample, fallback time.Duration) bool {
	return now.Sub(time.Unix(0, s.TS)) <= staleAfter*sampleInterval(s, fallback)
}

// merge builds the agent-fed part of an update from the newest sample of
// each host. It is pure: the loop adds latency, sources and alerts.
func merge(now time.Time, newest map[string]*metrics.Sample, interval time.Duration) metrics.Update {
	u := metrics.Update{
		Type:       metrics.TypeUpdate,
		Timestamp:  now.UTC(),
		Containers: []metrics.Container{},
		Alerts:     []metrics.Alert{},
		GPUs:       []metrics.GPUView{},
		Hosts:      []metrics.HostStatus{},
		Sources:    map[string]string{},
		Stale:      map[string]bool{},
		Errors:     map[string]string{},
		Models:     []metrics.ModelEntry{},
	}
	hosts := make([]string, 0, len(newest))
	gpus := 0
	for h, s := range newest {
		hosts = append(hosts, h)
		gpus += len(s.GPUs)
	}
	slices.Sort(hosts)
	// Sized once: grown by append, a fleet's GPU views (large structs) were
	// copied over and over, most of merge's cost at 200 hosts.
	u.GPUs = make([]metrics.GPUView, 0, gpus)
	u.Hosts = make([]metrics.HostStatus, 0, len(newest))

	// Online hosts first, each group by name: the seed's single "gpu",
	// "host" and model sections come from the first that has them.
	on, off := make([]*metrics.Sample, 0, len(hosts)), []*metrics.Sample(nil)
	for _, h := range hosts {
		s := newest[h]
		if online(now, s, interval) {
			on = append(on, s)
		} else {
			off = append(off, s)
		}
	}
	// ordered[:len(on)] are the online hosts.
	ordered := append(on, off...)

	for i, s := range ordered {
		isOn := i < len(on)
		st := metrics.HostStatus{
			Host:     s.Host,
			Online:   isOn,
			LastSeen: time.Unix(0, s.TS).UTC(),
			Boot:     s.Boot,
			Seq:      s.Seq,
			System:   hostView(s.System),
			GPUCount: len(s.GPUs),
			// A copy: patches and alert rules may touch the update, never
			// the stored sample.
			Errors: maps.Clone(s.Errors),
		}
		if len(s.Models) > 0 {
			st.Models = map[string]metrics.ModelView{}
			for role, m := range s.Models {
				st.Models[role] = modelView(s, role, m, !isOn)
			}
		}
		u.Hosts = append(u.Hosts, st)
		for _, g := range s.GPUs {
			u.GPUs = append(u.GPUs, gpuView(s.Host, g, !isOn))
		}
	}
	// u.Hosts follows the online-first order; the list reads better by name.
	slices.SortFunc(u.Hosts, func(a, b metrics.HostStatus) int { return strings.Compare(a.Host, b.Host) })
	slices.SortFunc(u.GPUs, func(a, b metrics.GPUView) int {
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return *a.Index - *b.Index
	})

	mergeGPU(&u, ordered, len(on))
	mergeHost(&u, ordered, len(on))
	u.AIModels.RTDETR = mergeModel(&u, ordered, len(on), metrics.RoleRTDETR, metrics.SectionRTDETR)
	u.AIModels.Nemotron = mergeModel(&u, ordered, len(on), metrics.RoleNemotron, metrics.SectionNemotron)
	u.Models = modelEntries(ordered, len(on))
	return u
}

// The merge functions fill a section from the first host of ordered that
// has it; the first nOn hosts are online.
func mergeGPU(u *metrics.Update, ordered []*metrics.Sample, nOn int) {
	const sec = metrics.SectionGPU
	for i, s := range ordered {
		if len(s.GPUs) == 0 {
			continue
		}
		stale := i >= nOn
		u.GPU = gpuView(s.Host, s.GPUs[0], stale)
		u.Sources[sec] = "agent:" + s.Host
		u.Stale[sec] = stale
		return
	}
	u.Sources[sec] = SourceNone
	u.Stale[sec] = false
	u.Errors[sec] = sectionError(ordered, metrics.CollectorGPU, "no GPU reported")
}

func mergeHost(u *metrics.Update, ordered []*metrics.Sample, nOn int) {
	const sec = metrics.SectionHost
	for i, s := range ordered {
		if s.System == nil {
			continue
		}
		stale := i >= nOn
		u.Host = hostView(s.System)
		u.Sources[sec] = "agent:" + s.Host
		u.Stale[sec] = stale
		return
	}
	u.Sources[sec] = SourceNone
	u.Stale[sec] = false
	u.Errors[sec] = sectionError(ordered, metrics.CollectorHost, "no host section reported")
}

// sectionError explains an empty section with the first agent's own error
// for that collector, so the UI can say "NVML unavailable: ..." verbatim.
func sectionError(ordered []*metrics.Sample, collector, fallback string) string {
	if len(ordered) == 0 {
		return "no agent reporting"
	}
	for _, s := range ordered {
		if e := s.Errors[collector]; e != "" {
			if len(ordered) > 1 {
				return s.Host + ": " + e
			}
			return e
		}
	}
	return fallback
}

func mergeModel(u *metrics.Update, ordered []*metrics.Sample, nOn int, role, sec string) metrics.ModelView {
	for i, s := range ordered {
		m, ok := s.Models[role]
		if !ok {
			continue
		}
		stale := i >= nOn
		u.Sources[sec] = "agent:" + s.Host
		u.Stale[sec] = stale
		if m.Reason != "" && m.Status != metrics.StatusHealthy {
			u.Errors[sec] = m.Reason
		}
		return modelView(s, role, m, stale)
	}
	u.Sources[sec] = SourceNone
	u.Stale[sec] = false
	// An agent that failed to read the model without reporting a section
	// still says why in its errors.
	for _, s := range ordered[:nOn] {
		if e := s.Errors[role]; e != "" {
			u.Errors[sec] = e
			return metrics.ModelView{Status: metrics.StatusUnreachable, Reason: e, Host: s.Host}
		}
	}
	u.Errors[sec] = fmt.Sprintf("no agent reports %s", role)
	return metrics.ModelView{Status: metrics.StatusUnconfigured}
}

// gpuFigures holds the figures a GPU view points at, allocated together
// (one allocation per GPU per update instead of four).
type gpuFigures struct {
	index       int
	name        string
	used, total float64
}

func gpuView(host string, g metrics.GPU, stale bool) metrics.GPUView {
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

// hostView converts a host section. Totals of zero mean the agent could not
// read them (no real machine has no RAM or disk), so they become null.
func hostView(sys *metrics.System) metrics.HostView {
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
		v.RAMUsedGB, v.RAMTotalGB = gb(sys.MemUsed), gb(sys.MemTotal)
		// Swap is read with memory; a total of 0 is a machine without swap.
		v.SwapUsedGB, v.SwapTotalGB = gb(sys.SwapUsed), gb(sys.SwapTotal)
	}
	// The agent reports the mounts it was configured for (default "/"); the
	// seed's single disk figure is their sum.
	var used, total uint64
	for _, d := range sys.Disks {
		used += d.Used
		total += d.Total
	}
	if total > 0 {
		v.DiskUsedGB, v.DiskTotalGB = gb(used), gb(total)
	}
	if sys.Uptime > 0 {
		up := sys.Uptime
		v.UptimeS = &up
	}
	return v
}

// modelView converts a model server's report. VRAM is what the server
// says it uses, else the sum of the GPU processes attributed to it.
func modelView(s *metrics.Sample, role string, m metrics.Model, stale bool) metrics.ModelView {
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
			v.VRAMGB = gb(sum)
		}
	}
	return v
}
