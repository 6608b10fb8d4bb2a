//go:build cgo

package collect

import (
	"syscall"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// BenchmarkNVMLCalls times each NVML call a collection makes every
// interval, one at a time, on the machine's own driver and its first GPU:
// which of them a collection's cost (BenchmarkGPUCollectNVML) comes from.
// ns/op is the call's wall time, cpu-ns/op the process's CPU for it (a
// call may wait on the driver without spending CPU). Without NVML it
// skips; go-nvml's mock would time only Go code.
func BenchmarkNVMLCalls(b *testing.B) {
	lib := nvml.New()
	if r := lib.Init(); r != nvml.SUCCESS {
		b.Skipf("no NVML: %v", r)
	}
	defer lib.Shutdown()
	dev, r := lib.DeviceGetHandleByIndex(0)
	if r != nvml.SUCCESS {
		b.Skipf("no GPU 0: %v", r)
	}
	// fieldsOf is a field-value request for ids, as the collector makes
	// one per device.
	fieldsOf := func(ids ...uint32) func() nvml.Return {
		f := make([]nvml.FieldValue, len(ids))
		for i, id := range ids {
			f[i].FieldId = id
		}
		return func() nvml.Return { return dev.GetFieldValues(f) }
	}
	pcie := []uint32{nvml.FI_DEV_PCIE_COUNT_TX_BYTES, nvml.FI_DEV_PCIE_COUNT_RX_BYTES, nvml.FI_DEV_PCIE_REPLAY_COUNTER}
	var last uint64
	calls := []struct {
		name string
		call func() nvml.Return
	}{
		{"UtilizationRates", func() nvml.Return { _, r := dev.GetUtilizationRates(); return r }},
		{"MemoryInfo_v2", func() nvml.Return { _, r := dev.GetMemoryInfo_v2(); return r }},
		{"Temperature", func() nvml.Return { _, r := dev.GetTemperature(nvml.TEMPERATURE_GPU); return r }},
		{"PowerUsage", func() nvml.Return { _, r := dev.GetPowerUsage(); return r }},
		{"EnforcedPowerLimit", func() nvml.Return { _, r := dev.GetEnforcedPowerLimit(); return r }},
		{"ClockInfo_SM", func() nvml.Return { _, r := dev.GetClockInfo(nvml.CLOCK_SM); return r }},
		{"ClockInfo_MEM", func() nvml.Return { _, r := dev.GetClockInfo(nvml.CLOCK_MEM); return r }},
		{"FanSpeed", func() nvml.Return { _, r := dev.GetFanSpeed(); return r }},
		{"PerformanceState", func() nvml.Return { _, r := dev.GetPerformanceState(); return r }},
		{"ClocksEventReasons", func() nvml.Return { _, r := dev.GetCurrentClocksEventReasons(); return r }},
		{"TotalEnergyConsumption", func() nvml.Return { _, r := dev.GetTotalEnergyConsumption(); return r }},
		{"ComputeRunningProcesses", func() nvml.Return { _, r := dev.GetComputeRunningProcesses(); return r }},
		{"ProcessUtilization", func() nvml.Return {
			s, r := dev.GetProcessUtilization(last)
			for _, x := range s {
				last = max(last, x.TimeStamp)
			}
			return r
		}},
		{"FieldValues_PCIe3", fieldsOf(pcie...)},
		{"FieldValues_PCIeTX", fieldsOf(nvml.FI_DEV_PCIE_COUNT_TX_BYTES)},
		{"FieldValues_Replay", fieldsOf(nvml.FI_DEV_PCIE_REPLAY_COUNTER)},
		{"FieldValues_Energy", fieldsOf(nvml.FI_DEV_TOTAL_ENERGY_CONSUMPTION)},
		{"FieldValues_PCIe3+Energy", fieldsOf(append(pcie, nvml.FI_DEV_TOTAL_ENERGY_CONSUMPTION)...)},
		{"FieldValues_PowerInstant", fieldsOf(nvml.FI_DEV_POWER_INSTANT)},
		{"TotalEccErrors", func() nvml.Return {
			_, r := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.VOLATILE_ECC)
			return r
		}},
		{"CurrPcieLinkGeneration", func() nvml.Return { _, r := dev.GetCurrPcieLinkGeneration(); return r }},
		{"MigMode", func() nvml.Return { _, _, r := dev.GetMigMode(); return r }},
		{"RemappedRows", func() nvml.Return { _, _, _, _, r := dev.GetRemappedRows(); return r }},
	}
	for _, c := range calls {
		b.Run(c.name, func(b *testing.B) {
			cpu := procCPU()
			var ret nvml.Return
			for b.Loop() {
				ret = c.call()
			}
			b.ReportMetric(float64((procCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
			if ret != nvml.SUCCESS && ret != nvml.ERROR_NOT_FOUND {
				b.Logf("%s: %v", c.name, ret)
			}
		})
	}
	b.Run("GpmSampleGet+MetricsGet", func(b *testing.B) {
		if s, r := dev.GpmQueryDeviceSupport(); r != nvml.SUCCESS || s.IsSupportedDevice == 0 {
			b.Skipf("no GPM: %v", r)
		}
		s1, _ := lib.GpmSampleAlloc()
		s2, _ := lib.GpmSampleAlloc()
		defer s1.Free()
		defer s2.Free()
		dev.GpmSampleGet(s1)
		req := &nvml.GpmMetricsGetType{Version: nvml.GPM_METRICS_GET_VERSION, NumMetrics: 3, Sample1: s1, Sample2: s2}
		for i, id := range []nvml.GpmMetricId{nvml.GPM_METRIC_SM_UTIL, nvml.GPM_METRIC_SM_OCCUPANCY, nvml.GPM_METRIC_ANY_TENSOR_UTIL} {
			req.Metrics[i] = nvml.GpmMetric{MetricId: uint32(id)}
		}
		cpu := procCPU()
		for b.Loop() {
			dev.GpmSampleGet(s2)
			lib.GpmMetricsGet(req)
			req.Sample1, req.Sample2 = req.Sample2, req.Sample1
		}
		b.ReportMetric(float64((procCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
}

// procCPU is the process's user and system CPU so far.
func procCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
