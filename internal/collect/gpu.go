//go:build cgo

package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// initRetry is how long the GPU collector waits before trying NVML again
// after it failed to initialise: a driver being installed or loaded shows
// up within a minute, and a box without GPUs pays one dlopen a minute.
const initRetry = time.Minute

// notAvailable is NVML_VALUE_NOT_AVAILABLE (-1) as an unsigned counter.
const notAvailable = ^uint64(0)

// GPU reads every NVIDIA device through NVML. It is written against
// nvml.Interface so tests run it on go-nvml's mock servers.
type GPU struct {
	lib nvml.Interface
	log *slog.Logger
	now func() time.Time

	// mu serialises collections: NVML calls cannot be cancelled, so an
	// abandoned call may still run when the next tick starts.
	mu       sync.Mutex
	ready    bool
	tried    time.Time // last Init attempt, zero before the first
	initErr  error
	reported bool // initErr was logged; the next failures are not
	syms     symbols
	// driver and cuda are the system's versions, read once per Init.
	driver, cuda string
	// devs are the device handles and per-device state, by index, kept
	// from one collection to the next.
	devs []*devState
	// xids watches for critical XID events; nil when no device has them.
	xids *xidWatch
	// lastSeen is, per device UUID, the newest process-utilisation
	// timestamp read, so each reading covers only the last interval.
	lastSeen map[string]uint64
}

// symbols says which calls newer than the oldest supported driver the
// loaded library has: go-nvml calls a symbol the library lacks through a
// null pointer and the process dies, so these are looked up once after
// Init.
type symbols struct {
	memV2, eventReasons bool
	remap, gpm, mig     bool
	gpmMIG              bool
}

// NewGPU returns the GPU collector. NVML is initialised lazily on the first
// Collect, so an agent on a box without GPUs starts all the same.
func NewGPU(lib nvml.Interface, log *slog.Logger, now func() time.Time) *GPU {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &GPU{lib: lib, log: log, now: now, lastSeen: map[string]uint64{}}
}

// NewSystemGPU is the GPU collector on the machine's own NVML library.
// Built without cgo, it is a collector that says NVML is unavailable.
func NewSystemGPU(log *slog.Logger) Collector {
	return NewGPU(nvml.New(), log, time.Now)
}

// Name is the collector's key in Sample.Errors.
func (g *GPU) Name() string { return metrics.CollectorGPU }

// Close stops the XID watcher and shuts NVML down if it was initialised.
func (g *GPU) Close() error {
	// A wedged NVML call holds mu; exiting is then the only way out, and
	// the driver cleans up after the process.
	if !g.mu.TryLock() {
		return errors.New("NVML shutdown skipped: a collection is still running")
	}
	defer g.mu.Unlock()
	if !g.ready {
		return nil
	}
	err := g.release()
	g.ready = false
	if r := g.lib.Shutdown(); r != nvml.SUCCESS {
		return errors.Join(err, fmt.Errorf("NVML shutdown: %s", r.Error()))
	}
	return err
}

// release stops the XID watcher and drops the device handles, before a
// shutdown or when the driver went away.
func (g *GPU) release() error {
	var err error
	if g.xids != nil {
		err = g.xids.close()
		g.xids = nil
	}
	for _, st := range g.devs {
		if st != nil {
			st.free()
		}
	}
	g.devs = nil
	return err
}

// Collect fills s.GPUs with every device. A field a device answers
// ERROR_NOT_SUPPORTED for stays nil; other failures of single fields are
// returned joined, with the section still published.
func (g *GPU) Collect(ctx context.Context, s *metrics.Sample) error {
	if !g.mu.TryLock() {
		return errors.New("previous NVML collection still running")
	}
	defer g.mu.Unlock()
	if err := g.init(); err != nil {
		return err
	}

	count, r := g.lib.DeviceGetCount()
	if r != nvml.SUCCESS {
		if r == nvml.ERROR_UNINITIALIZED || r == nvml.ERROR_DRIVER_NOT_LOADED {
			// The driver went away under us: initialise again, at most
			// once a minute, as after a failed start.
			g.ready = false
			_ = g.release()
		}
		return fmt.Errorf("NVML device count: %s", r.Error())
	}
	var errs []error
	if len(g.devs) != count {
		// A device appeared or went: take every handle again and
		// register the new set for XID events.
		_ = g.release()
		g.devs = make([]*devState, count)
	}
	now := g.now()
	gpus := make([]metrics.GPU, 0, count)
	var fresh []indexed // handles taken in this collection
	for i := range count {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("gpu %d: %w", i, err))
			break
		}
		rd := &reader{index: i}
		if g.devs[i] == nil {
			dev, r := g.lib.DeviceGetHandleByIndex(i)
			if r != nvml.SUCCESS {
				errs = append(errs, fmt.Errorf("gpu %d handle: %s", i, r.Error()))
				continue
			}
			g.devs[i] = g.newDevState(rd, dev)
			fresh = append(fresh, indexed{i, dev})
		}
		rd.nope = g.devs[i].nope
		gpus = append(gpus, g.device(rd, g.devs[i], now))
		errs = append(errs, rd.errs...)
	}
	if len(fresh) > 0 {
		errs = append(errs, g.watch(fresh))
	}
	g.attachXIDs(gpus)
	s.GPUs = gpus
	return errors.Join(errs...)
}

// watch registers the devices whose handles were just taken for XID
// events, starting the watcher on the first.
func (g *GPU) watch(devs []indexed) error {
	if g.xids != nil {
		_, err := registerXIDs(g.xids.set, devs)
		return err
	}
	w, err := watchXIDs(g.lib, devs, g.log, g.now)
	g.xids = w
	return err
}

// attachXIDs moves the XIDs seen since the last collection onto their GPU.
func (g *GPU) attachXIDs(gpus []metrics.GPU) {
	if g.xids == nil {
		return
	}
	byUUID := make(map[string]int, len(gpus))
	for i, gpu := range gpus {
		if gpu.UUID != "" {
			byUUID[gpu.UUID] = i
		}
	}
	got, dropped := g.xids.take(byUUID)
	for uuid, xs := range got {
		gpus[byUUID[uuid]].XIDs = xs
	}
	if dropped > 0 {
		g.log.Warn("XID events dropped: too many distinct XIDs between two samples", "events", dropped)
	}
}

// init initialises NVML on the first call and then at most once per
// initRetry while it keeps failing; the failure is logged once, and every
// collection in between returns it so each sample says why it has no GPUs.
func (g *GPU) init() error {
	if g.ready {
		return nil
	}
	now := g.now()
	if !g.tried.IsZero() && now.Sub(g.tried) < initRetry {
		return g.initErr
	}
	g.tried = now
	if r := g.lib.Init(); r != nvml.SUCCESS {
		// %w keeps the Return, so callers can tell "no library" from
		// "no driver" with errors.Is.
		g.initErr = fmt.Errorf("NVML unavailable: %w", r)
		if !g.reported {
			g.log.Warn("no GPU metrics; retrying NVML every minute", "err", g.initErr)
			g.reported = true
		}
		return g.initErr
	}
	g.ready = true
	ext := g.lib.Extensions()
	has := func(sym string) bool { return ext.LookupSymbol(sym) == nil }
	g.syms = symbols{
		memV2:        has("nvmlDeviceGetMemoryInfo_v2"),             // R510
		eventReasons: has("nvmlDeviceGetCurrentClocksEventReasons"), // R535
		remap:        has("nvmlDeviceGetRemappedRows"),              // R460
		gpm:          has("nvmlGpmMetricsGet") && has("nvmlGpmQueryDeviceSupport"),
		mig:          has("nvmlDeviceGetMigDeviceHandleByIndex"), // R450
		gpmMIG:       has("nvmlGpmMigSampleGet"),
	}
	g.driver, g.cuda = "", ""
	if v, r := g.lib.SystemGetDriverVersion(); r == nvml.SUCCESS {
		g.driver = v
	}
	if v, r := g.lib.SystemGetCudaDriverVersion(); r == nvml.SUCCESS && v > 0 {
		g.cuda = fmt.Sprintf("%d.%d", v/1000, v%1000/10)
	}
	if g.reported {
		g.log.Info("NVML available again")
		g.reported = false
	}
	g.initErr = nil
	return nil
}

// reader reads one device's fields and remembers the failures that are
// not "not supported".
type reader struct {
	index int
	errs  []error
	// nope is the device's set of fields it answered NOT_SUPPORTED to
	// (devState.nope); nil while the device's state is being made.
	nope map[string]bool
}

// ok reports whether a call succeeded. ERROR_NOT_SUPPORTED is the device
// saying it has no such sensor: the field stays absent without an error,
// and read does not ask again.
func (rd *reader) ok(field string, r nvml.Return) bool {
	switch r {
	case nvml.SUCCESS:
		return true
	case nvml.ERROR_NOT_SUPPORTED:
		if rd.nope != nil {
			rd.nope[field] = true
		}
		return false
	}
	rd.errs = append(rd.errs, fmt.Errorf("gpu %d %s: %s", rd.index, field, r.Error()))
	return false
}

// read makes call unless the device answered NOT_SUPPORTED for field
// before: that answer holds while NVML stays initialised, and costs as
// much as a reading (on an H200, 0.11–0.16 ms of CPU to say it has no
// fan, BenchmarkNVMLCalls), every collection of every GPU.
func read[T any](rd *reader, field string, call func() (T, nvml.Return)) (v T, ok bool) {
	if rd.nope[field] {
		return v, false
	}
	v, r := call()
	return v, rd.ok(field, r)
}

func (g *GPU) device(rd *reader, st *devState, now time.Time) metrics.GPU {
	dev := st.dev
	out := metrics.GPU{Index: rd.index, UUID: st.uuid, Name: st.name}
	if u, ok := read(rd, "utilization", dev.GetUtilizationRates); ok {
		out.Util = ptrTo(float64(u.Gpu))
		out.MemUtil = ptrTo(float64(u.Memory))
	}
	// The v2 call leaves the driver's reserved memory out of "used"; drivers
	// before R510 lack it and answer with the v1 figures.
	v2 := false
	if g.syms.memV2 {
		if m, r := dev.GetMemoryInfo_v2(); r == nvml.SUCCESS {
			out.MemUsed, out.MemTotal = ptrTo(m.Used), ptrTo(m.Total)
			v2 = true
		}
	}
	if !v2 {
		if m, ok := read(rd, "memory", dev.GetMemoryInfo); ok {
			out.MemUsed, out.MemTotal = ptrTo(m.Used), ptrTo(m.Total)
		}
	}
	if t, ok := read(rd, "temperature", func() (uint32, nvml.Return) { return dev.GetTemperature(nvml.TEMPERATURE_GPU) }); ok {
		out.Temp = ptrTo(float64(t))
	}
	if mw, ok := read(rd, "power", dev.GetPowerUsage); ok {
		out.Power = ptrTo(float64(mw) / 1000)
	}
	if mw, ok := read(rd, "power limit", dev.GetEnforcedPowerLimit); ok {
		out.PowerLimit = ptrTo(float64(mw) / 1000)
	}
	if mhz, ok := read(rd, "sm clock", func() (uint32, nvml.Return) { return dev.GetClockInfo(nvml.CLOCK_SM) }); ok {
		out.SMClock = ptrTo(mhz)
	}
	if mhz, ok := read(rd, "memory clock", func() (uint32, nvml.Return) { return dev.GetClockInfo(nvml.CLOCK_MEM) }); ok {
		out.MemClock = ptrTo(mhz)
	}
	if pct, ok := read(rd, "fan", dev.GetFanSpeed); ok {
		out.Fan = ptrTo(float64(pct))
	}
	if ps, ok := read(rd, "pstate", dev.GetPerformanceState); ok && ps != nvml.PSTATE_UNKNOWN {
		out.PState = ptrTo(int(ps))
	}
	// Clock-event reasons are the throttle reasons renamed in R535; older
	// drivers have only the old call.
	mask, r := uint64(0), nvml.ERROR_FUNCTION_NOT_FOUND
	if g.syms.eventReasons {
		mask, r = dev.GetCurrentClocksEventReasons()
	}
	if r != nvml.SUCCESS {
		mask, r = dev.GetCurrentClocksThrottleReasons()
	}
	if rd.ok("clock event reasons", r) {
		out.ThrottleMask = ptrTo(mask)
		out.Throttle = throttleReasons(mask)
	}
	if mj, ok := read(rd, "energy", dev.GetTotalEnergyConsumption); ok {
		out.Energy = ptrTo(float64(mj) / 1000)
	}
	out.Processes = g.processes(rd, dev, out.UUID)
	g.health(rd, st, &out, now)
	return out
}

// processes lists the device's compute processes with their memory and,
// where the device samples it, their SM share since the last reading. A
// nil result means the list could not be read; empty means no process.
func (g *GPU) processes(rd *reader, dev nvml.Device, uuid string) []metrics.Process {
	infos, ok := read(rd, "processes", dev.GetComputeRunningProcesses)
	if !ok {
		return nil
	}
	procs := make([]metrics.Process, 0, len(infos))
	at := make(map[uint32]int, len(infos))
	for _, p := range infos {
		var used *uint64
		// NVML answers "not available" for a process in another
		// container's namespace or under WDDM.
		if p.UsedGpuMemory != notAvailable {
			used = ptrTo(p.UsedGpuMemory)
		}
		// Under MIG a process shows once per instance it uses; the wire
		// has one entry per process on the device.
		if j, dup := at[p.Pid]; dup {
			if prev := procs[j].MemUsed; prev != nil && used != nil {
				*prev += *used
			} else if used != nil {
				procs[j].MemUsed = used
			}
			continue
		}
		at[p.Pid] = len(procs)
		procs = append(procs, metrics.Process{PID: p.Pid, MemUsed: used})
	}
	if len(procs) == 0 {
		return procs
	}

	key := uuid
	if key == "" {
		key = fmt.Sprint("index:", rd.index)
	}
	prev := g.lastSeen[key]
	if rd.nope["process utilization"] {
		return procs
	}
	samples, r := dev.GetProcessUtilization(prev)
	// ERROR_NOT_FOUND: no sample newer than the last reading.
	if r == nvml.ERROR_NOT_FOUND || !rd.ok("process utilization", r) {
		return procs
	}
	newest := make(map[uint32]nvml.ProcessUtilizationSample, len(samples))
	last := prev
	for _, smp := range samples {
		if smp.TimeStamp <= prev {
			continue
		}
		if prev, ok := newest[smp.Pid]; !ok || smp.TimeStamp > prev.TimeStamp {
			newest[smp.Pid] = smp
		}
		last = max(last, smp.TimeStamp)
	}
	g.lastSeen[key] = last
	for i := range procs {
		if smp, ok := newest[procs[i].PID]; ok {
			procs[i].SMUtil = ptrTo(float64(smp.SmUtil))
		}
	}
	return procs
}

// throttleReasons names the bits set in a clock-event reason mask; bits
// newer than this code are named by their value.
func throttleReasons(mask uint64) []string {
	known := [...]struct {
		bit  uint64
		name string
	}{
		{nvml.ClocksEventReasonGpuIdle, "gpu_idle"},
		{nvml.ClocksEventReasonApplicationsClocksSetting, "applications_clocks_setting"},
		{nvml.ClocksEventReasonSwPowerCap, "sw_power_cap"},
		{nvml.ClocksThrottleReasonHwSlowdown, "hw_slowdown"},
		{nvml.ClocksEventReasonSyncBoost, "sync_boost"},
		{nvml.ClocksEventReasonSwThermalSlowdown, "sw_thermal_slowdown"},
		{nvml.ClocksThrottleReasonHwThermalSlowdown, "hw_thermal_slowdown"},
		{nvml.ClocksThrottleReasonHwPowerBrakeSlowdown, "hw_power_brake"},
		{nvml.ClocksEventReasonDisplayClockSetting, "display_clocks_setting"},
		{nvml.ClocksEventReasonBoardLimit, "board_limit"},
		{nvml.ClocksEventReasonReliability, "reliability"},
	}
	var names []string
	for _, t := range known {
		if mask&t.bit != 0 {
			names = append(names, t.name)
			mask &^= t.bit
		}
	}
	for bit := uint64(1); mask != 0; bit <<= 1 {
		if mask&bit != 0 {
			names = append(names, fmt.Sprintf("0x%x", bit))
			mask &^= bit
		}
	}
	return names
}

func ptrTo[T any](v T) *T { return &v }
