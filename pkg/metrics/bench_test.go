package metrics

import (
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func BenchmarkEncode8GPU(b *testing.B) {
	s := fullSample(8)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = Encode(s)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/sample")
}

func BenchmarkDecode8GPU(b *testing.B) {
	buf, err := Encode(fullSample(8))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/sample")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu).Seconds(), "samples/cpu-s")
}

// cpuTime is the process's CPU time (user and system, GC included): on a
// shared machine it measures a benchmark's cost per core where wall time
// also counts the waits for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecode8GPULibrary is the same sample through msgpack's
// reflection, which Decode used before: the reference for its figures.
func BenchmarkDecode8GPULibrary(b *testing.B) {
	buf, err := Encode(fullSample(8))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		var s Sample
		if err := msgpack.Unmarshal(buf, &s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu).Seconds(), "samples/cpu-s")
}
