//go:build cgo

package collect

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// slowEvery is how often the fields that change only with an operator's
// action or a rare error (persistence, maximum link, aggregate ECC, page
// retirement and row remapping, MIG mode) are read again.
const slowEvery = time.Minute

// busyForLink is the utilization from which a PCIe link below its maximum
// generation counts as degraded: an idle GPU lowers its link speed to save
// power, and goes back to the maximum under load.
const busyForLink = 30.0

// devState is what the collector keeps of one device between
// collections: its handle, what never changes while the driver is loaded,
// the slow fields of the last minute, and the counters of the last
// collection that rates are computed from.
type devState struct {
	dev   nvml.Device
	uuid  string
	name  string
	vbios string
	links int // NVLinks the device has

	slowAt time.Time
	slow   slowFields

	fields   []nvml.FieldValue // reused field-value request
	slowFV   []nvml.FieldValue // the same, of the slow fields
	countAt  time.Time
	counters []uint64 // previous values of fields, valid where seen
	seen     []bool

	gpm *gpmState // nil when the driver or the device has no GPM

	// nope holds the fields the device answered NOT_SUPPORTED to, which
	// are not asked for again (see read).
	nope map[string]bool
}

// gpmState is the GPM sample buffers of a device that has GPM: one pair
// for the whole GPU, or under MIG one per GPU instance, since there the
// device's samples do not tell the instances apart. Buffers are
// allocated on first use and kept, so a collection allocates none.
type gpmState struct {
	req   *nvml.GpmMetricsGetType // reused: its metrics array is 20 KB
	whole gpmPair
	inst  map[int]*gpmPair // by GPU instance id
}

// gpmPair is the two GPM samples of a GPU or GPU instance: the previous
// collection's and the one taken now, swapped after each.
type gpmPair struct {
	prev, cur nvml.GpmSample
	primed    bool // prev holds a sample
	off       bool // refused: no more samples until NVML restarts
}

type slowFields struct {
	persistence       *bool
	maxGen, maxWidth  *int
	eccOn             *bool
	aggCorr, aggUnc   *uint64
	retSBE, retDBE    *uint64
	retPending        *bool
	remapC, remapU    *uint64
	remapP, remapFail *bool
	migMode           *bool
	migMax            int
	replays           *uint64
	linkUp            []*bool // by link
}

// Field-value positions in devState.fields, read every collection; NVLink
// fields follow, two per link (TX, RX). A field costs the driver about as
// much as a call (0.10–0.15 ms of CPU each on an H200, whatever else the
// request holds: BenchmarkNVMLCalls), so what changes slowly is in
// devState.slowFV, read once a minute: the PCIe replay counter and, after
// it, each link's state.
const (
	fvPCIeTx = iota
	fvPCIeRx
	fvLinks

	sfReplay = 0
	sfLinks  = 1
)

// newDevState reads what stays fixed while the driver is loaded: the
// UUID, name, VBIOS, the number of NVLinks and whether GPM works. Its failures
// are reported by the collection's reader.
func (g *GPU) newDevState(rd *reader, dev nvml.Device) *devState {
	st := &devState{dev: dev, nope: map[string]bool{}}
	if uuid, r := dev.GetUUID(); rd.ok("uuid", r) {
		st.uuid = uuid
	}
	if name, r := dev.GetName(); rd.ok("name", r) {
		st.name = name
	}
	if v, r := dev.GetVbiosVersion(); rd.ok("vbios", r) {
		st.vbios = v
	}
	// A device answers for each link it has and INVALID_ARGUMENT past
	// the last; one without NVLink answers NOT_SUPPORTED at once.
	for l := range nvml.NVLINK_MAX_LINKS {
		if _, r := dev.GetNvLinkState(l); r != nvml.SUCCESS {
			break
		}
		st.links++
	}
	st.fields = make([]nvml.FieldValue, fvLinks+2*st.links)
	st.fields[fvPCIeTx].FieldId = nvml.FI_DEV_PCIE_COUNT_TX_BYTES
	st.fields[fvPCIeRx].FieldId = nvml.FI_DEV_PCIE_COUNT_RX_BYTES
	st.slowFV = make([]nvml.FieldValue, sfLinks+st.links)
	st.slowFV[sfReplay].FieldId = nvml.FI_DEV_PCIE_REPLAY_COUNTER
	for l := range st.links {
		st.fields[fvLinks+2*l] = nvml.FieldValue{FieldId: nvml.FI_DEV_NVLINK_THROUGHPUT_DATA_TX, ScopeId: uint32(l)}
		st.fields[fvLinks+2*l+1] = nvml.FieldValue{FieldId: nvml.FI_DEV_NVLINK_THROUGHPUT_DATA_RX, ScopeId: uint32(l)}
		st.slowFV[sfLinks+l] = nvml.FieldValue{FieldId: nvml.FI_DEV_NVLINK_GET_STATE, ScopeId: uint32(l)}
	}
	st.counters = make([]uint64, len(st.fields))
	st.seen = make([]bool, len(st.fields))

	if g.syms.gpm {
		if sup, r := dev.GpmQueryDeviceSupport(); rd.ok("gpm support", r) && sup.IsSupportedDevice != 0 {
			st.gpm = &gpmState{req: &nvml.GpmMetricsGetType{}, inst: map[int]*gpmPair{}}
		}
	}
	return st
}

func freeSample(s nvml.GpmSample, r nvml.Return) {
	if r == nvml.SUCCESS && s != nil {
		s.Free()
	}
}

// free releases the device's GPM samples.
func (st *devState) free() {
	if st.gpm == nil {
		return
	}
	st.gpm.whole.free()
	st.gpm.freeInstances(nil)
}

// free releases the pair's samples; the next sample starts it again
// unless it is off.
func (p *gpmPair) free() {
	if p.prev != nil {
		p.prev.Free()
		p.cur.Free()
	}
	p.prev, p.cur, p.primed = nil, nil, false
}

// freeInstances releases the samples of the GPU instances not in keep.
func (gs *gpmState) freeInstances(keep []metrics.MIGInstance) {
	for gi, p := range gs.inst {
		if !slices.ContainsFunc(keep, func(m metrics.MIGInstance) bool { return int(m.GPUInstance) == gi }) {
			p.free()
			delete(gs.inst, gi)
		}
	}
}

// readSlow refreshes the slow fields once per slowEvery.
func (g *GPU) readSlow(rd *reader, st *devState, now time.Time) {
	if !st.slowAt.IsZero() && now.Sub(st.slowAt) < slowEvery {
		return
	}
	st.slowAt = now
	dev := st.dev
	var s slowFields
	if pm, r := dev.GetPersistenceMode(); rd.ok("persistence mode", r) {
		s.persistence = ptrTo(pm == nvml.FEATURE_ENABLED)
	}
	if v, r := dev.GetMaxPcieLinkGeneration(); rd.ok("max pcie generation", r) {
		s.maxGen = ptrTo(v)
	}
	if v, r := dev.GetMaxPcieLinkWidth(); rd.ok("max pcie width", r) {
		s.maxWidth = ptrTo(v)
	}
	if cur, _, r := dev.GetEccMode(); rd.ok("ecc mode", r) {
		s.eccOn = ptrTo(cur == nvml.FEATURE_ENABLED)
	}
	if s.eccOn != nil && *s.eccOn {
		if v, r := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.AGGREGATE_ECC); rd.ok("ecc aggregate corrected", r) {
			s.aggCorr = ptrTo(v)
		}
		if v, r := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.AGGREGATE_ECC); rd.ok("ecc aggregate uncorrected", r) {
			s.aggUnc = ptrTo(v)
		}
		// Pages are retired before Ampere, rows remapped from Ampere on;
		// each answers NOT_SUPPORTED on the other generation.
		if p, r := dev.GetRetiredPages(nvml.PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS); rd.ok("retired pages sbe", r) {
			s.retSBE = ptrTo(uint64(len(p)))
		}
		if p, r := dev.GetRetiredPages(nvml.PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR); rd.ok("retired pages dbe", r) {
			s.retDBE = ptrTo(uint64(len(p)))
		}
		if p, r := dev.GetRetiredPagesPendingStatus(); rd.ok("retired pages pending", r) {
			s.retPending = ptrTo(p == nvml.FEATURE_ENABLED)
		}
		if g.syms.remap {
			if c, u, pending, failed, r := dev.GetRemappedRows(); rd.ok("remapped rows", r) {
				s.remapC, s.remapU = ptrTo(uint64(c)), ptrTo(uint64(u))
				s.remapP, s.remapFail = ptrTo(pending), ptrTo(failed)
			}
		}
	}
	clearFields(st.slowFV)
	if rd.ok("slow field values", dev.GetFieldValues(st.slowFV)) {
		if v, ok := fieldUint(st.slowFV[sfReplay]); ok {
			s.replays = &v
		}
		s.linkUp = make([]*bool, st.links)
		for l := range s.linkUp {
			if v, ok := fieldUint(st.slowFV[sfLinks+l]); ok {
				s.linkUp[l] = ptrTo(v == uint64(nvml.FEATURE_ENABLED))
			}
		}
	}
	if g.syms.mig {
		if cur, _, r := dev.GetMigMode(); rd.ok("mig mode", r) {
			s.migMode = ptrTo(cur == nvml.DEVICE_MIG_ENABLE)
			if cur == nvml.DEVICE_MIG_ENABLE {
				if n, r := dev.GetMaxMigDeviceCount(); rd.ok("mig device count", r) {
					s.migMax = n
				}
			}
		}
	}
	st.slow = s
}

// health fills the health fields of out; the slow ones come from the last
// minute's reading.
func (g *GPU) health(rd *reader, st *devState, out *metrics.GPU, now time.Time) {
	g.readSlow(rd, st, now)
	s := &st.slow
	dev := st.dev
	out.Persistence = s.persistence
	out.Driver, out.CUDA, out.VBIOS = g.driver, g.cuda, st.vbios
	out.MIGMode = s.migMode

	if s.eccOn != nil {
		e := &metrics.ECC{
			Enabled:            s.eccOn,
			AggregateCorrected: s.aggCorr, AggregateUncorrected: s.aggUnc,
			RetiredSBE: s.retSBE, RetiredDBE: s.retDBE, RetiredPending: s.retPending,
			RemappedCorrectable: s.remapC, RemappedUncorrectable: s.remapU,
			RemapPending: s.remapP, RemapFailure: s.remapFail,
		}
		if *s.eccOn {
			if v, ok := read(rd, "ecc volatile corrected", func() (uint64, nvml.Return) {
				return dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.VOLATILE_ECC)
			}); ok {
				e.VolatileCorrected = ptrTo(v)
			}
			if v, ok := read(rd, "ecc volatile uncorrected", func() (uint64, nvml.Return) {
				return dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC)
			}); ok {
				e.VolatileUncorrected = ptrTo(v)
			}
		}
		out.ECC = e
	}

	p := &metrics.PCIe{MaxGen: s.maxGen, MaxWidth: s.maxWidth}
	if v, ok := read(rd, "pcie generation", dev.GetCurrPcieLinkGeneration); ok {
		p.Gen = ptrTo(v)
	}
	if v, ok := read(rd, "pcie width", dev.GetCurrPcieLinkWidth); ok {
		p.Width = ptrTo(v)
	}
	g.counters(rd, st, p, out, now)
	if p.Width != nil && p.MaxWidth != nil || p.Gen != nil && p.MaxGen != nil && out.Util != nil {
		narrow := p.Width != nil && p.MaxWidth != nil && *p.Width < *p.MaxWidth
		slow := p.Gen != nil && p.MaxGen != nil && out.Util != nil && *out.Util >= busyForLink && *p.Gen < *p.MaxGen
		p.Degraded = ptrTo(narrow || slow)
	}
	if *p != (metrics.PCIe{}) {
		out.PCIe = p
	}

	// Under MIG each GPU instance has its GPM samples and the whole GPU
	// none; without MIG the other way round.
	if s.migMode != nil && *s.migMode {
		out.MIG = g.migInstances(rd, st)
	} else {
		g.gpm(rd, st, out)
	}
}

// counters reads the PCIe and NVLink counters in one call and turns them
// into rates over the time since the previous collection.
func (g *GPU) counters(rd *reader, st *devState, p *metrics.PCIe, out *metrics.GPU, now time.Time) {
	clearFields(st.fields)
	if !rd.ok("field values", st.dev.GetFieldValues(st.fields)) {
		return
	}
	dt := now.Sub(st.countAt).Seconds()
	primed := !st.countAt.IsZero() && dt > 0
	st.countAt = now
	// The rates point into one array, so a GPU with 18 NVLinks costs one
	// allocation for them rather than 38.
	rates := make([]float64, len(st.fields))
	// rate reads field i as a counter of unit bytes.
	rate := func(i int, unit float64) *float64 {
		v, ok := fieldUint(st.fields[i])
		if !ok {
			st.seen[i] = false
			return nil
		}
		prev, had := st.counters[i], st.seen[i]
		st.counters[i], st.seen[i] = v, true
		if !primed || !had || v < prev {
			return nil
		}
		rates[i] = float64(v-prev) * unit / dt
		return &rates[i]
	}
	p.TxBps = rate(fvPCIeTx, 1)
	p.RxBps = rate(fvPCIeRx, 1)
	p.Replays = st.slow.replays
	if st.links == 0 {
		return
	}
	links := make([]metrics.NVLink, st.links)
	for l := range links {
		base := fvLinks + 2*l
		links[l].Link = l
		if l < len(st.slow.linkUp) {
			links[l].Up = st.slow.linkUp[l]
		}
		// NVLink throughput counters count KiB.
		links[l].TxBps = rate(base, 1024)
		links[l].RxBps = rate(base+1, 1024)
	}
	out.NVLinks = links
}

// clearFields readies a field-value request to be sent again.
func clearFields(fs []nvml.FieldValue) {
	for i := range fs {
		fs[i].NvmlReturn = 0
		fs[i].Value = [8]byte{}
	}
}

// fieldUint decodes a field value the device answered as an integer.
func fieldUint(f nvml.FieldValue) (uint64, bool) {
	if nvml.Return(f.NvmlReturn) != nvml.SUCCESS {
		return 0, false
	}
	b := f.Value[:]
	switch nvml.ValueType(f.ValueType) {
	case nvml.VALUE_TYPE_UNSIGNED_INT:
		return uint64(binary.NativeEndian.Uint32(b)), true
	case nvml.VALUE_TYPE_UNSIGNED_LONG, nvml.VALUE_TYPE_UNSIGNED_LONG_LONG:
		return binary.NativeEndian.Uint64(b), true
	case nvml.VALUE_TYPE_SIGNED_LONG_LONG:
		if v := int64(binary.NativeEndian.Uint64(b)); v >= 0 {
			return uint64(v), true
		}
	case nvml.VALUE_TYPE_SIGNED_INT:
		if v := int32(binary.NativeEndian.Uint32(b)); v >= 0 {
			return uint64(v), true
		}
	case nvml.VALUE_TYPE_UNSIGNED_SHORT:
		return uint64(binary.NativeEndian.Uint16(b)), true
	case nvml.VALUE_TYPE_DOUBLE:
		if v := math.Float64frombits(binary.NativeEndian.Uint64(b)); v >= 0 {
			return uint64(v), true
		}
	}
	return 0, false
}

// gpmOK is rd.ok for a GPM call of the whole GPU (gi < 0) or of GPU
// instance gi; the instance's field name is made only on a failure, so a
// collection allocates none.
func gpmOK(rd *reader, gi int, field string, r nvml.Return) bool {
	if r != nvml.SUCCESS && gi >= 0 {
		field = fmt.Sprintf("mig gpu instance %d %s", gi, field)
	}
	return rd.ok(field, r)
}

// gpmTake takes a sample with get into p, allocating p's buffers on first
// use, and returns the interval since the previous collection's sample; ok
// is false on the first sample. A refused sample (GPM may need privileges
// the agent lacks, or the instance may have no GPM) is reported once, and
// p takes no more until NVML starts again, rather than fail every
// collection.
func (g *GPU) gpmTake(rd *reader, p *gpmPair, gi int, get func(nvml.GpmSample) nvml.Return) (from, to nvml.GpmSample, ok bool) {
	if p.off {
		return nil, nil, false
	}
	if p.prev == nil {
		a, r1 := g.lib.GpmSampleAlloc()
		b, r2 := g.lib.GpmSampleAlloc()
		if !gpmOK(rd, gi, "gpm sample", r1) || !gpmOK(rd, gi, "gpm sample", r2) {
			freeSample(a, r1)
			freeSample(b, r2)
			p.off = true
			return nil, nil, false
		}
		p.prev, p.cur = a, b
	}
	if r := get(p.cur); r != nvml.SUCCESS {
		gpmOK(rd, gi, "gpm sample (GPM off until NVML restarts)", r)
		p.free()
		p.off = true
		return nil, nil, false
	}
	p.prev, p.cur = p.cur, p.prev
	if !p.primed {
		p.primed = true
		return nil, nil, false
	}
	return p.cur, p.prev, true
}

// gpmFigures reads the GPM metrics of the interval from..to: SM activity,
// SM occupancy and tensor activity, each nil where the device gives none.
func (g *GPU) gpmFigures(rd *reader, req *nvml.GpmMetricsGetType, gi int, from, to nvml.GpmSample) (fig [3]*float64) {
	ids := [len(fig)]nvml.GpmMetricId{nvml.GPM_METRIC_SM_UTIL, nvml.GPM_METRIC_SM_OCCUPANCY, nvml.GPM_METRIC_ANY_TENSOR_UTIL}
	req.NumMetrics, req.Sample1, req.Sample2 = uint32(len(ids)), from, to
	for i, id := range ids {
		req.Metrics[i] = nvml.GpmMetric{MetricId: uint32(id)}
	}
	if !gpmOK(rd, gi, "gpm metrics", g.lib.GpmMetricsGet(req)) {
		return fig
	}
	vals := new([len(fig)]float64) // one allocation for the figures
	for i := range ids {
		m := req.Metrics[i]
		if nvml.Return(m.NvmlReturn) == nvml.SUCCESS && !math.IsNaN(m.Value) {
			vals[i] = m.Value
			fig[i] = &vals[i]
		}
	}
	return fig
}

// gpm reads the whole GPU's GPM metrics over the interval since the last
// collection: each collection takes one sample, and the first gives no
// figures.
func (g *GPU) gpm(rd *reader, st *devState, out *metrics.GPU) {
	gs := st.gpm
	if gs == nil {
		return
	}
	gs.freeInstances(nil)
	dev := st.dev
	from, to, ok := g.gpmTake(rd, &gs.whole, -1, func(s nvml.GpmSample) nvml.Return { return s.Get(dev) })
	if !ok {
		return
	}
	fig := g.gpmFigures(rd, gs.req, -1, from, to)
	out.SMActive, out.SMOccupancy, out.TensorActive = fig[0], fig[1], fig[2]
}

// migGPM reads each MIG instance's GPM metrics from samples of its GPU
// instance, as gpm does for the whole GPU. Compute instances of one GPU
// instance share its figures, sampled once; those at the positions in
// unread, whose GPU instance is unknown, get none. complete says every
// MIG device and its GPU instance was read: only then are the samples of
// GPU instances no longer listed freed, so a failed read does not restart
// an instance's interval.
func (g *GPU) migGPM(rd *reader, st *devState, migs []metrics.MIGInstance, unread []int, complete bool) {
	gs := st.gpm
	if gs == nil || !g.syms.gpmMIG {
		return
	}
	gs.whole.free()
	if complete {
		gs.freeInstances(migs)
	}
	dev := st.dev
	for i := range migs {
		m := &migs[i]
		if slices.Contains(unread, i) {
			continue
		}
		same := -1 // an earlier compute instance of the same GPU instance
		for j := range i {
			if migs[j].GPUInstance == m.GPUInstance && !slices.Contains(unread, j) {
				same = j
				break
			}
		}
		if same >= 0 {
			m.SMActive, m.TensorActive = migs[same].SMActive, migs[same].TensorActive
			continue
		}
		gi := int(m.GPUInstance)
		p := gs.inst[gi]
		if p == nil {
			p = &gpmPair{}
			gs.inst[gi] = p
		}
		from, to, ok := g.gpmTake(rd, p, gi, func(s nvml.GpmSample) nvml.Return { return dev.GpmMigSampleGet(gi, s) })
		if !ok {
			continue
		}
		fig := g.gpmFigures(rd, gs.req, gi, from, to)
		m.SMActive, m.TensorActive = fig[0], fig[2]
	}
}

// migInstances lists the device's MIG devices with their memory,
// processes and GPM figures. Empty slots answer NOT_FOUND.
func (g *GPU) migInstances(rd *reader, st *devState) []metrics.MIGInstance {
	out := []metrics.MIGInstance{}
	complete := true
	var unread []int // positions in out whose GPU instance is unknown
	for i := range st.slow.migMax {
		h, r := st.dev.GetMigDeviceHandleByIndex(i)
		if r == nvml.ERROR_NOT_FOUND || r == nvml.ERROR_INVALID_ARGUMENT {
			continue
		}
		if !rd.ok("mig device", r) {
			complete = false
			continue
		}
		var m metrics.MIGInstance
		if v, r := h.GetGpuInstanceId(); rd.ok("mig gpu instance", r) {
			m.GPUInstance = uint32(v)
		} else {
			// GPU instance 0 is a real one: the device's GPM figures
			// would be another instance's.
			unread = append(unread, len(out))
			complete = false
		}
		if v, r := h.GetComputeInstanceId(); rd.ok("mig compute instance", r) {
			m.ComputeInstance = uint32(v)
		}
		if v, r := h.GetUUID(); rd.ok("mig uuid", r) {
			m.UUID = v
		}
		if mem, r := h.GetMemoryInfo(); rd.ok("mig memory", r) {
			m.MemUsed, m.MemTotal = ptrTo(mem.Used), ptrTo(mem.Total)
		}
		if infos, r := h.GetComputeRunningProcesses(); rd.ok(fmt.Sprintf("mig %d processes", i), r) {
			m.Processes = make([]metrics.Process, 0, len(infos))
			for _, p := range infos {
				proc := metrics.Process{PID: p.Pid}
				if p.UsedGpuMemory != notAvailable {
					proc.MemUsed = ptrTo(p.UsedGpuMemory)
				}
				m.Processes = append(m.Processes, proc)
			}
		}
		out = append(out, m)
	}
	g.migGPM(rd, st, out, unread, complete)
	return out
}
