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
	buf := benchDecode(b, func(buf []byte) error { _, err := Decode(buf); return err })
	b.ReportMetric(float64(len(buf)), "bytes/sample")
}

// BenchmarkDecode8GPUDecoder is the same sample decoded again and again
// by one Decoder, as the hub's ingest does.
func BenchmarkDecode8GPUDecoder(b *testing.B) {
	var d Decoder
	benchDecode(b, func(buf []byte) error { _, err := d.DecodeOwned(buf); return err })
}

// benchDecode runs decode on an eight-GPU sample in the benchmark loop and
// reports the samples decoded per CPU second; it returns the sample's bytes.
func benchDecode(b *testing.B, decode func([]byte) error) []byte {
	buf := mustEncode(b, fullSample(8))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if err := decode(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu).Seconds(), "samples/cpu-s")
	return buf
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
	benchDecode(b, func(buf []byte) error { var s Sample; return msgpack.Unmarshal(buf, &s) })
}
