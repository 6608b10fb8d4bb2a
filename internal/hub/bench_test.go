package hub

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/history"
	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/pkg/metrics"
	"github.com/vmihailenco/msgpack/v5"
)

func fleet(hosts, gpus int) map[string]*metrics.Sample {
	m := map[string]*metrics.Sample{}
	for h := range hosts {
		s := sample(fmt.Sprintf("gpu%03d", h), time.Second)
		s.System = system()
		for g := range gpus {
			s.GPUs = append(s.GPUs, a5500(g, uint64(g+1)*gib))
		}
		s.Models = map[string]metrics.Model{"rtdetr": {Status: "healthy"}, "nemotron": {Status: "healthy"}}
		m[s.Host] = s
	}
	return m
}

// BenchmarkMergeAndEncode is one update's CPU cost: merge, scrub, JSON.
func BenchmarkMergeAndEncode(b *testing.B) {
	for _, size := range []struct{ hosts, gpus int }{{1, 8}, {100, 8}} {
		b.Run(fmt.Sprintf("hosts=%d,gpus=%d", size.hosts, size.gpus), func(b *testing.B) {
			newest := fleet(size.hosts, size.gpus)
			b.ReportAllocs()
			var n int
			for b.Loop() {
				u := merge(now, newest, 5*time.Second)
				scrub(&u)
				out, err := json.Marshal(u)
				if err != nil {
					b.Fatal(err)
				}
				n = len(out)
			}
			b.ReportMetric(float64(n), "json_bytes")
		})
	}
}

// BenchmarkIngestSample is the hub's cost per received sample (decode,
// newest-per-host bookkeeping) for a host with 8 GPUs.
func BenchmarkIngestSample(b *testing.B) {
	s := fleet(1, 8)["gpu000"]
	body, err := metrics.Encode(s)
	if err != nil {
		b.Fatal(err)
	}
	in := newIngest(slog.New(slog.DiscardHandler), nil, nil)
	subject := metrics.SampleSubject(s.Host)
	at := stampsOf(b, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		// The next sample of the run: the same one again is a duplicate.
		at.restamp(body, 0, 1)
		if !in.sample(subject, body) {
			b.Fatal("rejected")
		}
	}
}

// agentSample is what a busy 8-GPU agent sends: host figures, GPUs with
// processes, two models and the inference histograms latency reads.
func agentSample(host string, tick int, gpus int) *metrics.Sample {
	s := sample(host, 0)
	s.Seq = uint64(tick + 1)
	s.TS = now.Add(time.Duration(tick) * 5 * time.Second).UnixNano()
	s.System = system()
	s.System.PerCore = make([]float64, 32)
	for g := range gpus {
		s.GPUs = append(s.GPUs, a5500(g, uint64(g+1)*gib))
	}
	s.Models = map[string]metrics.Model{
		"rtdetr":   {Status: "healthy", MemUsed: u64(gib / 2)},
		"nemotron": {Status: "healthy", SlotsActive: intp(1), SlotsTotal: intp(2), Gauges: map[string]float64{"llamacpp:requests_processing": 1}},
	}
	c := float64(100 * (tick + 1))
	s.Inference = &metrics.Inference{
		Histograms: map[string]metrics.Histogram{
			"rtdetr": {Count: c, Sum: c * 0.04, Buckets: []metrics.Bucket{{UpperBound: 0.01, Count: c * 0.1}, {UpperBound: 0.05, Count: c * 0.8}, {UpperBound: 0.1, Count: c}}},
		},
		Counters: map[string]float64{"images": c, "events": c / 10},
	}
	return s
}

// ticks returns the encoded samples of hosts hosts over n ticks, by tick.
func ticks(b *testing.B, hosts, n, gpus int) [][][]byte {
	b.Helper()
	out := make([][][]byte, n)
	for t := range n {
		for h := range hosts {
			body, err := metrics.Encode(agentSample(fmt.Sprintf("gpu%04d", h), t, gpus))
			if err != nil {
				b.Fatal(err)
			}
			out[t] = append(out[t], body)
		}
	}
	return out
}

// fullIngest is an ingest wired to the real history and latency stores.
func fullIngest() *ingest {
	return newIngest(slog.New(slog.DiscardHandler), history.New(), latency.New(latency.Config{Retain: 65 * time.Minute}))
}

// BenchmarkIngestPath is the whole per-sample path of an 8-GPU sample:
// decode, checks, newest per host, history windows and latency, in a hub
// that already knows 200 hosts.
func BenchmarkIngestPath(b *testing.B) {
	const hosts, n = 200, 60
	msgs := ticks(b, hosts, n, 8)
	subjects := make([]string, hosts)
	for h := range hosts {
		subjects[h] = metrics.SampleSubject(fmt.Sprintf("gpu%04d", h))
	}
	in := fullIngest()
	i := 0
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		t, h := i/hosts, i%hosts
		if t == n {
			// Every sample was placed once: start over on fresh stores so
			// none is a duplicate (which history would skip).
			b.StopTimer()
			in, i, t, h = fullIngest(), 0, 0, 0
			b.StartTimer()
		}
		if !in.sample(subjects[h], msgs[t][h]) {
			b.Fatal("rejected")
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu).Seconds(), "samples/cpu-s")
}

// BenchmarkMerge is one update built from the newest samples of a fleet.
func BenchmarkMerge(b *testing.B) {
	for _, hosts := range []int{1, 200, 2000} {
		b.Run(fmt.Sprintf("hosts=%d,gpus=8", hosts), func(b *testing.B) {
			newest := fleet(hosts, 8)
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				u := merge(now, newest, 5*time.Second)
				if len(u.GPUs) != hosts*8 {
					b.Fatalf("%d GPUs", len(u.GPUs))
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkTick is the hub's own work per tick of a fleet whose hosts each
// send one 8-GPU sample: decode, checks, place in history and latency,
// keep the newest, then one merge of the newest by the hub's merger (each
// sample converted once). samples/s is per core
// (the benchmark runs on one goroutine).
//
// The hub runs for days on the same hosts, so the benchmark keeps one
// hub (its stores and merger) throughout, as a live hub does: when the
// encoded ticks run out they are restamped in place, n ticks later, and
// sent again. Restamping is the harness's own work, so its CPU is left
// out; the GC of everything the hub allocates is counted, and so is the
// copy of each message the NATS client makes.
func BenchmarkTick(b *testing.B) {
	for _, hosts := range []int{1, 200, 2000} {
		b.Run(fmt.Sprintf("hosts=%d,gpus=8", hosts), func(b *testing.B) {
			n := max(4, 24000/hosts)
			msgs := ticks(b, hosts, n, 8)
			subjects := make([]string, hosts)
			for h := range hosts {
				subjects[h] = metrics.SampleSubject(fmt.Sprintf("gpu%04d", h))
			}
			at := make([][]stamps, n)
			for t, tick := range msgs {
				for _, body := range tick {
					at[t] = append(at[t], stampsOf(b, body))
				}
			}
			in, m := fullIngest(), &merger{}
			t, round := 0, 0
			var harness time.Duration
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if t == n {
					b.StopTimer()
					c := cpuTime()
					for t, tick := range msgs {
						for h, body := range tick {
							at[t][h].restamp(body, int64(n)*int64(5*time.Second), uint64(n))
						}
					}
					t, round = 0, round+1
					harness += cpuTime() - c
					b.StartTimer()
				}
				for h, body := range msgs[t] {
					// Each message in a buffer of its own, as the NATS
					// client hands it over (a copy of its read buffer,
					// made in the hub's process): counted, and the
					// sample may keep it (DecodeOwned).
					if !in.sample(subjects[h], bytes.Clone(body)) {
						b.Fatal("rejected")
					}
				}
				u := m.merge(now.Add(time.Duration(round*n+t)*5*time.Second), in.snapshot(time.Time{}), 5*time.Second)
				if len(u.GPUs) != hosts*8 {
					b.Fatalf("%d GPUs", len(u.GPUs))
				}
				t++
			}
			b.ReportMetric(float64(b.N*hosts)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(b.N*hosts)/(cpuTime()-cpu-harness).Seconds(), "samples/cpu-s")
			if st := in.Stats(); st.Late > 0 || st.Samples != uint64(b.N*hosts) {
				b.Fatalf("%d samples, %d late, of %d", st.Samples, st.Late, b.N*hosts)
			}
		})
	}
}

// stamps are where an encoded sample's timestamp and sequence number
// are: Encode writes both as 8-byte integers (checked), so they can be
// moved in place.
type stamps struct{ ts, seq int }

func stampsOf(b *testing.B, body []byte) stamps {
	r := bytes.NewReader(body)
	d := msgpack.NewDecoder(r) // reads r directly, so r.Len() is where d is
	n, err := d.DecodeMapLen()
	if err != nil {
		b.Fatal(err)
	}
	var at stamps
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			b.Fatal(err)
		}
		off := len(body) - r.Len()
		if (k == "t" || k == "q") && body[off] != 0xcf && body[off] != 0xd3 {
			b.Fatalf("%s encoded as 0x%02x, not an 8-byte integer", k, body[off])
		}
		switch k {
		case "t":
			at.ts = off + 1
		case "q":
			at.seq = off + 1
		}
		if err := d.Skip(); err != nil {
			b.Fatal(err)
		}
	}
	if at.ts == 0 || at.seq == 0 {
		b.Fatal("no timestamp or sequence number")
	}
	return at
}

// restamp moves an encoded sample dt later and its sequence number dq
// further, in place.
func (at stamps) restamp(body []byte, dt int64, dq uint64) {
	binary.BigEndian.PutUint64(body[at.ts:], binary.BigEndian.Uint64(body[at.ts:])+uint64(dt))
	binary.BigEndian.PutUint64(body[at.seq:], binary.BigEndian.Uint64(body[at.seq:])+dq)
}

// cpuTime is the process's CPU time (user and system, GC included): on a
// shared machine it measures the cost per core, where wall time also
// counts the waits for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
