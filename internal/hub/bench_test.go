package hub

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
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
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if !in.sample(subject, body) {
			b.Fatal("rejected")
		}
	}
}
