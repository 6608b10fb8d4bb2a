//go:build cgo

package gpumock

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Telemetry gives mock device i the telemetry of a busy H200, with
// values that differ per device so a mix-up between devices shows.
// Device 0's lastSeen, when not nil, records the timestamps the collector
// asked process samples after.
func Telemetry(d *server.Device, i int, lastSeen *[]uint64) {
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{Gpu: uint32(40 + i), Memory: uint32(10 + i)}, nvml.SUCCESS
	}
	d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
		return nvml.Memory_v2{Total: 150_754_820_096, Reserved: 500 << 20, Used: uint64(20+i) << 30, Free: 1}, nvml.SUCCESS
	}
	d.GetTemperatureFunc = func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
		if s != nvml.TEMPERATURE_GPU {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return uint32(35 + i), nvml.SUCCESS
	}
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 312_500 + uint32(i), nvml.SUCCESS }
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 700_000, nvml.SUCCESS }
	d.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
		switch c {
		case nvml.CLOCK_SM:
			return 1980, nvml.SUCCESS
		case nvml.CLOCK_MEM:
			return 3201, nvml.SUCCESS
		}
		return 0, nvml.ERROR_INVALID_ARGUMENT
	}
	d.GetFanSpeedFunc = func() (uint32, nvml.Return) { return 45, nvml.SUCCESS }
	d.GetPerformanceStateFunc = func() (nvml.Pstates, nvml.Return) { return nvml.PSTATE_0, nvml.SUCCESS }
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		return nvml.ClocksEventReasonSwPowerCap | nvml.ClocksThrottleReasonHwThermalSlowdown, nvml.SUCCESS
	}
	d.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) {
		panic("old throttle call used although the new one works")
	}
	d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 123_456_789, nvml.SUCCESS }
	Processes(d, []nvml.ProcessInfo{
		{Pid: uint32(1000 + i), UsedGpuMemory: 170_000_000},
		{Pid: 5151, UsedGpuMemory: 9_000_000_000},
	}, []nvml.ProcessUtilizationSample{
		{Pid: uint32(1000 + i), TimeStamp: 100, SmUtil: 3},
		{Pid: uint32(1000 + i), TimeStamp: 200, SmUtil: 7}, // newest for this pid
		{Pid: 5151, TimeStamp: 150, SmUtil: 31},
		{Pid: 9999, TimeStamp: 180, SmUtil: 50}, // exited since the list was read
	}, lastSeenOf(i, lastSeen))
}

func lastSeenOf(i int, lastSeen *[]uint64) *[]uint64 {
	if i != 0 {
		return nil
	}
	return lastSeen
}

// Processes makes d list procs as its compute processes and answer util
// as their utilization samples, those newer than the timestamp asked
// after; lastSeen, when not nil, records the timestamps asked after.
func Processes(d *server.Device, procs []nvml.ProcessInfo, util []nvml.ProcessUtilizationSample, lastSeen *[]uint64) {
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return procs, nvml.SUCCESS }
	d.GetProcessUtilizationFunc = func(after uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
		if lastSeen != nil {
			*lastSeen = append(*lastSeen, after)
		}
		var out []nvml.ProcessUtilizationSample
		for _, s := range util {
			if s.TimeStamp > after {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil, nvml.ERROR_NOT_FOUND
		}
		return out, nvml.SUCCESS
	}
}

// H200 is the health state the mock answers for each device: counters
// move with tick, which the test advances between collections.
type H200 struct {
	Tick  atomic.Uint64
	Calls atomic.Int64 // every health call, for the benchmark
	Slow  atomic.Int64 // calls of the once-a-minute fields

	mu      sync.Mutex
	samples []*GPMSample // every GPM sample allocated, for the tests of their freeing
}

// Figures the mock answers, checked in the tests by hand.
const (
	NVLinks     = 18
	PCIeTxTick  = 5_000_000_000 // bytes per tick
	PCIeRxTick  = 2_000_000_000
	NVTxTickKiB = 1_000_000 // per link and tick, times (link+1)
	NVRxTickKiB = 500_000
)

// GPMSample is a GPM sample that remembers which device, GPU instance
// and tick it was taken at, so GpmMetricsGet can check the collector pairs
// them right, and whether it was freed.
type GPMSample struct {
	mock.GpmSample
	Dev  int
	GI   int // the MIG GPU instance; -1 for a whole-device sample
	Tick uint64
	// Freed is set by Free, which panics on a second call.
	Freed bool
}

// Samples returns every GPM sample allocated so far.
func (h *H200) Samples() []*GPMSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*GPMSample(nil), h.samples...)
}

// MIGSMActive and MIGTensorActive are the GPM figures the mock answers
// for GPU instance gi of device dev over an interval of ticks: they differ
// per device, instance and interval length, so a sample taken of the wrong
// instance or at the wrong time shows.
func MIGSMActive(dev, gi int, ticks uint64) float64 {
	return float64(10*gi+dev) + float64(ticks)/4
}

func MIGTensorActive(dev, gi int, ticks uint64) float64 {
	return float64(gi) + float64(dev)/8 + float64(ticks)/2
}

func setField(f *nvml.FieldValue, v uint64) {
	f.NvmlReturn = uint32(nvml.SUCCESS)
	f.ValueType = uint32(nvml.VALUE_TYPE_UNSIGNED_LONG_LONG)
	binary.NativeEndian.PutUint64(f.Value[:], v)
}

// Healthy gives every device of srv the health of a DGX H200 in service:
// ECC on with a few corrected errors, rows remapped, a PCIe Gen5 x16 link,
// 18 NVLinks (the last one down), GPM, persistence mode, and critical XID
// events on es. Every device also has Telemetry.
func (h *H200) Healthy(srv *server.Server, es nvml.EventSet) {
	count := func() { h.Calls.Add(1) }
	slow := func() { h.Calls.Add(1); h.Slow.Add(1) }
	srv.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		if es == nil {
			return nil, nvml.ERROR_NOT_SUPPORTED
		}
		return es, nvml.SUCCESS
	}
	srv.GpmSampleAllocFunc = func() (nvml.GpmSample, nvml.Return) {
		s := &GPMSample{Dev: -1, GI: -1}
		s.GetFunc = func(d nvml.Device) nvml.Return {
			count()
			s.Dev, s.GI, s.Tick = d.(*server.Device).Index, -1, h.Tick.Load()
			return nvml.SUCCESS
		}
		s.FreeFunc = func() nvml.Return {
			if s.Freed {
				panic("GPM sample freed twice")
			}
			s.Freed = true
			return nvml.SUCCESS
		}
		h.mu.Lock()
		h.samples = append(h.samples, s)
		h.mu.Unlock()
		return s, nvml.SUCCESS
	}
	srv.GpmMetricsGetFunc = func(req *nvml.GpmMetricsGetType) nvml.Return {
		count()
		a, b := req.Sample1.(*GPMSample), req.Sample2.(*GPMSample)
		if a == b || a.Freed || b.Freed || a.Dev != b.Dev || a.GI != b.GI || b.Tick < a.Tick || req.NumMetrics != 3 {
			panic("GPM metrics asked of samples that are not one interval of one device or instance")
		}
		for i := range req.NumMetrics {
			m := &req.Metrics[i]
			m.NvmlReturn = uint32(nvml.SUCCESS)
			switch id := nvml.GpmMetricId(m.MetricId); {
			case b.GI >= 0 && id == nvml.GPM_METRIC_SM_UTIL:
				m.Value = MIGSMActive(b.Dev, b.GI, b.Tick-a.Tick)
			case b.GI >= 0 && id == nvml.GPM_METRIC_ANY_TENSOR_UTIL:
				m.Value = MIGTensorActive(b.Dev, b.GI, b.Tick-a.Tick)
			case id == nvml.GPM_METRIC_SM_UTIL:
				m.Value = 60 + float64(b.Dev)
			case id == nvml.GPM_METRIC_SM_OCCUPANCY:
				m.Value = 25.5
			case id == nvml.GPM_METRIC_ANY_TENSOR_UTIL:
				m.Value = 41.25
			default:
				m.NvmlReturn = uint32(nvml.ERROR_INVALID_ARGUMENT)
			}
		}
		return nvml.SUCCESS
	}
	for i := range srv.Devices {
		d := srv.Devices[i].(*server.Device)
		Telemetry(d, i, nil)
		d.GetVbiosVersionFunc = func() (string, nvml.Return) { count(); return "96.00.74.00.1C", nvml.SUCCESS }
		d.GetNvLinkStateFunc = func(l int) (nvml.EnableState, nvml.Return) {
			count()
			if l >= NVLinks {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return nvml.FEATURE_ENABLED, nvml.SUCCESS
		}
		d.GpmQueryDeviceSupportFunc = func() (nvml.GpmSupport, nvml.Return) {
			count()
			return nvml.GpmSupport{IsSupportedDevice: 1}, nvml.SUCCESS
		}
		d.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { slow(); return nvml.FEATURE_ENABLED, nvml.SUCCESS }
		d.GetMaxPcieLinkGenerationFunc = func() (int, nvml.Return) { slow(); return 5, nvml.SUCCESS }
		d.GetMaxPcieLinkWidthFunc = func() (int, nvml.Return) { slow(); return 16, nvml.SUCCESS }
		d.GetCurrPcieLinkGenerationFunc = func() (int, nvml.Return) { count(); return 5, nvml.SUCCESS }
		d.GetCurrPcieLinkWidthFunc = func() (int, nvml.Return) { count(); return 16, nvml.SUCCESS }
		d.GetFieldValuesFunc = func(fs []nvml.FieldValue) nvml.Return {
			// The replay counter and link states are the collector's
			// once-a-minute fields, asked for together.
			if len(fs) > 0 && (fs[0].FieldId == nvml.FI_DEV_PCIE_REPLAY_COUNTER || fs[0].FieldId == nvml.FI_DEV_NVLINK_GET_STATE) {
				slow()
			} else {
				count()
			}
			t := h.Tick.Load()
			for j := range fs {
				f := &fs[j]
				switch f.FieldId {
				case nvml.FI_DEV_PCIE_COUNT_TX_BYTES:
					setField(f, 1000+t*PCIeTxTick)
				case nvml.FI_DEV_PCIE_COUNT_RX_BYTES:
					setField(f, 2000+t*PCIeRxTick)
				case nvml.FI_DEV_PCIE_REPLAY_COUNTER:
					setField(f, uint64(i))
				case nvml.FI_DEV_NVLINK_GET_STATE:
					up := uint64(nvml.FEATURE_ENABLED)
					if f.ScopeId == NVLinks-1 {
						up = uint64(nvml.FEATURE_DISABLED)
					}
					setField(f, up)
				case nvml.FI_DEV_NVLINK_THROUGHPUT_DATA_TX:
					setField(f, t*NVTxTickKiB*uint64(f.ScopeId+1))
				case nvml.FI_DEV_NVLINK_THROUGHPUT_DATA_RX:
					setField(f, t*NVRxTickKiB)
				default:
					f.NvmlReturn = uint32(nvml.ERROR_INVALID_ARGUMENT)
				}
			}
			return nvml.SUCCESS
		}
		d.GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
			slow()
			return nvml.FEATURE_ENABLED, nvml.FEATURE_ENABLED, nvml.SUCCESS
		}
		d.GetTotalEccErrorsFunc = func(kind nvml.MemoryErrorType, counter nvml.EccCounterType) (uint64, nvml.Return) {
			if counter == nvml.AGGREGATE_ECC {
				slow()
			} else {
				count()
			}
			switch {
			case kind == nvml.MEMORY_ERROR_TYPE_CORRECTED && counter == nvml.VOLATILE_ECC:
				return 12, nvml.SUCCESS
			case kind == nvml.MEMORY_ERROR_TYPE_UNCORRECTED && counter == nvml.VOLATILE_ECC:
				return uint64(i % 2), nvml.SUCCESS
			case kind == nvml.MEMORY_ERROR_TYPE_CORRECTED:
				return 340, nvml.SUCCESS
			}
			return 2, nvml.SUCCESS
		}
		// Hopper remaps rows and retires no pages.
		d.GetRetiredPagesFunc = func(nvml.PageRetirementCause) ([]uint64, nvml.Return) { slow(); return nil, nvml.ERROR_NOT_SUPPORTED }
		d.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { slow(); return 0, nvml.ERROR_NOT_SUPPORTED }
		d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { slow(); return 3, 1, i == 2, i == 6, nvml.SUCCESS }
		d.GetMigModeFunc = func() (int, int, nvml.Return) {
			slow()
			return nvml.DEVICE_MIG_DISABLE, nvml.DEVICE_MIG_DISABLE, nvml.SUCCESS
		}
		d.GpmMigSampleGetFunc = func(gi int, smp nvml.GpmSample) nvml.Return {
			count()
			s := smp.(*GPMSample)
			s.Dev, s.GI, s.Tick = i, gi, h.Tick.Load()
			return nvml.SUCCESS
		}
		d.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) {
			return nvml.EventTypeXidCriticalError | nvml.EventTypeSingleBitEccError, nvml.SUCCESS
		}
		d.RegisterEventsFunc = func(types uint64, set nvml.EventSet) nvml.Return {
			if types != nvml.EventTypeXidCriticalError || set != es {
				panic("registered for the wrong events or set")
			}
			return nvml.SUCCESS
		}
	}
}

// Instances are the GPU instances of a device in MIG mode; a test
// changes them between collections.
type Instances struct {
	mu      sync.Mutex
	gis     []int
	handles map[[2]int]*mock.Device // by GPU and compute instance
	make    func(gi, ci int) *mock.Device
}

// Set replaces the GPU instances.
func (in *Instances) Set(gis ...int) {
	in.mu.Lock()
	in.gis = append([]int(nil), gis...)
	in.mu.Unlock()
}

// at is the MIG device in slot, made once per GPU and compute instance
// (mock devices are large, and the benchmark measures the collector): the
// compute instances of a GPU instance are numbered in slot order from 0.
func (in *Instances) at(slot int) (*mock.Device, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if slot >= len(in.gis) {
		return nil, false
	}
	gi, ci := in.gis[slot], 0
	for _, g := range in.gis[:slot] {
		if g == gi {
			ci++
		}
	}
	k := [2]int{gi, ci}
	if in.handles[k] == nil {
		in.handles[k] = in.make(gi, ci)
	}
	return in.handles[k], true
}

// MIGSlots is the number of MIG device slots a device in MIG mode has.
const MIGSlots = 7

// MIG turns MIG mode on for d, which Healthy has set up, with a MIG device
// per id in gis, a GPU instance id (repeated for a GPU instance of several
// compute instances): GPU instance g, compute instance c has g GiB of
// memory in use of 16.5 GiB, and runs process 6000+10g+c with all of it.
// The parent device goes on listing its own processes. Every call is a
// health call; mode and slot count are once-a-minute ones.
func (h *H200) MIG(d *server.Device, gis ...int) *Instances {
	count := func() { h.Calls.Add(1) }
	slow := func() { h.Calls.Add(1); h.Slow.Add(1) }
	in := &Instances{handles: map[[2]int]*mock.Device{}}
	in.Set(gis...)
	d.GetMigModeFunc = func() (int, int, nvml.Return) {
		slow()
		return nvml.DEVICE_MIG_ENABLE, nvml.DEVICE_MIG_ENABLE, nvml.SUCCESS
	}
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { slow(); return MIGSlots, nvml.SUCCESS }
	in.make = func(gi, ci int) *mock.Device {
		used := uint64(gi) << 30
		return &mock.Device{
			GetGpuInstanceIdFunc:     func() (int, nvml.Return) { count(); return gi, nvml.SUCCESS },
			GetComputeInstanceIdFunc: func() (int, nvml.Return) { count(); return ci, nvml.SUCCESS },
			GetUUIDFunc: func() (string, nvml.Return) {
				count()
				return fmt.Sprintf("MIG-%d-%d-%d", d.Index, gi, ci), nvml.SUCCESS
			},
			GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
				count()
				return nvml.Memory{Total: 33 << 29, Used: used}, nvml.SUCCESS
			},
			GetComputeRunningProcessesFunc: func() ([]nvml.ProcessInfo, nvml.Return) {
				count()
				return []nvml.ProcessInfo{{Pid: uint32(6000 + 10*gi + ci), UsedGpuMemory: used, GpuInstanceId: uint32(gi), ComputeInstanceId: uint32(ci)}}, nvml.SUCCESS
			},
		}
	}
	d.GetMigDeviceHandleByIndexFunc = func(slot int) (nvml.Device, nvml.Return) {
		count()
		if m, ok := in.at(slot); ok {
			return m, nvml.SUCCESS
		}
		return nil, nvml.ERROR_NOT_FOUND
	}
	return in
}
