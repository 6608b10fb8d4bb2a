package alerts

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// BenchmarkEvaluateSteadyFleet is the hub's alert work per tick on a
// large fleet whose figures move as real ones do (the load tool's walked
// figures, internal/loadtest/walk.go): 2,000 hosts × 8 GPUs, one GPU in
// twenty hot (utilization, temperature and power past the default
// thresholds, so their alerts pend and fire) and the rest serving below
// them, every figure moving a little each tick without crossing. One op
// is an evaluation of the default rules and the list of active alerts the
// update carries.
func BenchmarkEvaluateSteadyFleet(b *testing.B) {
	const hosts = 2000
	u := &metrics.Update{}
	type gpu struct{ util, temp, power *float64 }
	var figs []gpu
	for h := range hosts {
		host := fmt.Sprintf("load%04d", h)
		u.Hosts = append(u.Hosts, metrics.HostStatus{Host: host, Online: true, System: metrics.HostView{
			CPUPercent: f(40), RAMUsedGB: f(200), RAMTotalGB: f(512), DiskUsedGB: f(300), DiskTotalGB: f(1000),
		}})
		for i := range 8 {
			g := metrics.GPUView{Host: host, Index: ptr(i), Utilization: f(55), Temperature: f(60), PowerWatts: f(420),
				PowerLimitWatts: f(700), VRAMUsedGB: f(80), VRAMTotalGB: f(141)}
			if (h*8+i)%20 == 0 {
				*g.Utilization, *g.Temperature, *g.PowerWatts = 96, 80, 660
			}
			u.GPUs = append(u.GPUs, g)
			figs = append(figs, gpu{g.Utilization, g.Temperature, g.PowerWatts})
		}
	}
	e, err := New(Defaults())
	if err != nil {
		b.Fatal(err)
	}
	now := t0
	tick := 0
	b.ReportAllocs()
	cpu := cpuTime(b)
	for b.Loop() {
		now = now.Add(5 * time.Second)
		// ±0.5 around each figure: values move, none crosses a threshold.
		d := 0.5
		if tick%2 == 1 {
			d = -0.5
		}
		for _, g := range figs {
			*g.util += d
			*g.temp += d
			*g.power += d
		}
		tick++
		e.Evaluate(now, u)
		e.Active()
	}
	b.ReportMetric(float64((cpuTime(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(e.Active())), "alerts")
}

// cpuTime is the process's user and system CPU time: on a shared machine
// it moves less than the wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
