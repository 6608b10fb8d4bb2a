//go:build cgo

package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/sysperf/sysperf/internal/collect/gpumock"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// unsupported makes every telemetry call of d answer NOT_SUPPORTED, as a
// consumer board or a vGPU does for many of them.
func unsupported(d *server.Device) {
	ns := nvml.ERROR_NOT_SUPPORTED
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, ns }
	d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) { return nvml.Memory_v2{}, nvml.ERROR_FUNCTION_NOT_FOUND }
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, ns }
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, ns }
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, ns }
	d.GetClockInfoFunc = func(nvml.ClockType) (uint32, nvml.Return) { return 0, ns }
	d.GetFanSpeedFunc = func() (uint32, nvml.Return) { return 0, ns }
	d.GetPerformanceStateFunc = func() (nvml.Pstates, nvml.Return) { return nvml.PSTATE_UNKNOWN, ns }
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_FUNCTION_NOT_FOUND }
	d.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) { return 0, ns }
	d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, ns }
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, ns }
	d.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) { return nil, ns }
}

func device(srv *server.Server, i int) *server.Device { return srv.Devices[i].(*server.Device) }

// newServer is the DGX H200 mock with every health call answering
// NOT_SUPPORTED; tests give the calls they are about a function.
func newServer() *server.Server {
	srv := dgxh200.New()
	gpumock.NotSupported(srv)
	return srv
}

func TestGPUAllValues(t *testing.T) {
	srv := newServer()
	var lastSeen []uint64
	for i := range srv.Devices {
		gpumock.Telemetry(device(srv, i), i, &lastSeen)
	}
	g := NewGPU(srv, nil, nil)
	var s metrics.Sample
	if err := g.Collect(context.Background(), &s); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if len(s.GPUs) != 8 {
		t.Fatalf("%d GPUs, want 8", len(s.GPUs))
	}
	for i, got := range s.GPUs {
		d := device(srv, i)
		want := metrics.GPU{
			Index: i, UUID: d.UUID, Name: d.Config.Name,
			Util: ptrTo(float64(40 + i)), MemUtil: ptrTo(float64(10 + i)),
			MemUsed: ptrTo(uint64(20+i) << 30), MemTotal: ptrTo(uint64(150_754_820_096)),
			Temp:  ptrTo(float64(35 + i)),
			Power: ptrTo(312.5 + float64(i)/1000), PowerLimit: ptrTo(700.0),
			SMClock: ptrTo(uint32(1980)), MemClock: ptrTo(uint32(3201)),
			Fan: ptrTo(45.0), PState: ptrTo(0),
			ThrottleMask: ptrTo(uint64(0x44)), Throttle: []string{"sw_power_cap", "hw_thermal_slowdown"},
			Energy: ptrTo(123456.789),
			Driver: "550.54.15", CUDA: "12.4",
			Processes: []metrics.Process{
				{PID: uint32(1000 + i), MemUsed: ptrTo(uint64(170_000_000)), SMUtil: ptrTo(7.0)},
				{PID: 5151, MemUsed: ptrTo(uint64(9_000_000_000)), SMUtil: ptrTo(31.0)},
			},
		}
		if !reflect.DeepEqual(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Errorf("gpu %d\n got %s\nwant %s", i, gj, wj)
		}
	}

	// The next reading asks only for samples after the newest one seen;
	// with none newer, the processes have no SM figure rather than a stale
	// or zero one.
	var s2 metrics.Sample
	if err := g.Collect(context.Background(), &s2); err != nil {
		t.Fatalf("second Collect: %v", err)
	}
	if !reflect.DeepEqual(lastSeen, []uint64{0, 200}) {
		t.Errorf("process samples asked after %v, want [0 200]", lastSeen)
	}
	for _, p := range s2.GPUs[0].Processes {
		if p.SMUtil != nil {
			t.Errorf("pid %d has SM %v without a new sample", p.PID, *p.SMUtil)
		}
		if p.MemUsed == nil {
			t.Errorf("pid %d lost its memory", p.PID)
		}
	}
}

func TestGPUNotSupportedIsAbsent(t *testing.T) {
	srv := newServer()
	for i := range srv.Devices {
		unsupported(device(srv, i))
	}
	g := NewGPU(srv, nil, nil)
	s := metrics.Sample{Host: "h", Boot: "b", TS: 1}
	if err := g.Collect(context.Background(), &s); err != nil {
		t.Fatalf("NOT_SUPPORTED reported as an error: %v", err)
	}
	if len(s.GPUs) != 8 {
		t.Fatalf("%d GPUs", len(s.GPUs))
	}
	got := s.GPUs[3]
	// Memory falls back to the v1 call, which the mock answers.
	if got.MemTotal == nil || *got.MemTotal != device(srv, 3).MemoryInfo.Total {
		t.Errorf("memory fallback: total %v", got.MemTotal)
	}
	got.MemUsed, got.MemTotal = nil, nil
	// The system's versions are not the device's: the mock answers them.
	want := metrics.GPU{Index: 3, UUID: device(srv, 3).UUID, Name: device(srv, 3).Config.Name, Driver: "550.54.15", CUDA: "12.4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unsupported fields present:\n got %+v\nwant %+v", got, want)
	}
	b, err := metrics.Encode(&s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := metrics.Decode(append([]byte(nil), b...))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(back.GPUs[0])
	for _, k := range []string{"utilization_percent", "temperature_c", "power_watts", "fan_percent", "pstate", "throttle_mask", "energy_joules", "sm_clock_mhz",
		"persistence_mode", "vbios_version", "xids", "ecc", "pcie", "nvlinks", "mig_mode", "mig_instances",
		"sm_active_percent", "sm_occupancy_percent", "tensor_active_percent"} {
		if strings.Contains(string(js), `"`+k+`"`) {
			t.Errorf("%s on the wire for an unsupported sensor: %s", k, js)
		}
	}
	if !strings.Contains(string(js), `"processes":null`) {
		t.Errorf("an unreadable process list must be null, not empty: %s", js)
	}
}

func TestGPUThrottleFallback(t *testing.T) {
	srv := newServer()
	srv.Devices = srv.Devices[:1]
	d := device(srv, 0)
	gpumock.Telemetry(d, 0, nil)
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_FUNCTION_NOT_FOUND }
	d.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) {
		return nvml.ClocksThrottleReasonGpuIdle | nvml.ClocksThrottleReasonHwSlowdown | 1<<40, nvml.SUCCESS
	}
	var s metrics.Sample
	if err := NewGPU(srv, nil, nil).Collect(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	g := s.GPUs[0]
	if g.ThrottleMask == nil || *g.ThrottleMask != 0x9|1<<40 {
		t.Fatalf("mask = %v", g.ThrottleMask)
	}
	if want := []string{"gpu_idle", "hw_slowdown", "0x10000000000"}; !reflect.DeepEqual(g.Throttle, want) {
		t.Errorf("reasons = %q, want %q", g.Throttle, want)
	}
}

// A driver older than R510/R535 lacks the newer calls, and go-nvml would
// call them through a null pointer: the collector must not call them.
func TestGPUOldDriverSymbols(t *testing.T) {
	srv := newServer()
	srv.Devices = srv.Devices[:1]
	d := device(srv, 0)
	gpumock.Telemetry(d, 0, nil)
	srv.LookupSymbolFunc = func(sym string) error {
		switch sym {
		case "nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetCurrentClocksEventReasons":
			return errors.New("undefined symbol: " + sym)
		}
		return nil
	}
	d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) { panic("v2 memory call on a driver without it") }
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { panic("event reasons call on a driver without it") }
	d.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) { return nvml.ClocksThrottleReasonSwPowerCap, nvml.SUCCESS }
	var s metrics.Sample
	if err := NewGPU(srv, nil, nil).Collect(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	g := s.GPUs[0]
	if g.MemTotal == nil || *g.MemTotal != d.MemoryInfo.Total {
		t.Errorf("v1 memory not used: %v", g.MemTotal)
	}
	if !reflect.DeepEqual(g.Throttle, []string{"sw_power_cap"}) {
		t.Errorf("throttle reasons = %v", g.Throttle)
	}
}

func TestThrottleReasons(t *testing.T) {
	cases := []struct {
		mask uint64
		want []string
	}{
		{0, nil},
		{nvml.ClocksEventReasonGpuIdle, []string{"gpu_idle"}},
		{0x1ff, []string{"gpu_idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown", "sync_boost",
			"sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake", "display_clocks_setting"}},
		{nvml.ClocksEventReasonBoardLimit | nvml.ClocksEventReasonReliability, []string{"board_limit", "reliability"}},
		{1 << 63, []string{"0x8000000000000000"}},
	}
	for _, tc := range cases {
		if got := throttleReasons(tc.mask); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("throttleReasons(0x%x) = %q, want %q", tc.mask, got, tc.want)
		}
	}
}

// logLines counts the records a test logger received.
func logLines(b *bytes.Buffer) int { return strings.Count(b.String(), "\n") }

func TestGPUInitFailure(t *testing.T) {
	srv := newServer()
	for i := range srv.Devices {
		gpumock.Telemetry(device(srv, i), i, nil)
	}
	inits := 0
	initResult := nvml.ERROR_LIBRARY_NOT_FOUND
	srv.InitFunc = func() nvml.Return { inits++; return initResult }
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	g := NewGPU(srv, log, func() time.Time { return now })

	tick := func(at time.Duration) (*metrics.Sample, error) {
		now = t0.Add(at)
		var s metrics.Sample
		err := g.Collect(context.Background(), &s)
		return &s, err
	}
	for _, at := range []time.Duration{0, 5 * time.Second, 30 * time.Second, 59 * time.Second} {
		s, err := tick(at)
		if err == nil || err.Error() != "NVML unavailable: ERROR_LIBRARY_NOT_FOUND" {
			t.Fatalf("t+%v: error %v", at, err)
		}
		if s.GPUs != nil {
			t.Fatalf("t+%v: GPUs without NVML: %+v", at, s.GPUs)
		}
	}
	if inits != 1 {
		t.Errorf("Init called %d times within the first minute, want 1", inits)
	}
	if n := logLines(&logs); n != 1 || !strings.Contains(logs.String(), "ERROR_LIBRARY_NOT_FOUND") {
		t.Errorf("want one log line naming the error, got %d:\n%s", n, logs.String())
	}

	if _, err := tick(61 * time.Second); err == nil {
		t.Fatal("no error on the retry that still fails")
	}
	if inits != 2 {
		t.Errorf("Init called %d times after a minute, want 2", inits)
	}
	if n := logLines(&logs); n != 1 {
		t.Errorf("the retry's failure was logged again:\n%s", logs.String())
	}

	initResult = nvml.SUCCESS
	if _, err := tick(90 * time.Second); err == nil || inits != 2 {
		t.Fatalf("retried before a minute had passed: err %v, %d inits", err, inits)
	}
	s, err := tick(122 * time.Second)
	if err != nil {
		t.Fatalf("after the driver appeared: %v", err)
	}
	if len(s.GPUs) != 8 || inits != 3 {
		t.Fatalf("%d GPUs after %d inits", len(s.GPUs), inits)
	}
	if !strings.Contains(logs.String(), "NVML available") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
	shutdowns := 0
	srv.ShutdownFunc = func() nvml.Return { shutdowns++; return nvml.SUCCESS }
	if err := g.Close(); err != nil || shutdowns != 1 {
		t.Errorf("Close: %v, %d shutdowns", err, shutdowns)
	}
}

func TestGPUFieldErrorsKeepTheSection(t *testing.T) {
	srv := newServer()
	for i := range srv.Devices {
		gpumock.Telemetry(device(srv, i), i, nil)
	}
	device(srv, 3).GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return nil, nvml.ERROR_UNKNOWN
	}
	device(srv, 5).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) {
		return 0, nvml.ERROR_GPU_IS_LOST
	}
	var s metrics.Sample
	err := NewGPU(srv, nil, nil).Collect(context.Background(), &s)
	if err == nil {
		t.Fatal("failed calls not reported")
	}
	for _, want := range []string{"gpu 3 processes: ERROR_UNKNOWN", "gpu 5 temperature: ERROR_GPU_IS_LOST"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(s.GPUs) != 8 {
		t.Fatalf("section lost: %d GPUs", len(s.GPUs))
	}
	if s.GPUs[3].Processes != nil || s.GPUs[3].Util == nil {
		t.Errorf("gpu 3: processes %v, util %v", s.GPUs[3].Processes, s.GPUs[3].Util)
	}
	if s.GPUs[5].Temp != nil || s.GPUs[5].Processes == nil {
		t.Errorf("gpu 5: temp %v, processes %v", s.GPUs[5].Temp, s.GPUs[5].Processes)
	}
	if len(s.GPUs[4].Processes) != 2 {
		t.Errorf("gpu 4 lost its processes: %+v", s.GPUs[4].Processes)
	}
}

func TestGPUProcessMemoryNotAvailableAndMIG(t *testing.T) {
	srv := newServer()
	srv.Devices = srv.Devices[:1]
	d := device(srv, 0)
	gpumock.Telemetry(d, 0, nil)
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{
			{Pid: 1, UsedGpuMemory: notAvailable},
			{Pid: 2, UsedGpuMemory: 100, GpuInstanceId: 0},
			{Pid: 2, UsedGpuMemory: 50, GpuInstanceId: 1},
		}, nvml.SUCCESS
	}
	var s metrics.Sample
	if err := NewGPU(srv, nil, nil).Collect(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	p := s.GPUs[0].Processes
	if len(p) != 2 || p[0].PID != 1 || p[0].MemUsed != nil || p[1].PID != 2 || p[1].MemUsed == nil || *p[1].MemUsed != 150 {
		js, _ := json.Marshal(p)
		t.Errorf("processes = %s", js)
	}
}

func TestGPUDeviceCountLostReinitialises(t *testing.T) {
	srv := newServer()
	inits := 0
	srv.InitFunc = func() nvml.Return { inits++; return nvml.SUCCESS }
	srv.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_DRIVER_NOT_LOADED }
	now := time.Unix(1000, 0)
	g := NewGPU(srv, nil, func() time.Time { return now })
	var s metrics.Sample
	if err := g.Collect(context.Background(), &s); err == nil || !strings.Contains(err.Error(), "ERROR_DRIVER_NOT_LOADED") {
		t.Fatalf("err = %v", err)
	}
	now = now.Add(2 * time.Minute)
	_ = g.Collect(context.Background(), &s)
	if inits != 2 {
		t.Errorf("%d inits, want a re-init after the driver went away", inits)
	}
}

// With the real go-nvml library on a machine without the NVIDIA driver,
// the collector must answer the plain reason, never panic. On a GPU
// machine it must read the devices.
func TestGPURealLibrary(t *testing.T) {
	g := NewGPU(nvml.New(), nil, nil)
	defer g.Close()
	var s metrics.Sample
	err := g.Collect(context.Background(), &s)
	if errors.Is(err, nvml.ERROR_LIBRARY_NOT_FOUND) {
		if err.Error() != "NVML unavailable: ERROR_LIBRARY_NOT_FOUND" {
			t.Errorf("error text %q", err)
		}
	}
	if err != nil && strings.HasPrefix(err.Error(), "NVML unavailable: ") {
		t.Logf("no NVML here: %v", err)
		if s.GPUs != nil {
			t.Errorf("GPUs without NVML: %+v", s.GPUs)
		}
		return
	}
	if len(s.GPUs) == 0 {
		t.Fatalf("NVML initialised but no GPU read (err %v)", err)
	}
	js, _ := json.MarshalIndent(s.GPUs, "", "  ")
	t.Logf("field errors: %v\n%s", err, js)
	for _, gpu := range s.GPUs {
		if gpu.UUID == "" || gpu.Name == "" || gpu.MemTotal == nil || *gpu.MemTotal == 0 {
			t.Errorf("gpu %d incomplete: %s", gpu.Index, js)
		}
	}
}
