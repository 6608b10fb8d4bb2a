package collect

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// burnCPU keeps a core busy until the kernel's CPU counters have moved:
// busy time by two clock ticks, and every core's total by at least one,
// so the total and each per-core figure have a delta without the test
// depending on how long that takes (on a loaded machine the two busy ticks
// can pass before an idle core's counters tick once).
func burnCPU(t *testing.T) {
	t.Helper()
	busy := func(ts []cpu.TimesStat) (sum float64) {
		for _, c := range ts {
			sum += c.User + c.System
		}
		return sum
	}
	start, err := cpu.Times(true)
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := 0; ; i++ {
		x += i * i
		if i%1_000_000 != 0 {
			continue
		}
		now, err := cpu.Times(true)
		if err != nil {
			t.Fatal(err)
		}
		if len(now) != len(start) { // a CPU came or went: start over
			start = now
			continue
		}
		moved := busy(now) > busy(start)+0.02
		for c := 0; moved && c < len(now); c++ {
			_, moved = busyPercent(start[c], now[c])
		}
		if moved {
			break
		}
	}
	_ = x
}

func TestHostCollectRealProc(t *testing.T) {
	h := NewHost(nil)
	burnCPU(t)
	var s metrics.Sample
	if err := h.Collect(context.Background(), &s); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	sys := s.System
	if sys == nil {
		t.Fatal("no system section")
	}

	vm, err := mem.VirtualMemory()
	if err != nil {
		t.Fatal(err)
	}
	if sys.MemTotal != vm.Total {
		t.Errorf("MemTotal = %d, gopsutil says %d", sys.MemTotal, vm.Total)
	}
	if sys.MemUsed == 0 || sys.MemUsed > sys.MemTotal {
		t.Errorf("MemUsed = %d of %d", sys.MemUsed, sys.MemTotal)
	}
	sw, err := mem.SwapMemory()
	if err != nil {
		t.Fatal(err)
	}
	if sys.SwapTotal != sw.Total || sys.SwapUsed > sys.SwapTotal {
		t.Errorf("swap = %d/%d, gopsutil says total %d", sys.SwapUsed, sys.SwapTotal, sw.Total)
	}
	root, err := disk.Usage("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(sys.Disks) != 1 || sys.Disks[0].Mount != "/" || sys.Disks[0].Total != root.Total {
		t.Errorf("disks = %+v, gopsutil says / has %d bytes", sys.Disks, root.Total)
	} else if d := sys.Disks[0]; d.Used == 0 || d.Used > d.Total {
		t.Errorf("disk used = %d of %d", d.Used, d.Total)
	}
	up, err := host.Uptime()
	if err != nil {
		t.Fatal(err)
	}
	if sys.Uptime == 0 || sys.Uptime > up || up-sys.Uptime > 5 {
		t.Errorf("uptime = %d, gopsutil says %d", sys.Uptime, up)
	}

	if sys.CPUPercent == nil {
		t.Fatal("no CPU percent after the counters moved")
	}
	if p := *sys.CPUPercent; p <= 0 || p > 100 {
		t.Errorf("CPU percent = %v after burning CPU, want within (0, 100]", p)
	}
	cores, err := cpu.Times(true)
	if err != nil {
		t.Fatal(err)
	}
	if len(sys.PerCore) != len(cores) {
		t.Errorf("per-core has %d entries, the machine %d CPUs", len(sys.PerCore), len(cores))
	}
	for i, p := range sys.PerCore {
		if p < 0 || p > 100 {
			t.Errorf("core %d at %v%%", i, p)
		}
	}
	for name, l := range map[string]*float64{"load1": sys.Load1, "load5": sys.Load5, "load15": sys.Load15} {
		if l == nil || *l < 0 {
			t.Errorf("%s = %v", name, l)
		}
	}
	if sys.DiskReadBps != nil || sys.DiskWriteBps != nil || sys.NetRxBps != nil || sys.NetTxBps != nil {
		t.Errorf("rates on the first call, with nothing to compare: %v %v %v %v",
			sys.DiskReadBps, sys.DiskWriteBps, sys.NetRxBps, sys.NetTxBps)
	}

	burnCPU(t)
	var s2 metrics.Sample
	if err := h.Collect(context.Background(), &s2); err != nil {
		t.Fatalf("second Collect: %v", err)
	}
	for name, r := range map[string]*float64{
		"disk read": s2.System.DiskReadBps, "disk write": s2.System.DiskWriteBps,
		"net rx": s2.System.NetRxBps, "net tx": s2.System.NetTxBps,
	} {
		if r == nil {
			t.Errorf("%s rate absent on the second call", name)
		} else if *r < 0 {
			t.Errorf("%s rate = %v", name, *r)
		}
	}
	if s2.System.CPUPercent == nil || *s2.System.CPUPercent <= 0 || *s2.System.CPUPercent > 100 {
		t.Errorf("second CPU percent = %v", s2.System.CPUPercent)
	}
}

func TestHostBadMountKeepsTheRest(t *testing.T) {
	h := NewHost([]string{"/", "/no/such/mount"})
	var s metrics.Sample
	err := h.Collect(context.Background(), &s)
	if err == nil || !strings.Contains(err.Error(), "/no/such/mount") {
		t.Fatalf("error = %v, want one naming the missing mount", err)
	}
	if s.System == nil || len(s.System.Disks) != 1 || s.System.Disks[0].Mount != "/" || s.System.MemTotal == 0 {
		t.Fatalf("section lost with one bad mount: %+v", s.System)
	}
}

// A mount whose statfs hangs (a dead NFS server) costs neither the rest
// of the section nor a second thread on the next collection.
func TestHostStuckMountKeepsTheRest(t *testing.T) {
	h := NewHost([]string{"/", "/nfs", "/"})
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	calls := 0
	h.usage = func(ctx context.Context, path string) (*disk.UsageStat, error) {
		if path != "/nfs" {
			return disk.UsageWithContext(ctx, path)
		}
		calls++ // under smu's protection: one statfs of /nfs at a time
		<-release
		return &disk.UsageStat{Path: path, Total: 1000, Used: 10}, nil
	}
	collect := func() (*metrics.System, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var s metrics.Sample
		err := h.Collect(ctx, &s)
		return s.System, err
	}
	for _, want := range []string{"host disk /nfs: no answer in time", "host disk /nfs: an earlier statfs has not returned"} {
		sys, err := collect()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Collect error = %v, want %q", err, want)
		}
		if sys == nil || sys.MemTotal == 0 || len(sys.Disks) != 1 || sys.Disks[0].Mount != "/" {
			t.Fatalf("section with a stuck mount = %+v", sys)
		}
	}
	unblock()
	for {
		h.smu.Lock()
		busy := h.statting["/nfs"]
		h.smu.Unlock()
		if !busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	sys, err := collect()
	if err != nil || len(sys.Disks) != 2 || sys.Disks[1] != (metrics.Disk{Mount: "/nfs", Used: 10, Total: 1000}) {
		t.Errorf("after the statfs returned: err %v, disks %+v", err, sys.Disks)
	}
	if calls != 2 {
		t.Errorf("/nfs was statted %d times, want 2 (none while the first hung)", calls)
	}
}

func TestHostRefusesOverlappingCollections(t *testing.T) {
	h := NewHost(nil)
	h.mu.Lock() // an abandoned collection still running
	var s metrics.Sample
	err := h.Collect(context.Background(), &s)
	h.mu.Unlock()
	if err == nil || s.System != nil {
		t.Fatalf("overlapping Collect = %v, section %+v", err, s.System)
	}
}

func TestBusyPercent(t *testing.T) {
	base := cpu.TimesStat{User: 100, System: 50, Idle: 800, Iowait: 50}
	cases := []struct {
		name string
		b    cpu.TimesStat
		want float64
		ok   bool
	}{
		{"idle", cpu.TimesStat{User: 100, System: 50, Idle: 900, Iowait: 50}, 0, true},
		{"half", cpu.TimesStat{User: 150, System: 50, Idle: 850, Iowait: 50}, 50, true},
		{"iowait is idle", cpu.TimesStat{User: 100, System: 50, Idle: 800, Iowait: 150}, 0, true},
		{"all busy", cpu.TimesStat{User: 180, System: 70, Idle: 800, Iowait: 50}, 100, true},
		{"steal counts as busy", cpu.TimesStat{User: 100, System: 50, Idle: 850, Iowait: 50, Steal: 50}, 50, true},
		{"guest is inside user", cpu.TimesStat{User: 200, System: 50, Idle: 800, Iowait: 50, Guest: 100}, 100, true},
		{"no time passed", base, 0, false},
		{"counters went back", cpu.TimesStat{User: 10, Idle: 10}, 0, false},
	}
	for _, tc := range cases {
		got, ok := busyPercent(base, tc.b)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: busyPercent = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRate(t *testing.T) {
	if r := rate(100, 300, 2); r == nil || *r != 100 {
		t.Errorf("rate(100, 300, 2s) = %v", r)
	}
	if r := rate(300, 100, 2); r != nil {
		t.Errorf("a counter that went back gave %v", *r)
	}
}

// BenchmarkHostCollect measures the CPU time of one host collection.
func BenchmarkHostCollect(b *testing.B) {
	h := NewHost(nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var s metrics.Sample
		if err := h.Collect(ctx, &s); err != nil {
			b.Fatal(err)
		}
	}
}
