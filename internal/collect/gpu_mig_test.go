//go:build cgo

package collect

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"github.com/sysperf/sysperf/internal/collect/gpumock"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// gpmOf is an instance's GPM figures as text, "-" for an absent one.
func gpmOf(m metrics.MIGInstance) string {
	f := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return asJSON(*p)
	}
	return f(m.SMActive) + "/" + f(m.TensorActive)
}

// Under MIG each instance has the GPM figures of its own GPU instance's
// samples, over the interval since the previous collection; the whole GPU
// has none. A GPU instance without GPM, or without one metric, leaves
// those figures out, without an error, and is not asked again.
func TestGPUMIGInstanceGPM(t *testing.T) {
	srv, h, clk, g := healthyGPU(t, nil)
	// GPU 0: GPU instance 1, and GPU instance 2 of two compute instances.
	h.MIG(device(srv, 0), 1, 2, 2)
	// GPU 3: GPU instance 5 lacks the tensor metric, GPU instance 6 has
	// no GPM at all.
	d3 := device(srv, 3)
	h.MIG(d3, 5, 6)
	take := d3.GpmMigSampleGetFunc
	var asked6 atomic.Int64
	d3.GpmMigSampleGetFunc = func(gi int, s nvml.GpmSample) nvml.Return {
		if gi == 6 {
			asked6.Add(1)
			return nvml.ERROR_NOT_SUPPORTED
		}
		return take(gi, s)
	}
	metricsGet := srv.GpmMetricsGetFunc
	srv.GpmMetricsGetFunc = func(req *nvml.GpmMetricsGetType) nvml.Return {
		r := metricsGet(req)
		if s := req.Sample2.(*gpumock.GPMSample); s.Dev == 3 && s.GI == 5 {
			for i := range req.NumMetrics {
				if nvml.GpmMetricId(req.Metrics[i].MetricId) == nvml.GPM_METRIC_ANY_TENSOR_UTIL {
					req.Metrics[i].NvmlReturn = uint32(nvml.ERROR_NOT_SUPPORTED)
				}
			}
		}
		return r
	}

	first := collectOnce(t, g)
	for _, i := range []int{0, 3} {
		for _, m := range first.GPUs[i].MIG {
			if m.SMActive != nil || m.TensorActive != nil {
				t.Errorf("gpu %d GI %d: figures from one sample: %s", i, m.GPUInstance, gpmOf(m))
			}
		}
	}

	// One tick, then two: the figures are those of each interval (the
	// mock's SM activity is 10·GI + device + ticks/4, tensor activity
	// GI + device/8 + ticks/2).
	for _, step := range []struct {
		ticks                uint64
		gpu0, gpu3, gpu1Full string
	}{
		{1, "10.25/1.5 20.25/2.5 20.25/2.5", "53.25/- -/-", "61"},
		{2, "10.5/2 20.5/3 20.5/3", "53.5/- -/-", "61"},
	} {
		h.Tick.Add(step.ticks)
		clk.add(5 * time.Second)
		s := collectOnce(t, g)
		for i, want := range map[int]string{0: step.gpu0, 3: step.gpu3} {
			var got []string
			for _, m := range s.GPUs[i].MIG {
				got = append(got, gpmOf(m))
			}
			if strings.Join(got, " ") != want {
				t.Errorf("%d ticks: gpu %d instances %q, want %q", step.ticks, i, got, want)
			}
			if gpu := s.GPUs[i]; gpu.SMActive != nil || gpu.SMOccupancy != nil || gpu.TensorActive != nil {
				t.Errorf("gpu %d in MIG mode has whole-GPU GPM: %s", i, asJSON(gpu))
			}
		}
		if got := s.GPUs[1].SMActive; got == nil || asJSON(*got) != step.gpu1Full || s.GPUs[1].MIG != nil {
			t.Errorf("gpu 1 without MIG: %s", asJSON(s.GPUs[1]))
		}
	}
	if n := asked6.Load(); n != 1 {
		t.Errorf("GPU instance 6 without GPM asked %d times, want once", n)
	}
	// Under MIG no whole-device sample is taken.
	for _, smp := range h.Samples() {
		if (smp.Dev == 0 || smp.Dev == 3) && smp.GI < 0 {
			t.Errorf("whole-device GPM sample of MIG gpu %d", smp.Dev)
		}
	}
}

// samplesOf counts the GPM samples last taken of GPU instance gi of
// device dev, and how many of those are freed.
func samplesOf(h *gpumock.H200, dev, gi int) (n, freed int) {
	for _, s := range h.Samples() {
		if s.Dev == dev && s.GI == gi {
			n++
			if s.Freed {
				freed++
			}
		}
	}
	return n, freed
}

// A GPU instance's samples are allocated once, kept from one collection
// to the next, and freed when the instance goes and when the collector
// closes; one that comes back starts a new interval.
func TestGPUMIGSamplesFreed(t *testing.T) {
	srv, h, clk, g := healthyGPU(t, nil)
	in := h.MIG(device(srv, 0), 1, 2)
	step := func() *metrics.Sample {
		h.Tick.Add(1)
		clk.add(5 * time.Second)
		return collectOnce(t, g)
	}
	step()
	step()
	allocated := len(h.Samples())
	step()
	if n := len(h.Samples()); n != allocated {
		t.Fatalf("a collection allocated %d GPM samples", n-allocated)
	}
	if n, freed := samplesOf(h, 0, 2); n != 2 || freed != 0 {
		t.Fatalf("GPU instance 2: %d samples, %d freed; want 2 live", n, freed)
	}

	in.Set(1)
	s := step()
	if n, freed := samplesOf(h, 0, 2); n != 2 || freed != 2 {
		t.Errorf("GPU instance 2 gone: %d samples, %d freed; want 2 freed", n, freed)
	}
	if n, freed := samplesOf(h, 0, 1); n != 2 || freed != 0 || len(s.GPUs[0].MIG) != 1 || s.GPUs[0].MIG[0].SMActive == nil {
		t.Errorf("GPU instance 1 lost its samples (%d, %d freed): %s", n, freed, asJSON(s.GPUs[0].MIG))
	}

	in.Set(1, 2)
	if m := step().GPUs[0].MIG; len(m) != 2 || m[1].SMActive != nil {
		t.Errorf("GPU instance 2 back: figures from one sample: %s", asJSON(m))
	}
	if m := step().GPUs[0].MIG; len(m) != 2 || gpmOf(m[1]) != "20.25/2.5" {
		t.Errorf("GPU instance 2 back: %s", asJSON(m))
	}

	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	for _, smp := range h.Samples() {
		if !smp.Freed {
			t.Errorf("GPM sample of gpu %d GI %d not freed at close", smp.Dev, smp.GI)
		}
	}
}

// A MIG device whose GPU instance cannot be read is listed, with the
// error, but gets no GPM figures (GPU instance 0 is a real one, maybe
// another's), and the samples of the instance it is are kept: once read
// again, its figures cover the interval since its last sample.
func TestGPUMIGUnreadInstance(t *testing.T) {
	srv, h, clk, g := healthyGPU(t, nil)
	d := device(srv, 0)
	h.MIG(d, 4, 3)
	var fail atomic.Bool
	m, _ := d.GetMigDeviceHandleByIndex(0)
	m.(*mock.Device).GetGpuInstanceIdFunc = func() (int, nvml.Return) {
		if fail.Load() {
			return 0, nvml.ERROR_UNKNOWN
		}
		return 4, nvml.SUCCESS
	}
	collect := func() (*metrics.Sample, error) {
		h.Tick.Add(1)
		clk.add(5 * time.Second)
		var s metrics.Sample
		err := g.Collect(context.Background(), &s)
		return &s, err
	}
	for range 2 {
		if _, err := collect(); err != nil {
			t.Fatal(err)
		}
	}
	fail.Store(true)
	s, err := collect()
	if err == nil || !strings.Contains(err.Error(), "gpu 0 mig gpu instance: ERROR_UNKNOWN") {
		t.Errorf("err = %v", err)
	}
	if m := s.GPUs[0].MIG; len(m) != 2 || m[0].GPUInstance != 0 || gpmOf(m[0]) != "-/-" || gpmOf(m[1]) != "30.25/3.5" {
		t.Errorf("one GPU instance unread: %s", asJSON(m))
	}
	if n, freed := samplesOf(h, 0, 4); n != 2 || freed != 0 {
		t.Errorf("GPU instance 4 unread: %d samples, %d freed; want 2 kept", n, freed)
	}
	fail.Store(false)
	s, err = collect()
	if err != nil {
		t.Fatal(err)
	}
	// Two ticks since GPU instance 4's last sample.
	if m := s.GPUs[0].MIG; len(m) != 2 || gpmOf(m[0]) != "40.5/5" || gpmOf(m[1]) != "30.25/3.5" {
		t.Errorf("GPU instance 4 read again: %s", asJSON(m))
	}
}

// A driver with GPM but without per-instance samples (nvmlGpmMigSampleGet)
// is not asked for them: MIG instances are listed without GPM figures.
func TestGPUMIGWithoutMIGSamples(t *testing.T) {
	srv, h, clk, g := healthyGPU(t, nil)
	srv.LookupSymbolFunc = func(sym string) error {
		if sym == "nvmlGpmMigSampleGet" {
			return errors.New("undefined symbol: " + sym)
		}
		return nil
	}
	d := device(srv, 0)
	h.MIG(d, 1)
	d.GpmMigSampleGetFunc = func(int, nvml.GpmSample) nvml.Return { panic("per-instance GPM on a driver without it") }
	collectOnce(t, g)
	h.Tick.Add(1)
	clk.add(5 * time.Second)
	s := collectOnce(t, g)
	if m := s.GPUs[0].MIG; len(m) != 1 || gpmOf(m[0]) != "-/-" || m[0].MemUsed == nil {
		t.Errorf("gpu 0 MIG: %s", asJSON(m))
	}
	if s.GPUs[1].SMActive == nil {
		t.Errorf("gpu 1 without MIG lost its GPM: %s", asJSON(s.GPUs[1]))
	}
}
