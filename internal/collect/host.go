package collect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Host reads the machine's CPU, memory, disks, network and uptime. CPU
// percent and the I/O rates are deltas against the previous call, so a
// collection never sleeps; the first call compares against a CPU baseline
// taken by NewHost and has no I/O rates yet.
type Host struct {
	mounts []string
	sysfs  string
	usage  func(ctx context.Context, path string) (*disk.UsageStat, error)

	// statting holds the mounts whose statfs has not returned: on a dead
	// NFS server it sleeps uninterruptibly, possibly for good, and must
	// cost neither the rest of the section nor a thread per tick.
	smu      sync.Mutex
	statting map[string]bool

	// mu serialises collections: an abandoned (timed-out) call may still
	// run when the next tick starts, and both would move the baseline.
	mu       sync.Mutex
	cpuTotal *cpu.TimesStat
	cpuCores []cpu.TimesStat
	io       *ioCounters
}

// ioCounters are the cumulative byte counters the rates are derived from.
type ioCounters struct {
	at                  time.Time
	diskOK, netOK       bool
	diskRead, diskWrite uint64
	netRx, netTx        uint64
}

// NewHost returns the host collector for the given mount points ("/" when
// none) and takes the CPU baseline its first collection compares against.
func NewHost(mounts []string) *Host {
	if len(mounts) == 0 {
		mounts = []string{"/"}
	}
	var uniq []string // "/,/data,/" is two mounts
	for _, m := range mounts {
		if !slices.Contains(uniq, m) {
			uniq = append(uniq, m)
		}
	}
	mounts = uniq
	h := &Host{mounts: mounts, sysfs: os.Getenv("HOST_SYS"), usage: disk.UsageWithContext, statting: map[string]bool{}}
	if h.sysfs == "" {
		h.sysfs = "/sys"
	}
	// A failed baseline only means the first collection has no CPU
	// percent; it takes the baseline itself then.
	h.cpuTotal, h.cpuCores, _ = readCPU(context.Background())
	return h
}

// Name is the collector's key in Sample.Errors.
func (h *Host) Name() string { return metrics.CollectorHost }

// Collect fills s.System. Memory, swap and uptime are required (their wire
// fields have no "absent"); any other part that fails is left out and its
// error returned with the section still published.
func (h *Host) Collect(ctx context.Context, s *metrics.Sample) error {
	if !h.mu.TryLock() {
		return errors.New("host: previous collection still running")
	}
	defer h.mu.Unlock()

	sys := &metrics.System{}
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return fmt.Errorf("host memory: %w", err)
	}
	// Available counts reclaimable cache, so Total-Available is what
	// applications hold; vm.Used excludes buffers/cache differently across
	// kernels.
	sys.MemTotal = vm.Total
	sys.MemUsed = vm.Total - min(vm.Available, vm.Total)
	sw, err := mem.SwapMemoryWithContext(ctx)
	if err != nil {
		return fmt.Errorf("host swap: %w", err)
	}
	sys.SwapTotal, sys.SwapUsed = sw.Total, sw.Used
	up, err := host.UptimeWithContext(ctx)
	if err != nil {
		return fmt.Errorf("host uptime: %w", err)
	}
	sys.Uptime = up

	var errs []error
	if err := h.cpuPercent(ctx, sys); err != nil {
		errs = append(errs, err)
	}
	if avg, err := load.AvgWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("host load: %w", err))
	} else {
		sys.Load1, sys.Load5, sys.Load15 = &avg.Load1, &avg.Load5, &avg.Load15
	}
	errs = append(errs, h.rates(ctx, sys)...)
	errs = append(errs, h.disks(ctx, sys)...)

	s.System = sys
	return errors.Join(errs...)
}

// disks reads the usage of every mount side by side and waits until all
// answered or a little before ctx's deadline, in configured order. A
// statfs that overruns goes on in the background and its mount is skipped
// until it returns.
func (h *Host) disks(ctx context.Context, sys *metrics.System) []error {
	ctx, cancel := finishBefore(ctx)
	defer cancel()
	type result struct {
		i   int
		u   *disk.UsageStat
		err error
	}
	results := make(chan result, len(h.mounts)) // buffered: a late statfs never blocks
	got := make([]*result, len(h.mounts))
	var errs []error
	pending := 0
	h.smu.Lock()
	for i, m := range h.mounts {
		if h.statting[m] {
			got[i] = &result{i: i, err: errors.New("an earlier statfs has not returned")}
			continue
		}
		h.statting[m] = true
		pending++
		go func() {
			u, err := h.usage(ctx, m)
			h.smu.Lock()
			delete(h.statting, m)
			h.smu.Unlock()
			results <- result{i, u, err}
		}()
	}
	h.smu.Unlock()
wait:
	for ; pending > 0; pending-- {
		select {
		case r := <-results:
			got[r.i] = &r
		case <-ctx.Done():
			break wait
		}
	}
	for i, m := range h.mounts {
		switch r := got[i]; {
		case r == nil:
			errs = append(errs, fmt.Errorf("host disk %s: no answer in time", m))
		case r.err != nil:
			errs = append(errs, fmt.Errorf("host disk %s: %w", m, r.err))
		default:
			sys.Disks = append(sys.Disks, metrics.Disk{Mount: m, Used: r.u.Used, Total: r.u.Total})
		}
	}
	return errs
}

func readCPU(ctx context.Context) (*cpu.TimesStat, []cpu.TimesStat, error) {
	total, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return nil, nil, fmt.Errorf("host cpu times: %w", err)
	}
	if len(total) != 1 {
		return nil, nil, fmt.Errorf("host cpu times: %d totals", len(total))
	}
	cores, err := cpu.TimesWithContext(ctx, true)
	if err != nil {
		return nil, nil, fmt.Errorf("host per-cpu times: %w", err)
	}
	return &total[0], cores, nil
}

func (h *Host) cpuPercent(ctx context.Context, sys *metrics.System) error {
	total, cores, err := readCPU(ctx)
	if err != nil {
		return err
	}
	prevTotal, prevCores := h.cpuTotal, h.cpuCores
	h.cpuTotal, h.cpuCores = total, cores
	if prevTotal == nil {
		return nil
	}
	if p, ok := busyPercent(*prevTotal, *total); ok {
		sys.CPUPercent = &p
	}
	// A CPU brought on- or offline changes the list; per-core figures
	// resume on the next call.
	if len(prevCores) == len(cores) {
		per := make([]float64, len(cores))
		for i := range cores {
			p, ok := busyPercent(prevCores[i], cores[i])
			if !ok {
				return nil
			}
			per[i] = p
		}
		sys.PerCore = per
	}
	return nil
}

// busyPercent is the share of the time between a and b the CPU was not
// idle. Guest time is already inside user and nice on Linux, so it is not
// counted twice. No time passed (two reads within one clock tick) means no
// figure, not zero.
func busyPercent(a, b cpu.TimesStat) (float64, bool) {
	all := func(t cpu.TimesStat) float64 {
		return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	}
	dAll := all(b) - all(a)
	if dAll <= 0 {
		return 0, false
	}
	dIdle := (b.Idle + b.Iowait) - (a.Idle + a.Iowait)
	p := (dAll - dIdle) / dAll * 100
	return min(100, max(0, p)), true
}

// rates derives disk and network byte rates from the counters' change since
// the previous call.
func (h *Host) rates(ctx context.Context, sys *metrics.System) []error {
	var errs []error
	cur := &ioCounters{at: time.Now()}
	if dc, err := disk.IOCountersWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("host disk io: %w", err))
	} else {
		for name, c := range dc {
			if h.physical(filepath.Join("block", name)) {
				cur.diskRead += c.ReadBytes
				cur.diskWrite += c.WriteBytes
			}
		}
		cur.diskOK = true
	}
	if nc, err := net.IOCountersWithContext(ctx, true); err != nil {
		errs = append(errs, fmt.Errorf("host net io: %w", err))
	} else {
		cur.netRx, cur.netTx = h.netBytes(nc)
		cur.netOK = true
	}

	prev := h.io
	h.io = cur
	if prev == nil {
		return errs
	}
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return errs
	}
	if prev.diskOK && cur.diskOK {
		sys.DiskReadBps = rate(prev.diskRead, cur.diskRead, dt)
		sys.DiskWriteBps = rate(prev.diskWrite, cur.diskWrite, dt)
	}
	if prev.netOK && cur.netOK {
		sys.NetRxBps = rate(prev.netRx, cur.netRx, dt)
		sys.NetTxBps = rate(prev.netTx, cur.netTx, dt)
	}
	return errs
}

// netBytes sums the physical interfaces: traffic of a container crosses
// its veth and a bridge before the NIC and would be counted three times.
// A machine with no physical NIC (a VM with virtio is physical; a
// container's netns is not) falls back to every interface but loopback.
func (h *Host) netBytes(nc []net.IOCountersStat) (rx, tx uint64) {
	var allRx, allTx uint64
	found := false
	for _, c := range nc {
		if c.Name == "lo" {
			continue
		}
		allRx += c.BytesRecv
		allTx += c.BytesSent
		if h.physical(filepath.Join("class", "net", c.Name)) {
			rx += c.BytesRecv
			tx += c.BytesSent
			found = true
		}
	}
	if !found {
		return allRx, allTx
	}
	return rx, tx
}

// physical reports whether a block device or interface sits on hardware:
// sysfs gives those a "device" link, while partitions, device-mapper, md,
// loop, zram, bridges and veth pairs have none, and summing them as well
// would count the same bytes more than once.
func (h *Host) physical(rel string) bool {
	_, err := os.Stat(filepath.Join(h.sysfs, rel, "device"))
	return err == nil
}

// rate is the per-second change of a counter; a counter that went back (a
// device removed, a reset) gives no figure for this interval.
func rate(prev, cur uint64, dt float64) *float64 {
	if cur < prev {
		return nil
	}
	r := float64(cur-prev) / dt
	return &r
}
