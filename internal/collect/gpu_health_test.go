//go:build cgo

package collect

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/sysperf/sysperf/internal/collect/gpumock"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// clock is a test clock the collector reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// healthyGPU is a GPU collector on an eight-H200 mock whose every health
// field answers (events from es), reading time from a clock the test moves;
// the collector closes when the test ends.
func healthyGPU(tb testing.TB, es nvml.EventSet) (*server.Server, *gpumock.H200, *clock, *GPU) {
	tb.Helper()
	srv := newServer()
	h := &gpumock.H200{}
	h.Healthy(srv, es)
	clk := newClock()
	g := NewGPU(srv, nil, clk.now)
	tb.Cleanup(func() { g.Close() })
	return srv, h, clk, g
}

func collectOnce(t *testing.T, g *GPU) *metrics.Sample {
	t.Helper()
	var s metrics.Sample
	if err := g.Collect(context.Background(), &s); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return &s
}

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestGPUHealthFields(t *testing.T) {
	srv, h, clk, g := healthyGPU(t, nil)

	first := collectOnce(t, g)
	g2 := first.GPUs[2]
	// Rates and GPM figures need two readings: the first has none.
	if g2.PCIe == nil || g2.PCIe.TxBps != nil || g2.NVLinks[0].TxBps != nil || g2.SMActive != nil {
		t.Errorf("first sample has interval figures: %s", asJSON(g2))
	}

	h.Tick.Add(1)
	clk.add(5 * time.Second)
	s := collectOnce(t, g)
	for i, got := range s.GPUs {
		d := device(srv, i)
		links := make([]metrics.NVLink, gpumock.NVLinks)
		for l := range links {
			links[l] = metrics.NVLink{Link: l, Up: ptrTo(l != gpumock.NVLinks-1),
				TxBps: ptrTo(float64(gpumock.NVTxTickKiB*1024*(l+1)) / 5), RxBps: ptrTo(float64(gpumock.NVRxTickKiB*1024) / 5)}
		}
		want := metrics.GPU{
			Persistence: ptrTo(true), Driver: "550.54.15", CUDA: "12.4", VBIOS: "96.00.74.00.1C",
			ECC: &metrics.ECC{
				Enabled:           ptrTo(true),
				VolatileCorrected: ptrTo(uint64(12)), VolatileUncorrected: ptrTo(uint64(i % 2)),
				AggregateCorrected: ptrTo(uint64(340)), AggregateUncorrected: ptrTo(uint64(2)),
				RemappedCorrectable: ptrTo(uint64(3)), RemappedUncorrectable: ptrTo(uint64(1)),
				RemapPending: ptrTo(i == 2), RemapFailure: ptrTo(i == 6),
			},
			PCIe: &metrics.PCIe{
				Gen: ptrTo(5), MaxGen: ptrTo(5), Width: ptrTo(16), MaxWidth: ptrTo(16),
				TxBps: ptrTo(1e9), RxBps: ptrTo(4e8), Replays: ptrTo(uint64(i)), Degraded: ptrTo(false),
			},
			NVLinks:  links,
			MIGMode:  ptrTo(false),
			SMActive: ptrTo(60 + float64(i)), SMOccupancy: ptrTo(25.5), TensorActive: ptrTo(41.25),
		}
		// The fields of the first test are checked there.
		got.Index, got.UUID, got.Name, got.Util, got.MemUtil, got.MemUsed, got.MemTotal = 0, "", "", nil, nil, nil, nil
		got.Temp, got.Power, got.PowerLimit, got.SMClock, got.MemClock, got.Fan, got.PState = nil, nil, nil, nil, nil, nil, nil
		got.ThrottleMask, got.Throttle, got.Energy, got.Processes = nil, nil, nil, nil
		if gj, wj := asJSON(got), asJSON(want); gj != wj {
			t.Errorf("gpu %d (%s)\n got %s\nwant %s", i, d.UUID, gj, wj)
		}
	}

	// The wire keeps every figure.
	s.Host, s.Boot, s.TS = "h", "b", 1
	b, err := metrics.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := metrics.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.GPUs, s.GPUs) {
		t.Errorf("msgpack round trip changed the GPUs:\n got %s\nwant %s", asJSON(back.GPUs), asJSON(s.GPUs))
	}
}

// The once-a-minute fields are read on the first collection and a minute
// later, not on every one; the per-collection ones on each.
func TestGPUSlowFieldsOncePerMinute(t *testing.T) {
	_, h, clk, g := healthyGPU(t, nil)
	collectOnce(t, g)
	perRead := h.Slow.Load()
	if perRead == 0 {
		t.Fatal("no slow field read")
	}
	calls := h.Calls.Load()
	for range 11 {
		clk.add(5 * time.Second)
		h.Tick.Add(1)
		collectOnce(t, g)
	}
	if n := h.Slow.Load(); n != perRead {
		t.Errorf("slow fields read %d times in 55 s, want once (%d calls)", n/perRead, perRead)
	}
	// The fast path: volatile ECC ×2, PCIe gen and width, one field-value
	// call, one GPM sample and one GPM metrics call per GPU.
	fast := (h.Calls.Load() - calls) / 11
	if want := int64(8 * 7); fast != want {
		t.Errorf("%d health calls per collection, want %d", fast, want)
	}
	clk.add(6 * time.Second)
	h.Tick.Add(1)
	collectOnce(t, g)
	if n := h.Slow.Load(); n != 2*perRead {
		t.Errorf("slow fields not read again after a minute: %d reads", n/perRead)
	}
}

func TestGPUPCIeDegraded(t *testing.T) {
	srv := newServer()
	var h gpumock.H200
	h.Healthy(srv, nil)
	// GPU 1: x8 of x16 (a bad riser or slot). GPU 3: Gen1 while idle
	// (power saving, not a fault). GPU 4: Gen3 of Gen5 at 44 % busy.
	device(srv, 1).GetCurrPcieLinkWidthFunc = func() (int, nvml.Return) { return 8, nvml.SUCCESS }
	device(srv, 3).GetCurrPcieLinkGenerationFunc = func() (int, nvml.Return) { return 1, nvml.SUCCESS }
	device(srv, 3).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.SUCCESS }
	device(srv, 4).GetCurrPcieLinkGenerationFunc = func() (int, nvml.Return) { return 3, nvml.SUCCESS }
	g := NewGPU(srv, nil, nil)
	defer g.Close()
	s := collectOnce(t, g)
	for i, gpu := range s.GPUs {
		want := i == 1 || i == 4
		if gpu.PCIe == nil || gpu.PCIe.Degraded == nil || *gpu.PCIe.Degraded != want {
			t.Errorf("gpu %d: degraded want %v, pcie %s", i, want, asJSON(gpu.PCIe))
		}
	}
	if p := s.GPUs[1].PCIe; *p.Width != 8 || *p.MaxWidth != 16 {
		t.Errorf("gpu 1 link %s", asJSON(p))
	}
}

// Each health field a device answers NOT_SUPPORTED for, on its own, is
// absent while the others stay.
func TestGPUHealthFieldNotSupported(t *testing.T) {
	srv := newServer()
	var h gpumock.H200
	h.Healthy(srv, nil)
	ns := nvml.ERROR_NOT_SUPPORTED
	d := device(srv, 0)
	d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, ns }
	d.GetTotalEccErrorsFunc = func(k nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
		if c == nvml.AGGREGATE_ECC {
			return 0, ns
		}
		return 4, nvml.SUCCESS
	}
	d.GetMaxPcieLinkWidthFunc = func() (int, nvml.Return) { return 0, ns }
	d.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return 0, ns }
	inner := d.GetFieldValuesFunc
	d.GetFieldValuesFunc = func(fs []nvml.FieldValue) nvml.Return {
		r := inner(fs)
		for j := range fs {
			if fs[j].FieldId == nvml.FI_DEV_PCIE_COUNT_TX_BYTES || fs[j].FieldId == nvml.FI_DEV_PCIE_REPLAY_COUNTER ||
				fs[j].FieldId == nvml.FI_DEV_NVLINK_THROUGHPUT_DATA_RX {
				fs[j].NvmlReturn = uint32(ns)
			}
		}
		return r
	}
	d.GpmQueryDeviceSupportFunc = func() (nvml.GpmSupport, nvml.Return) { return nvml.GpmSupport{}, ns }
	d.GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, ns }
	clk := newClock()
	g := NewGPU(srv, nil, clk.now)
	defer g.Close()
	collectOnce(t, g)
	h.Tick.Add(1)
	clk.add(5 * time.Second)
	s := collectOnce(t, g)
	got := s.GPUs[0]

	want := `{"enabled":true,"volatile_corrected":4,"volatile_uncorrected":4}`
	if j := asJSON(got.ECC); j != want {
		t.Errorf("ecc %s, want %s", j, want)
	}
	// Width unknown against its maximum and the GPU busy at Gen5 of Gen5:
	// not degraded on what is known.
	want = `{"gen":5,"max_gen":5,"width":16,"rx_bytes_per_s":400000000,"degraded":false}`
	if j := asJSON(got.PCIe); j != want {
		t.Errorf("pcie %s, want %s", j, want)
	}
	if l := got.NVLinks[3]; l.RxBps != nil || l.TxBps == nil || l.Up == nil {
		t.Errorf("nvlink 3 %s", asJSON(l))
	}
	if got.Persistence != nil || got.MIGMode != nil || got.SMActive != nil || got.TensorActive != nil {
		t.Errorf("unsupported fields present: persistence %v mig %v gpm %v/%v", got.Persistence, got.MIGMode, got.SMActive, got.TensorActive)
	}
	if other := s.GPUs[1]; other.SMActive == nil || other.ECC.RemapPending == nil {
		t.Errorf("gpu 1 lost its fields: %s", asJSON(other))
	}
}

// migDevice is a MIG device of GPU instance gi, compute instance ci.
func migDevice(gi, ci int, used uint64, procs ...nvml.ProcessInfo) *mock.Device {
	return &mock.Device{
		GetGpuInstanceIdFunc:     func() (int, nvml.Return) { return gi, nvml.SUCCESS },
		GetComputeInstanceIdFunc: func() (int, nvml.Return) { return ci, nvml.SUCCESS },
		GetUUIDFunc: func() (string, nvml.Return) {
			return "MIG-" + string(rune('a'+gi)), nvml.SUCCESS
		},
		GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
			return nvml.Memory{Total: 35_433_480_192, Used: used}, nvml.SUCCESS
		},
		GetComputeRunningProcessesFunc: func() ([]nvml.ProcessInfo, nvml.Return) { return procs, nvml.SUCCESS },
	}
}

func TestGPUMIGInstances(t *testing.T) {
	srv := newServer()
	var h gpumock.H200
	h.Healthy(srv, nil)
	d := device(srv, 0)
	d.GetMigModeFunc = func() (int, int, nvml.Return) { return nvml.DEVICE_MIG_ENABLE, nvml.DEVICE_MIG_ENABLE, nvml.SUCCESS }
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
	// Two instances of the seven slots: a 3g one running a model server and
	// a notebook, a 1g one running one job; the parent lists all three.
	migs := map[int]nvml.Device{
		0: migDevice(1, 0, 30<<30, nvml.ProcessInfo{Pid: 4001, UsedGpuMemory: 20 << 30}, nvml.ProcessInfo{Pid: 4002, UsedGpuMemory: notAvailable}),
		3: migDevice(9, 0, 1<<30, nvml.ProcessInfo{Pid: 4003, UsedGpuMemory: 1 << 29}),
	}
	d.GetMigDeviceHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if m, ok := migs[i]; ok {
			return m, nvml.SUCCESS
		}
		return nil, nvml.ERROR_NOT_FOUND
	}
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{
			{Pid: 4001, UsedGpuMemory: 20 << 30, GpuInstanceId: 1},
			{Pid: 4002, UsedGpuMemory: notAvailable, GpuInstanceId: 1},
			{Pid: 4003, UsedGpuMemory: 1 << 29, GpuInstanceId: 9},
		}, nvml.SUCCESS
	}
	g := NewGPU(srv, nil, nil)
	defer g.Close()
	s := collectOnce(t, g)
	got := s.GPUs[0]
	if got.MIGMode == nil || !*got.MIGMode {
		t.Fatalf("mig mode %v", got.MIGMode)
	}
	want := `[{"gpu_instance":1,"compute_instance":0,"uuid":"MIG-b","vram_used_bytes":32212254720,"vram_total_bytes":35433480192,` +
		`"processes":[{"pid":4001,"vram_used_bytes":21474836480},{"pid":4002}]},` +
		`{"gpu_instance":9,"compute_instance":0,"uuid":"MIG-j","vram_used_bytes":1073741824,"vram_total_bytes":35433480192,` +
		`"processes":[{"pid":4003,"vram_used_bytes":536870912}]}]`
	if j := asJSON(got.MIG); j != want {
		t.Errorf("mig\n got %s\nwant %s", j, want)
	}
	if len(got.Processes) != 3 {
		t.Errorf("parent processes %s", asJSON(got.Processes))
	}
	if s.GPUs[1].MIG != nil || s.GPUs[1].MIGMode == nil || *s.GPUs[1].MIGMode {
		t.Errorf("gpu 1 without MIG: mode %v, instances %v", s.GPUs[1].MIGMode, s.GPUs[1].MIG)
	}
}

// events is an NVML event set fed by the test. Wait blocks for at most its
// timeout, as NVML's does, and counts the waits begun.
type events struct {
	mock.EventSet
	ch      chan nvml.EventData
	waits   atomic.Int64
	maxWait atomic.Uint32
	freed   atomic.Bool
}

func newEvents() *events {
	e := &events{ch: make(chan nvml.EventData, 16)}
	e.WaitFunc = func(ms uint32) (nvml.EventData, nvml.Return) {
		e.waits.Add(1)
		if ms > e.maxWait.Load() {
			e.maxWait.Store(ms)
		}
		timer := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer timer.Stop()
		select {
		case ev := <-e.ch:
			return ev, nvml.SUCCESS
		case <-timer.C:
			return nvml.EventData{}, nvml.ERROR_TIMEOUT
		}
	}
	e.FreeFunc = func() nvml.Return { e.freed.Store(true); return nvml.SUCCESS }
	return e
}

func xid(d nvml.Device, code uint64, gi, ci uint32) nvml.EventData {
	return nvml.EventData{Device: d, EventType: nvml.EventTypeXidCriticalError, EventData: code, GpuInstanceId: gi, ComputeInstanceId: ci}
}

func TestGPUXIDEvents(t *testing.T) {
	srv := newServer()
	var h gpumock.H200
	es := newEvents()
	h.Healthy(srv, es)
	clk := newClock()
	g := NewGPU(srv, nil, clk.now)
	collectOnce(t, g) // initialises NVML and starts the watcher
	if g.xids == nil {
		t.Fatal("no XID watcher")
	}

	d1, d5 := device(srv, 1), device(srv, 5)
	t0 := clk.now().UnixNano()
	// GPU 1 falls off the bus and says so three times; a MIG instance of
	// GPU 1 hits an uncontained ECC error; GPU 5 reports a contained one.
	for _, ev := range []nvml.EventData{
		xid(d1, 79, noInstance, noInstance),
		xid(d1, 79, noInstance, noInstance),
		xid(d1, 95, 2, 0),
		xid(d5, 94, noInstance, noInstance),
		xid(d1, 79, noInstance, noInstance),
		// A non-XID event on the same set is not an XID.
		{Device: d5, EventType: nvml.EventTypeSingleBitEccError, EventData: 0},
	} {
		es.ch <- ev
	}
	poll.Until(t, "the watcher to take every event", func() bool {
		w := g.xids
		w.mu.Lock()
		defer w.mu.Unlock()
		n := 0
		for _, x := range w.pending {
			n += x.Count
		}
		return n == 5 && len(es.ch) == 0
	})

	clk.add(5 * time.Second)
	s := collectOnce(t, g)
	want := map[int]string{
		1: `[{"code":79,"ts":` + itoa(t0) + `,"count":3},{"code":95,"ts":` + itoa(t0) + `,"count":1,"gpu_instance":2,"compute_instance":0}]`,
		5: `[{"code":94,"ts":` + itoa(t0) + `,"count":1}]`,
	}
	for i, gpu := range s.GPUs {
		if w, ok := want[i]; ok {
			if j := asJSON(gpu.XIDs); j != w {
				t.Errorf("gpu %d xids\n got %s\nwant %s", i, j, w)
			}
		} else if gpu.XIDs != nil {
			t.Errorf("gpu %d has XIDs %s", i, asJSON(gpu.XIDs))
		}
	}
	// Taken once: the next sample has none.
	for _, gpu := range collectOnce(t, g).GPUs {
		if gpu.XIDs != nil {
			t.Errorf("gpu %d XIDs repeated: %s", gpu.Index, asJSON(gpu.XIDs))
		}
	}
	if ms := es.maxWait.Load(); ms == 0 || ms > 1000 {
		t.Errorf("a wait of %d ms: shutdown would wait that long", ms)
	}

	// Close returns once the watcher has ended: at most the one wait in
	// progress, and no wait begins after.
	done := g.xids.done
	before := es.waits.Load()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	after := es.waits.Load()
	if after > before+1 {
		t.Errorf("%d waits began during Close, want at most the one in progress", after-before)
	}
	select {
	case <-done:
	default:
		t.Fatal("watcher goroutine still running after Close")
	}
	if !es.freed.Load() {
		t.Error("event set not freed")
	}
	poll.Until(t, "no wait after Close", func() bool { return es.waits.Load() == after })
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

// A driver without XID events, and devices without them, leave the
// collector without a watcher and the samples without errors.
func TestGPUXIDNotSupported(t *testing.T) {
	srv := newServer()
	var h gpumock.H200
	h.Healthy(srv, newEvents())
	for i := range srv.Devices {
		device(srv, i).GetSupportedEventTypesFunc = func() (uint64, nvml.Return) { return nvml.EventTypeSingleBitEccError, nvml.SUCCESS }
	}
	g := NewGPU(srv, nil, nil)
	defer g.Close()
	collectOnce(t, g)
	if g.xids != nil {
		t.Error("watcher started without any device supporting XID events")
	}
}

// BenchmarkGPUCollect is one collection of eight H200s on the mock, every
// health field answering: the collector's own cost per GPU, and the NVML
// calls it makes per GPU, the figure that sets the cost on real hardware.
func BenchmarkGPUCollect(b *testing.B) {
	srv, h, clk, g := healthyGPU(b, newEvents())
	benchCollect(b, srv, h, clk, g)
}

// benchCollect runs collections of srv's devices, reporting the time and
// the health calls per GPU, and returns the last sample.
func benchCollect(b *testing.B, srv *server.Server, h *gpumock.H200, clk *clock, g *GPU) *metrics.Sample {
	var s metrics.Sample
	ctx := context.Background()
	if err := g.Collect(ctx, &s); err != nil {
		b.Fatal(err)
	}
	calls := h.Calls.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clk.add(5 * time.Second)
		h.Tick.Add(1)
		if err := g.Collect(ctx, &s); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N * len(srv.Devices))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/gpu")
	b.ReportMetric(float64(h.Calls.Load()-calls)/n, "health-calls/gpu")
	return &s
}

// BenchmarkGPUCollectMIG is BenchmarkGPUCollect with every GPU in MIG
// mode, split into seven instances (GPU instances 7 to 13, the ids of
// seven 1g instances on an H200).
func BenchmarkGPUCollectMIG(b *testing.B) {
	srv, h, clk, g := healthyGPU(b, newEvents())
	for i := range srv.Devices {
		h.MIG(device(srv, i), 7, 8, 9, 10, 11, 12, 13)
	}
	s := benchCollect(b, srv, h, clk, g)
	if m := s.GPUs[7].MIG; len(m) != 7 || m[6].SMActive == nil {
		b.Fatalf("gpu 7 MIG instances: %s", asJSON(m))
	}
}

// A GPM sample the driver refuses (no privilege, MIG on) is reported once
// and GPM is left off, not failed every collection.
func TestGPUGPMRefusedOnce(t *testing.T) {
	srv := newServer()
	var h gpumock.H200
	h.Healthy(srv, nil)
	alloc := srv.GpmSampleAllocFunc
	srv.GpmSampleAllocFunc = func() (nvml.GpmSample, nvml.Return) {
		s, r := alloc()
		s.(*gpumock.GPMSample).GetFunc = func(nvml.Device) nvml.Return { return nvml.ERROR_NO_PERMISSION }
		return s, r
	}
	g := NewGPU(srv, nil, nil)
	defer g.Close()
	var s metrics.Sample
	err := g.Collect(context.Background(), &s)
	if err == nil || !strings.Contains(err.Error(), "gpu 0 gpm sample (GPM off until NVML restarts): ERROR_NO_PERMISSION") {
		t.Fatalf("err = %v", err)
	}
	if err := g.Collect(context.Background(), &s); err != nil {
		t.Errorf("refused GPM reported again: %v", err)
	}
	if s.GPUs[0].SMActive != nil || s.GPUs[0].ECC == nil {
		t.Errorf("gpu 0: %s", asJSON(s.GPUs[0]))
	}
}

// The watcher keeps a bounded number of distinct XIDs, and keeps those of
// a GPU the collection did not read for a later one.
func TestXIDWatchBoundsAndKeeps(t *testing.T) {
	srv := newServer()
	a, b := device(srv, 0), device(srv, 1)
	w := &xidWatch{log: slog.New(slog.DiscardHandler), now: newClock().now, pending: map[xidKey]*metrics.XID{}}
	w.add(xid(b, 79, noInstance, noInstance))
	for code := range uint64(maxPendingXIDs + 44) {
		w.add(xid(a, code, noInstance, noInstance))
		w.add(xid(a, code, noInstance, noInstance)) // a repeat is counted, not kept apart
	}
	got, dropped := w.take(map[string]int{a.UUID: 0})
	if len(got[a.UUID]) != maxPendingXIDs-1 || dropped != 90 || got[a.UUID][0].Count != 2 {
		t.Errorf("%d XIDs of GPU 0 kept, %d dropped; want %d and 90", len(got[a.UUID]), dropped, maxPendingXIDs-1)
	}
	got, dropped = w.take(map[string]int{b.UUID: 1})
	if asJSON(got) != `{"`+b.UUID+`":[{"code":79,"ts":`+itoa(newClock().now().UnixNano())+`,"count":1}]}` || dropped != 0 {
		t.Errorf("GPU 1's XID not kept for the collection that reads it: %s, %d dropped", asJSON(got), dropped)
	}
}

// A device whose handle could not be taken at first is registered for XID
// events on the running watcher once its handle comes, and only then.
func TestGPUXIDLateDevice(t *testing.T) {
	srv := newServer()
	var h gpumock.H200
	es := newEvents()
	h.Healthy(srv, es)
	var registered [8]atomic.Int32
	for i := range srv.Devices {
		device(srv, i).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { registered[i].Add(1); return nvml.SUCCESS }
	}
	handle := srv.DeviceGetHandleByIndexFunc
	lost := true
	srv.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if i == 5 && lost {
			return nil, nvml.ERROR_UNKNOWN
		}
		return handle(i)
	}
	clk := newClock()
	g := NewGPU(srv, nil, clk.now)
	defer g.Close()
	var s metrics.Sample
	if err := g.Collect(context.Background(), &s); err == nil || len(s.GPUs) != 7 {
		t.Fatalf("first collection: %d GPUs, err %v", len(s.GPUs), err)
	}
	if registered[5].Load() != 0 || registered[4].Load() != 1 {
		t.Fatalf("registrations %d, %d", registered[4].Load(), registered[5].Load())
	}
	lost = false
	clk.add(5 * time.Second)
	h.Tick.Add(1)
	collectOnce(t, g)
	for i := range registered {
		if n := registered[i].Load(); n != 1 {
			t.Errorf("gpu %d registered %d times, want once", i, n)
		}
	}
	es.ch <- xid(device(srv, 5), 48, noInstance, noInstance)
	var got []metrics.XID
	poll.Until(t, "XID 48 of GPU 5 in a sample", func() bool {
		clk.add(5 * time.Second)
		h.Tick.Add(1)
		got = collectOnce(t, g).GPUs[5].XIDs
		return got != nil
	})
	if len(got) != 1 || got[0].Code != 48 {
		t.Errorf("gpu 5 XIDs %s", asJSON(got))
	}
}

// Drivers older than row remapping (R460), MIG (R450) or GPM (R520) lack
// those calls, which go-nvml would call through a null pointer: the
// collector must not call them, and reads the rest.
func TestGPUHealthOldDriverSymbols(t *testing.T) {
	srv := newServer()
	var h gpumock.H200
	h.Healthy(srv, nil)
	srv.LookupSymbolFunc = func(sym string) error {
		switch sym {
		case "nvmlDeviceGetRemappedRows", "nvmlGpmMetricsGet", "nvmlDeviceGetMigDeviceHandleByIndex":
			return errors.New("undefined symbol: " + sym)
		}
		return nil
	}
	for i := range srv.Devices {
		d := device(srv, i)
		d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { panic("remapped rows on a driver without it") }
		d.GpmQueryDeviceSupportFunc = func() (nvml.GpmSupport, nvml.Return) { panic("GPM on a driver without it") }
		d.GetMigModeFunc = func() (int, int, nvml.Return) { panic("MIG on a driver without it") }
	}
	g := NewGPU(srv, nil, nil)
	defer g.Close()
	got := collectOnce(t, g).GPUs[0]
	if got.ECC == nil || got.ECC.VolatileCorrected == nil || got.ECC.RemapPending != nil || got.MIGMode != nil || got.PCIe == nil {
		t.Errorf("gpu 0: %s", asJSON(got))
	}
}

// BenchmarkGPUCollectNVML is BenchmarkGPUCollect on the machine's own
// driver, for a GPU machine: the real cost of a collection per GPU. It
// logs the last sample's first GPU, health fields included. Without NVML
// it skips.
func BenchmarkGPUCollectNVML(b *testing.B) {
	g := NewGPU(nvml.New(), nil, nil)
	defer g.Close()
	var s metrics.Sample
	ctx := context.Background()
	if err := g.Collect(ctx, &s); err != nil && len(s.GPUs) == 0 {
		b.Skipf("no GPU: %v", err)
	}
	var errs error
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		errs = g.Collect(ctx, &s)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(s.GPUs)), "ns/gpu")
	js, _ := json.MarshalIndent(s.GPUs[0], "", "  ")
	b.Logf("%d GPUs; field errors: %v\n%s", len(s.GPUs), errs, js)
}

// A field the device answered NOT_SUPPORTED for stays absent and is not
// asked for again (on an H200 that answer costs as much as a reading);
// the device's other fields and the other devices are read as before.
func TestGPUNotSupportedAskedOnce(t *testing.T) {
	srv, h, clk, g := healthyGPU(t, nil)
	var fan, energy atomic.Int64
	d := device(srv, 1)
	d.GetFanSpeedFunc = func() (uint32, nvml.Return) { fan.Add(1); return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { energy.Add(1); return 0, nvml.ERROR_UNKNOWN }
	for i := range 4 {
		h.Tick.Add(1)
		clk.add(5 * time.Second)
		var s metrics.Sample
		err := g.Collect(context.Background(), &s)
		// A failure other than NOT_SUPPORTED is reported, and asked for
		// again next time.
		if err == nil || !strings.Contains(err.Error(), "gpu 1 energy") {
			t.Fatalf("collection %d: err %v, want the energy failure", i, err)
		}
		if got := s.GPUs[1]; got.Fan != nil || got.Temp == nil || s.GPUs[0].Fan == nil {
			t.Fatalf("collection %d: gpu 1 fan %v temp %v, gpu 0 fan %v", i, got.Fan, got.Temp, s.GPUs[0].Fan)
		}
	}
	if n := fan.Load(); n != 1 {
		t.Errorf("fan asked %d times in 4 collections, want once", n)
	}
	if n := energy.Load(); n != 4 {
		t.Errorf("energy asked %d times in 4 collections, want 4", n)
	}
}
