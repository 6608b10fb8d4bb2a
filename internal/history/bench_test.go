package history

import (
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
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
			st.Add(s)
		}
		if got := st.Stats().Added; got != uint64(len(msgs)) {
			b.Fatalf("added %d of %d", got, len(msgs))
		}
	}
	b.ReportMetric(float64(len(msgs)), "samples/op")
}

// BenchmarkAdd is one live sample of an 8-GPU host into a store that
// already holds an hour of 100 hosts.
func BenchmarkAdd(b *testing.B) {
	st := New()
	for _, m := range encoded(b, 100, 720, 8) {
		s, _ := metrics.Decode(m)
		st.Add(s)
	}
	s := sample("gpu-host-aa", 0, base, 50, 8)
	ts := base.Add(time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Seq++
		ts = ts.Add(5 * time.Second)
		s.TS = ts.UnixNano()
		st.Add(s)
	}
}

// BenchmarkWindow5mOneHost is what a browser asks for on connect.
func BenchmarkWindow5mOneHost(b *testing.B) {
	st := New()
	for _, m := range encoded(b, 100, 720, 8) {
		s, _ := metrics.Decode(m)
		st.Add(s)
	}
	now := base.Add(time.Hour - time.Nanosecond)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Window(now, "5m", "gpu-host-aa"); err != nil {
			b.Fatal(err)
		}
	}
}
