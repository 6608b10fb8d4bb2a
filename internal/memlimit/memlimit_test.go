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
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/poll"
)

func cgroup(t *testing.T, name, content string) string {
	t.Helper()
	root := t.TempDir()
	path := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestChoose(t *testing.T) {
	none := t.TempDir()
	v2 := cgroup(t, "memory.max", "1073741824\n")
	v2max := cgroup(t, "memory.max", "max\n")
	v1 := cgroup(t, "memory/memory.limit_in_bytes", "2147483648\n")
	v1unlimited := cgroup(t, "memory/memory.limit_in_bytes", "9223372036854771712\n")
	for _, c := range []struct {
		name       string
		flag       int64
		env, root  string
		want       Choice
		runtimeSet bool
	}{
		{name: "flag wins", flag: 300 << 20, env: "1GiB", root: v2, want: Choice{Limit: 300 << 20, Source: "flag"}},
		{name: "GOMEMLIMIT as the runtime applied it", env: "1GiB", root: v2, runtimeSet: true},
		{name: "cgroup v2", root: v2, want: Choice{Limit: 768 << 20, Source: "cgroup", Ceiling: 966367641}},
		{name: "cgroup v1", root: v1, want: Choice{Limit: 1536 << 20, Source: "cgroup", Ceiling: 1932735283}},
		{name: "cgroup v2 without a limit", root: v2max, want: Choice{Limit: Default, Source: "default", Ceiling: math.MaxInt64}},
		{name: "cgroup v1 unlimited", root: v1unlimited, want: Choice{Limit: Default, Source: "default", Ceiling: math.MaxInt64}},
		{name: "no cgroup", root: none, want: Choice{Limit: Default, Source: "default", Ceiling: math.MaxInt64}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.want
			if c.runtimeSet {
				// The runtime read GOMEMLIMIT at start; Choose reports it.
				old := debug.SetMemoryLimit(700 << 20)
				defer debug.SetMemoryLimit(old)
				want = Choice{Limit: 700 << 20, Source: "GOMEMLIMIT"}
			}
			if got := Choose(c.flag, c.env, c.root); got != want {
				t.Fatalf("Choose = %+v, want %+v", got, want)
			}
		})
	}
}

// The guarded limit leaves the heap room to allocate a quarter to three
// quarters of the live heap beside the overhead, so the collector never
// runs over and over; it stays put while the live heap is small, never
// passes the ceiling, and comes back down (never below where it started)
// once the room has grown far past what the live heap needs.
func TestNext(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		limit, floor, ceiling, live, overhead, want int64
	}{
		{448 * mib, 448 * mib, math.MaxInt64, 100 * mib, 40 * mib, 448 * mib},   // small heap: the limit caps the overshoot
		{448 * mib, 448 * mib, math.MaxInt64, 240 * mib, 100 * mib, 448 * mib},  // 2,000 hosts a minute in: 108 MiB of room, kept
		{448 * mib, 448 * mib, math.MaxInt64, 280 * mib, 100 * mib, 520 * mib},  // room under a quarter: raised to half the live heap
		{448 * mib, 448 * mib, math.MaxInt64, 280 * mib, 0, 448 * mib},          // the same live heap without the overhead: room enough
		{768 * mib, 768 * mib, 921 * mib, 600 * mib, 100 * mib, 921 * mib},      // a container's ceiling holds
		{921 * mib, 768 * mib, 921 * mib, 900 * mib, 100 * mib, 921 * mib},      // at the ceiling: unchanged
		{600 * mib, 448 * mib, math.MaxInt64, 300 * mib, 150 * mib, 600 * mib},  // raised, room half the live heap: kept
		{1300 * mib, 448 * mib, math.MaxInt64, 280 * mib, 160 * mib, 580 * mib}, // an hour-in hub after its fill: lowered to half its live heap's room
		{516 * mib, 448 * mib, math.MaxInt64, 300 * mib, 160 * mib, 610 * mib},  // a limit that left it 56 MiB: raised
		{900 * mib, 448 * mib, math.MaxInt64, 100 * mib, 50 * mib, 448 * mib},   // … never below where it started
		{448 * mib, 448 * mib, math.MaxInt64, 10 * mib, 5 * mib, 448 * mib},     // at the floor: unchanged
	} {
		got := Next(c.limit, c.floor, c.ceiling, c.live, c.overhead)
		if got != c.want {
			t.Errorf("Next(%d MiB, floor %d MiB, ceiling %d, live %d MiB, overhead %d MiB) = %d MiB, want %d MiB", c.limit/mib, c.floor/mib, c.ceiling, c.live/mib, c.overhead/mib, got/mib, c.want/mib)
		}
		// No swing: the next check on the same heap keeps the limit.
		if again := Next(got, c.floor, c.ceiling, c.live, c.overhead); again != got {
			t.Errorf("Next(%d MiB, live %d MiB, overhead %d MiB) then %d MiB: it swings", c.limit/mib, c.live/mib, c.overhead/mib, again/mib)
		}
	}
}

// A live heap read high for a few collections (work in flight) does not
// raise the limit; a minute of checks all asking for a raise, over more
// than one collection, does, to the smallest limit asked for; a heap
// past the limit is raised at once.
func TestBandRaisesOnAMinuteOfAsking(t *testing.T) {
	const mib = 1 << 20
	type look struct {
		cycle uint64
		live  int64
		want  int64 // the limit after the look
	}
	// An hour-in 2,000-host hub: about 245 MiB live, 120 MiB of overhead,
	// at the 448 MiB default.
	const overhead, limit = 120 * mib, 448 * mib
	for _, c := range []struct {
		name  string
		looks []look
	}{
		{"one collection's transient", []look{
			{10, 245 * mib, limit},
			{11, 300 * mib, limit}, // would be 570 MiB
			{12, 246 * mib, limit},
		}},
		{"a burst over four collections and two checks", []look{
			{10, 245 * mib, limit},
			{12, 275 * mib, limit},
			{14, 270 * mib, limit},
			{15, 244 * mib, limit},
			{16, 245 * mib, limit},
			{17, 245 * mib, limit},
			{18, 245 * mib, limit},
			{19, 245 * mib, limit},
		}},
		{"a heap that grew", []look{
			{10, 270 * mib, limit},
			{11, 275 * mib, limit},
			{12, 268 * mib, limit},
			{13, 280 * mib, limit},
			{14, 272 * mib, limit},
			{15, 275 * mib, 522 * mib}, // 268 * 1.5 + 120: the smallest asked for
			{16, 275 * mib, 522 * mib},
		}},
		{"one collection read for a minute is not enough", []look{
			{10, 270 * mib, limit},
			{10, 270 * mib, limit},
			{10, 270 * mib, limit},
			{10, 270 * mib, limit},
			{10, 270 * mib, limit},
			{10, 270 * mib, limit},
			{11, 270 * mib, 525 * mib},
		}},
		{"a check that does not ask starts the minute again", []look{
			{10, 270 * mib, limit},
			{11, 270 * mib, limit},
			{12, 270 * mib, limit},
			{13, 270 * mib, limit},
			{14, 270 * mib, limit},
			{15, 240 * mib, limit},
			{16, 270 * mib, limit},
			{17, 270 * mib, limit},
		}},
		{"past the limit: at once", []look{
			{10, 340 * mib, 630 * mib},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A hub past its start (see TestBandRaisesAtOnceAtStart).
			b := band{limit: limit, floor: limit, ceiling: math.MaxInt64, checks: startChecks}
			for i, l := range c.looks {
				if got := b.check(l.cycle, l.live, overhead); got != l.want {
					t.Fatalf("look %d (collection %d, live %d MiB): limit %d MiB, want %d MiB", i, l.cycle, l.live/mib, got/mib, l.want/mib)
				}
			}
		})
	}
}

// In its first two minutes a hub replays what it missed, and its heap
// grows for real: each check that asks for a raise gets it at once; the
// minute's wait begins after.
func TestBandRaisesAtOnceAtStart(t *testing.T) {
	const mib = 1 << 20
	const overhead, limit = 120 * mib, 448 * mib
	b := band{limit: limit, floor: limit, ceiling: math.MaxInt64}
	for i := 1; i < startChecks; i++ {
		if got := b.check(uint64(i), 200*mib, overhead); got != limit {
			t.Fatalf("check %d, room enough: limit %d MiB, want %d", i, got/mib, limit/mib)
		}
	}
	// The last check of the start, a replay's heap: raised at once.
	if got, want := b.check(20, 270*mib, overhead), int64(525*mib); got != want {
		t.Fatalf("a replay's heap at the start's last check: limit %d MiB, want %d MiB", got/mib, want/mib)
	}
	// Past the start, a heap that grew again waits for its minute.
	if got := b.check(21, 320*mib, overhead); got != 525*mib {
		t.Fatalf("past the start: limit %d MiB at once, want the raise to wait", got/mib)
	}
}

// TestGuardCollectsWhenStale: while the limit is raised and no
// collection runs, Guard forces one every staleChecks checks, so the
// live heap it reads is not a burst's left-overs.
func TestGuardCollectsWhenStale(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	// Far less than the test's live heap: the first check raises it.
	const small = 64 << 10
	debug.SetMemoryLimit(small)
	keep := make([]byte, 4<<20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Guard(ctx, small, math.MaxInt64/2, time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()
	cycles := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	first := cycles()
	poll.Until(t, "Guard forcing collections under a raised limit", func() bool {
		return cycles() >= first+2 && debug.SetMemoryLimit(-1) > small
	})
	runtime.KeepAlive(keep)
}
