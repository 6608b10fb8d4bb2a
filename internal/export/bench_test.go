package export

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// One scrape of /metrics: gather and encode, for the full update of one
// box and for a fleet of 2,000 hosts × 8 GPUs (five series a GPU, six a
// host), which a scraper of a fleet's hub pays at every interval.
func BenchmarkScrape(b *testing.B) {
	for _, c := range []struct {
		name string
		u    *metrics.Update
	}{{"box", fullUpdate()}, {"hosts=2000,gpus=8", fleetUpdate(2000, 8)}} {
		b.Run(c.name, func(b *testing.B) {
			e := New(&fakeHub{in: Ingest{Samples: 1}, latest: c.u})
			h := e.Handler()
			b.ReportAllocs()
			var size int64
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
				size, _ = io.Copy(io.Discard, rec.Body)
			}
			b.ReportMetric(float64(size), "bytes/scrape")
		})
	}
}

func fleetUpdate(hosts, gpus int) *metrics.Update {
	u := fullUpdate()
	u.GPUs = u.GPUs[:0]
	for h := range hosts {
		host := fmt.Sprintf("gpu%04d", h)
		for i := range gpus {
			u.GPUs = append(u.GPUs, metrics.GPUView{Host: host, Index: p(i), Name: p("NVIDIA H200"),
				Utilization: p(float64(i * 11)), VRAMUsedGB: p(70.5), VRAMTotalGB: p(140.4), Temperature: p(55.0), PowerWatts: p(512.0)})
		}
		u.Hosts = append(u.Hosts, metrics.HostStatus{Host: host, Online: true,
			System: metrics.HostView{CPUPercent: p(23.0), RAMUsedGB: p(210.0), RAMTotalGB: p(2015.0), DiskUsedGB: p(900.0), DiskTotalGB: p(3500.0)}})
	}
	return u
}
