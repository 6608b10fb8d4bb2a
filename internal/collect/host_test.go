package collect

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/sysperf/sysperf/internal/poll"
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
	poll.Until(t, "the hung statfs of /nfs to return", func() bool {
		h.smu.Lock()
		defer h.smu.Unlock()
		return !h.statting["/nfs"]
	})
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

// fakeHost writes a /proc and a /sys holding the given files and returns a
// collector reading them. In sys, a path ending in "/device" is created as
// a directory: the link sysfs gives a device on hardware.
func fakeHost(t *testing.T, proc map[string]string, sys ...string) *Host {
	t.Helper()
	root := t.TempDir()
	for name, body := range proc {
		path := filepath.Join(root, "proc", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range sys {
		if err := os.MkdirAll(filepath.Join(root, "sys", dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOST_PROC", filepath.Join(root, "proc"))
	t.Setenv("HOST_SYS", filepath.Join(root, "sys"))
	h := NewHost(nil)
	t.Cleanup(func() { h.Close() })
	return h
}

const (
	fakeStat = `cpu  100 0 50 800 50 0 0 0 0 0
cpu0 60 0 20 400 20 0 0 0 0 0
cpu1 40 0 30 400 30 0 0 0 0 0
intr 12345 1 2 3
ctxt 999
`
	fakeDiskstats = `   8       0 sda 100 5 2000 50 200 10 4000 80 0 100 130 0 0 0 0 0 0
   8       1 sda1 90 5 1900 45 190 10 3900 75 0 95 120 0 0 0 0 0 0
 253       0 dm-0 90 0 1900 45 190 0 3900 75 0 95 120 0 0 0 0 0 0
 259       0 nvme0n1 10 0 100 1 20 0 300 2 0 3 3 0 0 0 0 0 0
`
	fakeNetDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 5000 50 0 0 0 0 0 0 5000 50 0 0 0 0 0 0
  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0
docker0:300 3 0 0 0 0 0 0 400 4 0 0 0 0 0 0
vethab12: 300 3 0 0 0 0 0 0 400 4 0 0 0 0 0 0
`
)

// The host section read from a fixed /proc, figure for figure: memory and
// swap from meminfo in bytes, only physical disks (not partitions or
// device-mapper over them) and physical NICs in the I/O counters.
func TestHostReadsProcFiles(t *testing.T) {
	proc := map[string]string{
		"meminfo": "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n" +
			"Buffers:          100000 kB\nCached:          2000000 kB\nSwapCached:            0 kB\n" +
			"SwapTotal:       2000000 kB\nSwapFree:        1500000 kB\nHugePages_Total:       0\n",
		"stat":      fakeStat,
		"diskstats": fakeDiskstats,
		"net/dev":   fakeNetDev,
	}
	h := fakeHost(t, proc, "block/sda/device", "block/nvme0n1/device", "class/net/eth0/device")
	var s metrics.Sample
	if err := h.Collect(context.Background(), &s); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	sys := s.System
	if sys.MemTotal != 16000000<<10 || sys.MemUsed != 12000000<<10 {
		t.Errorf("memory = %d used of %d, want %d of %d", sys.MemUsed, sys.MemTotal, 12000000<<10, 16000000<<10)
	}
	if sys.SwapTotal != 2000000<<10 || sys.SwapUsed != 500000<<10 {
		t.Errorf("swap = %d used of %d, want %d of %d", sys.SwapUsed, sys.SwapTotal, 500000<<10, 2000000<<10)
	}
	if sys.CPUPercent != nil {
		t.Errorf("CPU percent %v with the counters unchanged since the baseline", *sys.CPUPercent)
	}
	if h.cpuTotal.User != 1 || h.cpuTotal.Idle != 8 || len(h.cpuCores) != 2 || h.cpuCores[1].Iowait != 0.3 {
		t.Errorf("cpu times = %+v, cores %+v", h.cpuTotal, h.cpuCores)
	}
	// sda and nvme0n1: (2000+100) sectors read, (4000+300) written.
	if h.io.diskRead != 2100*512 || h.io.diskWrite != 4300*512 {
		t.Errorf("disk bytes = %d read, %d written; want %d, %d", h.io.diskRead, h.io.diskWrite, 2100*512, 4300*512)
	}
	if h.io.netRx != 1000 || h.io.netTx != 2000 {
		t.Errorf("net bytes = %d rx, %d tx; want eth0's 1000, 2000", h.io.netRx, h.io.netTx)
	}

	// A second reading with every counter moved gives rates and CPU.
	proc["stat"] = strings.NewReplacer("cpu  100 0 50 800", "cpu  150 0 50 850",
		"cpu0 60 0 20 400", "cpu0 110 0 20 400", "cpu1 40 0 30 400", "cpu1 40 0 30 450").Replace(fakeStat)
	proc["diskstats"] = strings.Replace(fakeDiskstats, "sda 100 5 2000", "sda 100 5 3000", 1)
	proc["net/dev"] = strings.Replace(fakeNetDev, "eth0: 1000", "eth0: 3000", 1)
	for _, name := range []string{"stat", "diskstats", "net/dev"} {
		if err := os.WriteFile(filepath.Join(h.proc, name), []byte(proc[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.io.at = h.io.at.Add(-2 * time.Second) // as if the tick was 2 s ago
	var s2 metrics.Sample
	if err := h.Collect(context.Background(), &s2); err != nil {
		t.Fatalf("second Collect: %v", err)
	}
	sys = s2.System
	show := func(p *float64) any { // the figure, not its address
		if p == nil {
			return nil
		}
		return *p
	}
	if sys.CPUPercent == nil || *sys.CPUPercent != 50 {
		t.Errorf("CPU percent = %v, want 50", show(sys.CPUPercent))
	}
	if len(sys.PerCore) != 2 || sys.PerCore[0] != 100 || sys.PerCore[1] != 0 {
		t.Errorf("per core = %v, want [100 0]", sys.PerCore)
	}
	// 1000 sectors in a little over 2 s; 2000 bytes likewise.
	if r := sys.DiskReadBps; r == nil || *r > 1000*512/2 || *r < 1000*512/2.5 {
		t.Errorf("disk read rate = %v, want about %d", show(r), 1000*512/2)
	}
	if r := sys.DiskWriteBps; r == nil || *r != 0 {
		t.Errorf("disk write rate = %v, want 0", show(r))
	}
	if r := sys.NetRxBps; r == nil || *r > 1000 || *r < 800 {
		t.Errorf("net rx rate = %v, want about 1000", show(r))
	}
}

// Without MemAvailable (kernels before 3.14) free, buffers and cache are
// what is available; without a physical NIC every interface but loopback
// counts.
func TestHostOldKernelAndNoPhysicalNIC(t *testing.T) {
	h := fakeHost(t, map[string]string{
		"meminfo":   "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
		"stat":      "cpu  1 2 3 4\ncpu0 1 2 3 4\n", // no iowait and after: 2.6.10
		"diskstats": fakeDiskstats,
		"net/dev":   fakeNetDev,
	})
	var s metrics.Sample
	if err := h.Collect(context.Background(), &s); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if s.System.MemUsed != 600<<10 || s.System.SwapTotal != 0 {
		t.Errorf("used = %d, swap %d; want %d, 0", s.System.MemUsed, s.System.SwapTotal, 600<<10)
	}
	if h.cpuTotal.Idle != 0.04 {
		t.Errorf("idle = %v", h.cpuTotal.Idle)
	}
	if h.io.netRx != 1600 || h.io.netTx != 2800 || h.io.diskRead != 0 {
		t.Errorf("net = %d/%d, disk read %d; want 1600/2800 (all but lo), 0 (no physical disk)",
			h.io.netRx, h.io.netTx, h.io.diskRead)
	}
}

// A file that cannot be parsed costs its own figures, named, and nothing
// else; missing memory figures fail the section, which cannot go without.
func TestHostBadProcFiles(t *testing.T) {
	good := map[string]string{
		"meminfo":   "MemTotal: 1000 kB\nMemAvailable: 500 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
		"stat":      fakeStat,
		"diskstats": fakeDiskstats,
		"net/dev":   fakeNetDev,
	}
	cases := []struct{ file, body, want string }{
		{"diskstats", "   8 0 sda 1 2 x\n", `host disk io: diskstats: bad line "   8 0 sda 1 2 x\n"`},
		{"net/dev", "h\nh\n  eth0 1 2 3\n", `host net io: net/dev: bad line "  eth0 1 2 3\n"`},
		{"stat", "cpu  1 2\n", `host cpu times: bad line "cpu  1 2\n"`},
		{"stat", "intr 1\n", "host cpu times: no total in stat"},
	}
	for _, tc := range cases {
		proc := maps.Clone(good)
		proc[tc.file] = tc.body
		h := fakeHost(t, proc)
		var s metrics.Sample
		err := h.Collect(context.Background(), &s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: error %v, want %q", tc.file, tc.body, err, tc.want)
		}
		if s.System == nil || s.System.MemTotal != 1000<<10 || len(s.System.Disks) != 1 {
			t.Errorf("%s %q: section lost: %+v", tc.file, tc.body, s.System)
		}
	}

	for _, meminfo := range []string{"MemFree: 1 kB\n", "MemTotal: 1000 kB\nMemAvailable: 500 kB\n"} {
		proc := maps.Clone(good)
		proc["meminfo"] = meminfo
		h := fakeHost(t, proc)
		var s metrics.Sample
		if err := h.Collect(context.Background(), &s); err == nil || s.System != nil {
			t.Errorf("meminfo %q: error %v, section %+v; want an error and no section", meminfo, err, s.System)
		}
	}
	h := fakeHost(t, map[string]string{"stat": fakeStat})
	var s metrics.Sample
	if err := h.Collect(context.Background(), &s); err == nil || !strings.Contains(err.Error(), "meminfo: no such file") {
		t.Errorf("no meminfo: error %v", err)
	}
}

func TestParseUint(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "42": 42, "18446744073709551615": 1<<64 - 1} {
		if got, ok := parseUint([]byte(in)); !ok || got != want {
			t.Errorf("parseUint(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-1", "1.5", "18446744073709551616", "12a"} {
		if got, ok := parseUint([]byte(in)); ok {
			t.Errorf("parseUint(%q) = %d, want not ok", in, got)
		}
	}
}
