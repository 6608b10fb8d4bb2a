package hub

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/alerting"
	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// BenchmarkTickWork is what the hub's loop does each tick after ingest
// (which converted each sample), for a fleet whose every host sent a new
// sample: merge, latency windows, sources, scrub, the default alert rules,
// the whole update's JSON and the fleet view's. cpu-ms/tick is per core; each part's CPU is reported
// too (the machine may be shared: CPU time, not wall time).
func BenchmarkTickWork(b *testing.B) {
	for _, hosts := range []int{200, 2000} {
		b.Run(fmt.Sprintf("hosts=%d,gpus=8", hosts), func(b *testing.B) {
			// Two generations of samples, so every tick sees every host's
			// sample new, as at a 5 s interval. In the second, one GPU in
			// ten runs hot: its alerts go pending and clear tick by tick,
			// as a fleet's noisy figures do.
			var gens [2]map[string]latest
			for g := range gens {
				samples := map[string]*metrics.Sample{}
				for h := range hosts {
					s := agentSample(fmt.Sprintf("gpu%04d", h), g, 8)
					for i := range s.GPUs {
						if g == 1 && (h*8+i)%10 == 0 {
							s.GPUs[i].Util, s.GPUs[i].Temp = f64(95), f64(80)
						}
					}
					samples[s.Host] = s
				}
				// Converted as the ingest does, before the tick.
				gens[g] = figured(samples)
			}
			log := slog.New(slog.DiscardHandler)
			ev, err := alerting.New(alerting.Config{}, log)
			if err != nil {
				b.Fatal(err)
			}
			lat := latency.New(latency.Config{Retain: 65 * time.Minute})
			var m merger
			parts := make([]time.Duration, 6)
			names := []string{"merge", "windows", "scrub", "alerts", "json", "fleet"}
			i := 0
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				at := now.Add(time.Duration(i%2) * 5 * time.Second)
				t0 := cpuTime()
				u := m.merge(at, gens[i%2], 5*time.Second)
				agentGPUs := len(u.GPUs)
				t1 := cpuTime()
				applyLatency(&u, lat, at, 5*time.Minute)
				applyModelWindows(&u, lat, at, 5*time.Minute)
				applySources(&u, nil, at, 5*time.Second, log)
				t2 := cpuTime()
				scrubUpdate(&u, agentGPUs)
				t3 := cpuTime()
				if a := ev.Evaluate(at, &u); a != nil {
					u.Alerts = a
				}
				t4 := cpuTime()
				if _, err := json.Marshal(u); err != nil {
					b.Fatal(err)
				}
				t5 := cpuTime()
				if _, err := json.Marshal(view.New(&u).Fleet()); err != nil {
					b.Fatal(err)
				}
				t6 := cpuTime()
				for j, d := range []time.Duration{t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5} {
					parts[j] += d
				}
				i++
			}
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/tick")
			for j, n := range names {
				b.ReportMetric(float64(parts[j].Microseconds())/1000/float64(b.N), n+"-ms")
			}
		})
	}
}
