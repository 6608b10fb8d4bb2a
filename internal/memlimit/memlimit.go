// Package memlimit sets the hub's soft memory limit (the Go runtime's,
// debug.SetMemoryLimit) and keeps it from starving the process.
//
// Without a limit the Go collector lets the heap grow to twice what is
// live before it collects (GOGC=100): a 2,000-host hub with about 250 MB
// live ran at about 600 MiB resident. A soft limit makes the collector
// run earlier as the process nears it, so the overshoot is what the limit
// leaves above the live heap. A limit at or below the live heap would
// make it collect over and over (the runtime caps that at about half the
// CPU), so the default limit is raised as the live heap grows: it leaves
// the heap room to allocate about half the live heap between collections,
// beside what else the limit counts (goroutine stacks above all: two per
// agent connection of the embedded NATS server), up to what the container
// allows. It comes back down, never below where it
// started, once the live heap has fallen well below it again: a hub's
// start replays an hour of samples with far more in flight than it keeps
// (at 2,000 hosts the live heap passed 440 MB while replaying, 300 MB
// after), and a limit left at twice that peak kept it at 0.9–1.1 GiB
// resident for good.
package memlimit

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Default is the soft limit when neither the flag, GOMEMLIMIT nor a
// container's limit sets one: the 512 MiB a 2,000-host hub is meant to
// fit in, less the memory the runtime does not count (the binary's text,
// the kernel's buffers).
const Default = 448 << 20

// Of a container's memory limit, the soft limit takes this share: the
// rest is for what the container is charged besides the Go heap, JetStream's
// page cache first.
const (
	cgroupShare   = 0.75
	cgroupCeiling = 0.9 // the raised limit's maximum
)

// Choice is the limit chosen and why.
type Choice struct {
	Limit int64
	// Source: "flag", "GOMEMLIMIT", "cgroup" or "default".
	Source string
	// Ceiling is how far Guard may raise the limit; 0: Guard leaves it
	// alone (the operator set it).
	Ceiling int64
}

// Choose picks the soft limit: flag when positive; else GOMEMLIMIT (env,
// which the runtime already applied) when set; else a share of the
// container's memory limit under cgroupRoot (normally /sys/fs/cgroup)
// when there is one; else Default. Only the last two are raised by Guard.
func Choose(flag int64, env, cgroupRoot string) Choice {
	switch {
	case flag > 0:
		return Choice{Limit: flag, Source: "flag"}
	case strings.TrimSpace(env) != "":
		return Choice{Limit: debug.SetMemoryLimit(-1), Source: "GOMEMLIMIT"}
	}
	if max, ok := cgroupMax(cgroupRoot); ok {
		return Choice{Limit: int64(float64(max) * cgroupShare), Source: "cgroup", Ceiling: int64(float64(max) * cgroupCeiling)}
	}
	return Choice{Limit: Default, Source: "default", Ceiling: math.MaxInt64}
}

// cgroupMax reads the memory limit of the process's cgroup: v2's
// memory.max, else v1's memory.limit_in_bytes; "max" or v1's huge
// "unlimited" value is no limit.
func cgroupMax(root string) (int64, bool) {
	for _, name := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false
		}
		v, err := strconv.ParseInt(s, 10, 64)
		// v1 writes "unlimited" as the page-rounded largest int64.
		if err != nil || v <= 0 || v >= 1<<62 {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// Apply sets c's limit and, when c has a ceiling, guards it until ctx
// ends (its own goroutine).
func Apply(ctx context.Context, c Choice, log *slog.Logger) {
	debug.SetMemoryLimit(c.Limit)
	log.Info("soft memory limit", "bytes", c.Limit, "source", c.Source)
	if c.Ceiling > 0 {
		go Guard(ctx, c.Limit, c.Ceiling, 10*time.Second, log)
	}
}

// Guard checks the live heap every interval and keeps the soft limit
// where it leaves the heap room to grow by a quarter to three quarters
// of what is live between collections, beside what the limit counts and
// a collection cannot free (overhead: goroutine stacks, the free slots of
// the heap's spans, the runtime's own structures). Outside that band it
// moves the limit to half the live heap's room (see Next), never past
// ceiling and never below the limit it started with; a raise waits for a
// minute of checks that all ask for one (see band.check).
func Guard(ctx context.Context, limit, ceiling int64, every time.Duration, log *slog.Logger) {
	b := band{limit: limit, floor: limit, ceiling: ceiling}
	sample := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var cycles uint64
	quiet := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		for _, m := range sample {
			if m.Value.Kind() != metrics.KindUint64 {
				log.Warn("soft memory limit not guarded: the runtime does not report " + m.Name)
				return
			}
		}
		// The live heap is as of the last collection, which a raised
		// limit may put off for minutes: a burst's garbage then reads as
		// live, and the limit it raised stays. A collection forced once
		// a stale minute (the cost of one, a fraction of a second of CPU
		// a minute at most, only while raised) brings the figure back.
		if n := sample[1].Value.Uint64(); n != cycles || b.limit <= b.floor {
			cycles, quiet = n, 0
		} else if quiet++; quiet >= staleChecks {
			runtime.GC()
			metrics.Read(sample)
			cycles, quiet = sample[1].Value.Uint64(), 0
		}
		v := func(i int) int64 { return int64(min(sample[i].Value.Uint64(), math.MaxInt64/4)) }
		live := v(0)
		// What the limit counts (all the runtime holds but the pages it
		// gave back) less the heap's objects and its free pages, which
		// the scavenger gives back as the heap nears the limit.
		overhead := max(0, v(2)-v(3)-v(4)-v(5))
		from := b.limit
		if next := b.check(cycles, live, overhead); next != from {
			if next > from {
				log.Warn("soft memory limit raised: the live heap neared it", "live_bytes", live, "overhead_bytes", overhead, "from", from, "to", next, "ceiling", ceiling)
			} else {
				log.Info("soft memory limit lowered: the live heap fell", "live_bytes", live, "overhead_bytes", overhead, "from", from, "to", next, "floor", b.floor)
			}
			debug.SetMemoryLimit(next)
		}
	}
}

// band is Guard's limit between its floor and ceiling, with the checks
// in a row that asked to raise it.
type band struct {
	limit, floor, ceiling int64
	// checks counts the checks made, up to startChecks.
	checks int
	// asked is how many checks in a row asked for a raise, want the
	// smallest limit one of them asked for, and first the collection the
	// first of them read.
	asked int
	want  int64
	first uint64
}

// check is one look at the live heap and overhead as of collection
// cycle; it returns the limit to set and keeps it. A raise waits until
// raiseChecks checks in a row, reading more than one collection, have
// asked for one, and is then to the smallest limit they asked for: a
// collection's live heap counts whatever is in flight at that moment (a
// tick half built, the embedded server's 8 MiB block buffers, one to four
// at a time), so readings of one heap swing by 30-40 MB, and now and then
// something bigger holds 30-70 MB for a few collections over 10-20 s. At
// 2,000 hosts an hour in (about 245 MB live) one such collection (315 MB)
// raised the limit by 70 MB at once, and a burst of four over 15 s (277-288
// MB) by 84 MB even when a second check had to agree; the process's
// memory followed the limit up and stayed there, past the 512 MiB a
// 2,000-host hub is meant to fit in. A live heap that truly grew keeps
// asking: the collector runs more often for that minute, inside the
// band's quarter of the live heap. A heap that has outgrown the limit
// (the overhead and live heap at or past it: the collector would run
// back to back) is raised at once, and so is any heap in the process's
// first startChecks checks (see there).
func (b *band) check(cycle uint64, live, overhead int64) int64 {
	next := Next(b.limit, b.floor, b.ceiling, live, overhead)
	start := b.checks < startChecks
	if start {
		b.checks++
	}
	switch {
	case next <= b.limit, live+overhead >= b.limit, start:
		b.asked = 0
		b.limit = next
	case b.asked == 0:
		b.asked, b.want, b.first = 1, next, cycle
	default:
		b.asked++
		b.want = min(b.want, next)
		if b.asked >= raiseChecks && cycle != b.first {
			b.asked = 0
			b.limit = b.want
		}
	}
	return b.limit
}

// raiseChecks is how many checks in a row must ask for a raise: a
// minute at Apply's 10 s.
const raiseChecks = 6

// startChecks is how many checks from the start raise at once: two
// minutes at Apply's 10 s. A hub's start-up replay grows the heap for
// real and fast (an hour of 2,000 hosts restored and replayed in 30-45 s),
// and a minute's wait for each raise had its collector run so often that
// the restart's /healthz came after 45-46 s and 83-85 s of CPU, against
// 32.5 s and 57 s when raised at once (the same day, in turn).
const startChecks = 12

// staleChecks is how many checks Guard lets a raised limit go without a
// collection before it forces one: a minute at Apply's 10 s.
const staleChecks = 6

// Next is the limit after a check that found live bytes live and
// overhead bytes the limit counts besides the heap's objects and free
// pages. The heap's room is what the limit leaves it to allocate before
// a collection: limit - overhead - live. When that is under a quarter of
// the live heap (a limit the live heap neared, or overhead that grew),
// the limit is raised, at most to ceiling; when it is over three quarters
// and the limit is above floor, it is lowered, at least to floor; either
// way to where the room is half the live heap, inside the band, so the
// limit does not swing. Less room costs CPU, not just memory: at 2,000
// hosts an hour in (260-340 MB live, 120-200 MB of overhead) a limit of
// twice the live heap left the heap 30-190 MB of room, and where it was
// least (a live heap a little smaller) the hub spent 21.7 % of a core
// against 10-11 %; the overhead was what the rule did not see. A quarter
// of the live heap (the hub linked with stack shrinking off, Makefile)
// held a 2,000-host hub at 490-520 MiB an hour in, but it consumed an
// hour's backlog with 54 % more CPU and fell behind the load tool's fill
// (1.29 M of 1.43 M samples handled): half it stays.
func Next(limit, floor, ceiling, live, overhead int64) int64 {
	room := limit - overhead - live
	want := live + live/2 + overhead
	switch {
	case room < live/4 && limit < ceiling:
		return max(limit, min(ceiling, want))
	case room > live/4*3 && limit > floor:
		return min(limit, max(floor, want))
	}
	return limit
}
