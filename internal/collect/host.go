package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// physicalRefresh is how long the answer to "is this device or interface
// physical" is kept. A device seen for the first time is looked up at
// once; the refresh only forgets names that went away or were reused.
const physicalRefresh = time.Minute

// Host reads the machine's CPU, memory, disks, network and uptime. CPU
// percent and the I/O rates are deltas against the previous call, so a
// collection never sleeps; the first call compares against a CPU baseline
// taken by NewHost and has no I/O rates yet.
//
// It runs every few seconds for months, so it reads each /proc file once
// per call into one reused buffer and parses it in place: /proc/meminfo
// gives memory and swap, /proc/stat every CPU, /proc/diskstats and
// /proc/net/dev the I/O counters, and one sysinfo(2) the uptime and load.
type Host struct {
	mounts []string
	proc   string
	sysfs  string
	usage  func(ctx context.Context, path string) (*disk.UsageStat, error)

	// statting holds the mounts whose statfs has not returned: on a dead
	// NFS server it sleeps uninterruptibly, possibly for good, and must
	// cost neither the rest of the section nor a thread per tick.
	smu      sync.Mutex
	statting map[string]bool
	// statfs has one long-lived worker per mount, so a collection starts
	// no goroutine, and a hung mount holds only its own.
	statfs []chan statReq
	done   chan struct{}
	close  sync.Once

	// mu serialises collections: an abandoned (timed-out) call may still
	// run when the next tick starts, and both would move the baseline.
	mu       sync.Mutex
	buf      []byte
	files    map[string]int // open /proc files by name, re-read from offset 0
	cpuTotal *cpu.TimesStat
	cpuCores []cpu.TimesStat
	spare    []cpu.TimesStat // the previous call's cores, reused
	io       *ioCounters
	// physical caches which block devices and interfaces sit on
	// hardware; physicalAt is when it was last emptied.
	physical   map[string]bool
	physicalAt time.Time
}

// ioCounters are the cumulative byte counters the rates are derived from.
type ioCounters struct {
	at                  time.Time
	diskOK, netOK       bool
	diskRead, diskWrite uint64
	netRx, netTx        uint64
}

type statReq struct {
	ctx context.Context
	i   int
	out chan<- statResult
}

type statResult struct {
	i   int
	u   *disk.UsageStat
	err error
}

// NewHost returns the host collector for the given mount points ("/" when
// none) and takes the CPU baseline its first collection compares against.
// Close stops its statfs workers.
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
	h := &Host{
		mounts:   uniq,
		proc:     envOr("HOST_PROC", "/proc"),
		sysfs:    envOr("HOST_SYS", "/sys"),
		usage:    disk.UsageWithContext,
		statting: map[string]bool{},
		done:     make(chan struct{}),
		physical: map[string]bool{},
		files:    map[string]int{},
	}
	for _, m := range h.mounts {
		req := make(chan statReq, 1)
		h.statfs = append(h.statfs, req)
		go h.statWorker(m, req)
	}
	// A failed baseline only means the first collection has no CPU
	// percent; it takes the baseline itself then.
	h.cpuTotal, h.cpuCores, _ = h.readCPU(nil)
	return h
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Close stops the statfs workers (one stuck in statfs ends when it
// returns) and closes the /proc files.
func (h *Host) Close() error {
	h.close.Do(func() { close(h.done) })
	// A collection still running keeps them: the process is ending.
	if h.mu.TryLock() {
		defer h.mu.Unlock()
		for name, fd := range h.files {
			syscall.Close(fd)
			delete(h.files, name)
		}
	}
	return nil
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
	if err := h.memory(sys); err != nil {
		return err
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return fmt.Errorf("host uptime: %w", err)
	}
	sys.Uptime = uint64(si.Uptime)
	// The kernel's load averages in fixed point, the figures
	// /proc/loadavg prints rounded.
	load := new([3]float64)
	for i := range load {
		load[i] = float64(si.Loads[i]) / (1 << 16)
	}
	sys.Load1, sys.Load5, sys.Load15 = &load[0], &load[1], &load[2]

	var errs []error
	if err := h.cpuPercent(sys); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, h.rates(sys)...)
	errs = append(errs, h.disks(ctx, sys)...)

	s.System = sys
	return errors.Join(errs...)
}

// read returns the whole of a /proc file in h.buf, which it grows as
// needed: procfs files are generated on read and have no size to stat.
// Each file is opened once and read again from offset 0, which makes the
// kernel generate it afresh (as top and vmstat do): an open costs as much
// as the read. A file that fails is opened again once.
func (h *Host) read(name string) ([]byte, error) {
	b, err := h.readOpen(name)
	if err != nil {
		if fd, ok := h.files[name]; ok {
			syscall.Close(fd)
			delete(h.files, name)
			b, err = h.readOpen(name)
		}
	}
	return b, err
}

func (h *Host) readOpen(name string) ([]byte, error) {
	fd, ok := h.files[name]
	if !ok {
		var err error
		fd, err = syscall.Open(h.proc+"/"+name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: h.proc + "/" + name, Err: err}
		}
		h.files[name] = fd
	}
	if h.buf == nil {
		h.buf = make([]byte, 16<<10)
	}
	n := 0
	for {
		if n == len(h.buf) {
			h.buf = slices.Grow(h.buf[:n], n)[:2*n]
		}
		m, err := syscall.Pread(fd, h.buf[n:], int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: h.proc + "/" + name, Err: err}
		}
		if m == 0 {
			return h.buf[:n], nil
		}
		n += m
	}
}

// memory reads RAM and swap from /proc/meminfo.
func (h *Host) memory(sys *metrics.System) error {
	b, err := h.read("meminfo")
	if err != nil {
		return fmt.Errorf("host memory: %w", err)
	}
	var total, avail, free, buffers, cached, swapTotal, swapFree uint64
	var seen uint
	const (
		hasTotal = 1 << iota
		hasAvail
		hasSwapTotal
		hasSwapFree
	)
	for line := range bytes.Lines(b) {
		key, rest, _ := bytes.Cut(line, []byte{':'})
		val, _ := parseUint(firstField(rest)) // kB
		val <<= 10
		switch string(key) {
		case "MemTotal":
			total, seen = val, seen|hasTotal
		case "MemAvailable":
			avail, seen = val, seen|hasAvail
		case "MemFree":
			free = val
		case "Buffers":
			buffers = val
		case "Cached":
			cached = val
		case "SwapTotal":
			swapTotal, seen = val, seen|hasSwapTotal
		case "SwapFree":
			swapFree, seen = val, seen|hasSwapFree
		}
	}
	if seen&hasTotal == 0 {
		return errors.New("host memory: no MemTotal in meminfo")
	}
	if seen&hasAvail == 0 {
		// Kernels before 3.14: what the page cache gives back is
		// approximately free, buffers and cache.
		avail = free + buffers + cached
	}
	if seen&(hasSwapTotal|hasSwapFree) != hasSwapTotal|hasSwapFree {
		return errors.New("host swap: no SwapTotal or SwapFree in meminfo")
	}
	// Available counts reclaimable cache, so Total-Available is what
	// applications hold; "used" figures that exclude buffers and cache
	// differ across kernels.
	sys.MemTotal = total
	sys.MemUsed = total - min(avail, total)
	sys.SwapTotal = swapTotal
	sys.SwapUsed = swapTotal - min(swapFree, swapTotal)
	return nil
}

// readCPU parses the "cpu" and "cpuN" lines of /proc/stat, the total and
// every online CPU, into cores (reused when it has the room).
func (h *Host) readCPU(cores []cpu.TimesStat) (*cpu.TimesStat, []cpu.TimesStat, error) {
	b, err := h.read("stat")
	if err != nil {
		return nil, nil, fmt.Errorf("host cpu times: %w", err)
	}
	var total *cpu.TimesStat
	cores = cores[:0]
	for line := range bytes.Lines(b) {
		name, rest := nextField(line)
		if len(name) < 3 || string(name[:3]) != "cpu" {
			break // the cpu lines come first
		}
		t, ok := parseCPULine(rest)
		if !ok {
			return nil, nil, fmt.Errorf("host cpu times: bad line %q", line)
		}
		if len(name) == 3 {
			total = &t
		} else {
			cores = append(cores, t)
		}
	}
	if total == nil {
		return nil, nil, errors.New("host cpu times: no total in stat")
	}
	return total, cores, nil
}

// userHZ is the unit of /proc/stat's times, fixed at 100 on Linux.
const userHZ = 100

// parseCPULine reads user nice system idle iowait irq softirq steal guest
// guest_nice; kernels older than 2.6.33 stop early, and what they lack
// stays 0.
func parseCPULine(b []byte) (cpu.TimesStat, bool) {
	var v [10]uint64
	n := 0
	for f, rest := nextField(b); len(f) > 0 && n < len(v); f, rest = nextField(rest) {
		x, ok := parseUint(f)
		if !ok {
			return cpu.TimesStat{}, false
		}
		v[n] = x
		n++
	}
	if n < 4 {
		return cpu.TimesStat{}, false
	}
	s := func(i int) float64 { return float64(v[i]) / userHZ }
	return cpu.TimesStat{User: s(0), Nice: s(1), System: s(2), Idle: s(3), Iowait: s(4),
		Irq: s(5), Softirq: s(6), Steal: s(7), Guest: s(8), GuestNice: s(9)}, true
}

func (h *Host) cpuPercent(sys *metrics.System) error {
	total, cores, err := h.readCPU(h.spare)
	if err != nil {
		return err
	}
	prevTotal, prevCores := h.cpuTotal, h.cpuCores
	h.cpuTotal, h.cpuCores, h.spare = total, cores, prevCores
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
func (h *Host) rates(sys *metrics.System) []error {
	var errs []error
	now := time.Now()
	if now.Sub(h.physicalAt) > physicalRefresh {
		clear(h.physical)
		h.physicalAt = now
	}
	cur := &ioCounters{at: now}
	if err := h.diskBytes(cur); err != nil {
		errs = append(errs, fmt.Errorf("host disk io: %w", err))
	}
	if err := h.netBytes(cur); err != nil {
		errs = append(errs, fmt.Errorf("host net io: %w", err))
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

// sectorSize is the unit of /proc/diskstats' sector counts, 512 bytes
// whatever the device's own sector size.
const sectorSize = 512

// diskBytes sums the bytes read and written by the physical block devices
// in /proc/diskstats: major minor name reads merged sectors-read ms
// writes merged sectors-written ...
func (h *Host) diskBytes(cur *ioCounters) error {
	b, err := h.read("diskstats")
	if err != nil {
		return err
	}
	for line := range bytes.Lines(b) {
		_, rest := nextField(line) // major
		_, rest = nextField(rest)  // minor
		name, rest := nextField(rest)
		var v [7]uint64
		ok := len(name) > 0 && parseUints(rest, v[:])
		if !ok {
			return fmt.Errorf("diskstats: bad line %q", line)
		}
		if h.isPhysical("block", name) {
			cur.diskRead += v[2] * sectorSize
			cur.diskWrite += v[6] * sectorSize
		}
	}
	cur.diskOK = true
	return nil
}

// netBytes sums the physical interfaces in /proc/net/dev: traffic of a
// container crosses its veth and a bridge before the NIC and would be
// counted three times. A machine with no physical NIC (a VM with virtio is
// physical; a container's netns is not) falls back to every interface but
// loopback.
func (h *Host) netBytes(cur *ioCounters) error {
	b, err := h.read("net/dev")
	if err != nil {
		return err
	}
	var rx, tx, allRx, allTx uint64
	found := false
	n := 0
	for line := range bytes.Lines(b) {
		if n++; n <= 2 { // two header lines
			continue
		}
		name, rest, colon := bytes.Cut(line, []byte{':'})
		name = bytes.TrimSpace(name)
		// receive: bytes packets errs drop fifo frame compressed
		// multicast; transmit: bytes ...
		var v [9]uint64
		ok := colon && len(name) > 0 && parseUints(rest, v[:])
		if !ok {
			return fmt.Errorf("net/dev: bad line %q", line)
		}
		if string(name) == "lo" {
			continue
		}
		allRx += v[0]
		allTx += v[8]
		if h.isPhysical("class/net", name) {
			rx += v[0]
			tx += v[8]
			found = true
		}
	}
	if !found {
		rx, tx = allRx, allTx
	}
	cur.netRx, cur.netTx, cur.netOK = rx, tx, true
	return nil
}

// isPhysical reports whether a block device or interface sits on
// hardware: sysfs gives those a "device" link, while partitions,
// device-mapper, md, loop, zram, bridges and veth pairs have none, and
// summing them as well would count the same bytes more than once. The
// answer is cached until the next refresh.
func (h *Host) isPhysical(class string, name []byte) bool {
	// The lookup by string(class+"/"+name) would allocate; the two
	// classes are told apart by a prefix byte instead.
	key := make([]byte, 0, 64)
	key = append(key, class[0], '/')
	key = append(key, name...)
	if p, ok := h.physical[string(key)]; ok {
		return p
	}
	_, err := os.Stat(filepath.Join(h.sysfs, class, string(name), "device"))
	h.physical[string(key)] = err == nil
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

// disks reads the usage of every mount side by side and waits until all
// answered or a little before ctx's deadline, in configured order. A
// statfs that overruns goes on in its worker and its mount is skipped
// until it returns.
func (h *Host) disks(ctx context.Context, sys *metrics.System) []error {
	ctx, cancel := finishBefore(ctx)
	defer cancel()
	results := make(chan statResult, len(h.mounts)) // buffered: a late statfs never blocks
	got := make([]*statResult, len(h.mounts))
	var errs []error
	pending := 0
	h.smu.Lock()
	for i, m := range h.mounts {
		if h.statting[m] {
			got[i] = &statResult{i: i, err: errors.New("an earlier statfs has not returned")}
			continue
		}
		h.statting[m] = true
		pending++
		// Never blocks: the worker is idle (not statting) and its
		// queue holds one.
		h.statfs[i] <- statReq{ctx: ctx, i: i, out: results}
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

// statWorker answers the statfs requests for one mount until Close.
func (h *Host) statWorker(mount string, reqs <-chan statReq) {
	for {
		select {
		case <-h.done:
			return
		case r := <-reqs:
			u, err := h.usage(r.ctx, mount)
			h.smu.Lock()
			delete(h.statting, mount)
			h.smu.Unlock()
			r.out <- statResult{i: r.i, u: u, err: err}
		}
	}
}

// nextField returns the first run of non-blank bytes in b and what
// follows it, as strings.Fields would without building the slice.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !isBlank(b[j]) {
		j++
	}
	return b[i:j], b[j:]
}

func firstField(b []byte) []byte {
	f, _ := nextField(b)
	return f
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

// parseUints reads the first len(v) fields of b into v as counters; false
// when one is missing or not a counter.
func parseUints(b []byte, v []uint64) bool {
	for i := range v {
		var f []byte
		var ok bool
		f, b = nextField(b)
		if v[i], ok = parseUint(f); !ok {
			return false
		}
	}
	return true
}

// parseUint reads a decimal counter without converting to a string.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false // overflow
		}
		n = n*10 + d
	}
	return n, true
}
