package history

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
	"github.com/vmihailenco/msgpack/v5"
)

// encoded returns hosts×n msgpack samples with gpus GPUs each, in the
// order a stream replays them (by time, hosts interleaved).
func encoded(b *testing.B, hosts, n, gpus int) [][]byte {
	b.Helper()
	out := make([][]byte, 0, hosts*n)
	for i := range n {
		for h := range hosts {
			s := sample("gpu-host-"+string(rune('a'+h%26))+string(rune('a'+h/26)), uint64(i+1), base.Add(time.Duration(i)*5*time.Second), cpuAt(i+h), gpus)
			buf, err := metrics.Encode(s)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, buf)
		}
	}
	return out
}

// BenchmarkRebuild is a hub's start: 60 minutes of samples of 100 hosts
// with 8 GPUs (720 samples a host, 72 000 in all) decoded and placed.
func BenchmarkRebuild(b *testing.B) {
	msgs := encoded(b, 100, 720, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st := New()
		for _, m := range msgs {
			s, err := metrics.Decode(m)
			if err != nil {
				b.Fatal(err)
			}
			add(st, s)
		}
		if got := st.Stats().Added; got != uint64(len(msgs)) {
			b.Fatalf("added %d of %d", got, len(msgs))
		}
	}
	b.ReportMetric(float64(len(msgs)), "samples/op")
}

// BenchmarkAdd is one live sample of an 8-GPU host, already converted
// (the live views convert it anyway), into a store that already holds an
// hour of 100 hosts. BenchmarkOfAdd converts it too.
func BenchmarkAdd(b *testing.B)   { benchAdd(b, false) }
func BenchmarkOfAdd(b *testing.B) { benchAdd(b, true) }

func benchAdd(b *testing.B, convert bool) {
	st := New()
	for _, m := range encoded(b, 100, 720, 8) {
		s, _ := metrics.Decode(m)
		add(st, s)
	}
	s := sample("gpu-host-aa", 0, base, 50, 8)
	fig := view.Of(s)
	ts := base.Add(time.Hour)
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		s.Seq++
		ts = ts.Add(5 * time.Second)
		s.TS = ts.UnixNano()
		if convert {
			fig = view.Of(s)
		} else {
			fig.Seq, fig.TS = s.Seq, s.TS
		}
		st.Add(&fig)
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's CPU time so far: on a shared machine a
// benchmark's CPU per op moves less than its wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWindow5mOneHost is what a browser asks for on connect.
func BenchmarkWindow5mOneHost(b *testing.B) { benchWindow(b, 100, "5m", "gpu-host-aa") }

// BenchmarkWindow60mEveryHost is the default view's 60m window (every
// host's GPUs at every point) of 200 8-GPU hosts an hour in.
func BenchmarkWindow60mEveryHost(b *testing.B) { benchWindow(b, 200, "60m", "") }

// benchWindow reads window rng of host ("": every host) of hosts 8-GPU
// hosts an hour in.
func benchWindow(b *testing.B, hosts int, rng, host string) {
	st := New()
	for _, m := range encoded(b, hosts, 720, 8) {
		s, _ := metrics.Decode(m)
		add(st, s)
	}
	now := base.Add(time.Hour - time.Nanosecond)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Window(now, rng, host); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHostMemory is what history holds per 8-GPU host, the heap
// after a GC over 100 hosts: "bytes/host-1h" with the short windows full
// (an hour of 5 s samples) and the long ones as that hour fills them,
// "bytes/host" with every long slot full too (a week on), as in a hub
// that has run for a week, and "bytes/gpu" that over the host's 8 GPUs.
// With float32 cells throughout: 116.6 KB an hour in, 189.4 KB a week in;
// with a host's frames other than each tier's newest packed (pcell):
// 72.4 KB and 108.9 KB (2,000 hosts: 145 MB and 218 MB); with the 5m
// window one float32 a cell, 81.5 KB and 118.9 KB; with the 15m window
// packed too, 68.3 KB and 105.7 KB.
func BenchmarkHostMemory(b *testing.B) {
	const hosts = 100
	msgs := encoded(b, hosts, 720, 8)
	var hour, week float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		st := New()
		for _, m := range msgs {
			s, err := metrics.Decode(m)
			if err != nil {
				b.Fatal(err)
			}
			add(st, s)
		}
		st.Seal(base.Add(2 * time.Hour))
		runtime.GC()
		runtime.ReadMemStats(&after)
		hour = float64(after.HeapAlloc-before.HeapAlloc) / hosts
		// Every long slot of every host holds what its newest one does.
		for _, ser := range st.hosts {
			for t := firstLong; t < numTiers; t++ {
				res := st.defs[t].res
				newest := st.rollup(ser, t, st.idx(trunc(ser.sealedUntil, res), t))
				for k := range int64(ringSize) {
					r := newest
					r.Start -= k * res
					if err := st.RestoreRollup(&r); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		week = float64(after.HeapAlloc-before.HeapAlloc) / hosts
		runtime.KeepAlive(st)
	}
	b.ReportMetric(hour, "bytes/host-1h")
	b.ReportMetric(week, "bytes/host")
	b.ReportMetric(week/8, "bytes/gpu")
}

// BenchmarkRestoreMinutes is the 60m windows of 100 hosts with 8 GPUs
// coming back from their persisted minutes (6,000 minute rollups,
// decoded and restored), what a restart does before the samples that
// the minutes do not hold are replayed; compare BenchmarkRebuild.
func BenchmarkRestoreMinutes(b *testing.B) {
	st := New()
	for _, m := range encoded(b, 100, 720, 8) {
		s, err := metrics.Decode(m)
		if err != nil {
			b.Fatal(err)
		}
		add(st, s)
	}
	var msgs [][]byte
	for _, r := range st.Minutes(base.Add(time.Hour), true) {
		buf, err := msgpack.Marshal(&r)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, buf)
	}
	if len(msgs) != 100*60 {
		b.Fatalf("%d minutes, want %d", len(msgs), 100*60)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st := New()
		for _, m := range msgs {
			var r Rollup
			if err := msgpack.Unmarshal(m, &r); err != nil {
				b.Fatal(err)
			}
			if err := st.RestoreMinute(&r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(msgs)), "minutes/op")
}
