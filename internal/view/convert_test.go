package view

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

func fp(v float64) *float64 { return &v }
func up(v uint64) *uint64   { return &v }

// TestOf checks that a whole sample converts as its parts do for the live
// views, in the dashboard's binary units.
func TestOf(t *testing.T) {
	s := &metrics.Sample{
		V: 1, Host: "gpu01", Boot: "b1", Seq: 7, TS: 1e18,
		System: &metrics.System{
			CPUPercent: fp(12), MemUsed: 8 << 30, MemTotal: 32 << 30, NetRxBps: fp(3 << 20), Uptime: 60,
			Disks: []metrics.Disk{{Used: 1 << 30, Total: 4 << 30}, {Used: 1 << 30, Total: 4 << 30}},
		},
		GPUs: []metrics.GPU{
			{Index: 0, Name: "H200", Util: fp(50), MemUsed: up(24 << 30), MemTotal: up(141 << 30),
				Processes: []metrics.Process{{PID: 9, Model: metrics.RoleNemotron, MemUsed: up(2 << 30)}}},
			{Index: 1, Util: fp(70)},
		},
		Models: map[string]metrics.Model{metrics.RoleNemotron: {Status: metrics.StatusHealthy}},
	}
	f := Of(s)
	if f.Host != "gpu01" || f.Boot != "b1" || f.Seq != 7 || f.TS != 1e18 {
		t.Fatalf("identity %+v", f)
	}
	if f.System == nil || !reflect.DeepEqual(*f.System, System(s.System)) {
		t.Fatalf("host %+v, want %+v", f.System, System(s.System))
	}
	sys := f.System
	for _, c := range []struct {
		name string
		got  *float64
		want float64
	}{{"ram used", sys.RAMUsedGB, 8}, {"disk total (two mounts)", sys.DiskTotalGB, 8}, {"net rx", sys.NetRxMBps, 3}} {
		if c.got == nil || *c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if sys.UptimeS == nil || *sys.UptimeS != 60 || sys.DiskReadMBps != nil {
		t.Errorf("uptime %v, absent disk read %v", sys.UptimeS, sys.DiskReadMBps)
	}
	if len(f.GPUs) != 2 {
		t.Fatalf("%d GPUs", len(f.GPUs))
	}
	for i, g := range s.GPUs {
		if want := GPU("gpu01", g, false); !reflect.DeepEqual(f.GPUs[i], want) {
			t.Errorf("GPU %d: %+v, want %+v", i, f.GPUs[i], want)
		}
	}
	if v := f.GPUs[0].VRAMTotalGB; v == nil || *v != 141 {
		t.Errorf("VRAM total %v, want 141", v)
	}
	// The model's VRAM is its GPU processes' when it reports none itself.
	if m := f.Models[metrics.RoleNemotron]; m.VRAMGB == nil || *m.VRAMGB != 2 || m.Host != "gpu01" {
		t.Errorf("model %+v", m)
	}
	if empty := Of(&metrics.Sample{Host: "h"}); empty.System != nil || empty.GPUs != nil || empty.Models != nil {
		t.Errorf("an empty sample converts to %+v", empty)
	}
}

// TestTotalsAgreeWithFleet: the fleet's history keeps the totals the fleet
// view shows (before its rounding), so a chart and the table agree.
func TestTotalsAgreeWithFleet(t *testing.T) {
	u := &metrics.Update{
		Hosts: []metrics.HostStatus{{Host: "a", Online: true, GPUCount: 2}, {Host: "b", GPUCount: 1}},
		GPUs: []metrics.GPUView{
			{Host: "a", Utilization: fp(10.25), VRAMUsedGB: fp(10), VRAMTotalGB: fp(80), PowerWatts: fp(300), PowerLimitWatts: fp(700)},
			{Host: "a", Utilization: fp(60), VRAMUsedGB: fp(20.5), VRAMTotalGB: fp(80), PowerWatts: fp(250)},
			{Host: "b", Utilization: fp(95)},
		},
		Alerts: []metrics.Alert{
			{Host: "a", Severity: "critical", State: "firing"},
			{Host: "b", Severity: "warning", State: "pending"},
			{Severity: "warning"},
		},
	}
	got, want := Totals(u), New(u).Fleet().Totals
	same := func(name string, raw *float64, shown *float64, dec int) {
		t.Helper()
		if (raw == nil) != (shown == nil) || (raw != nil && *round(*raw, dec) != *shown) {
			t.Errorf("%s: history %v, fleet view %v", name, raw, shown)
		}
	}
	same("util mean", got.UtilMean, want.UtilMean, 1)
	same("vram used", got.VRAMUsed, want.VRAMUsed, 1)
	same("vram total", got.VRAMTotal, want.VRAMTotal, 1)
	same("power", got.Power, want.Power, 0)
	same("power limit", got.PowerLimit, want.PowerLimit, 0)
	for _, c := range []struct {
		name string
		got  *float64
		want int
	}{{"hosts", got.Hosts, want.Hosts}, {"online", got.Online, want.Online}, {"gpus", got.GPUs, want.GPUs},
		{"critical", got.Critical, want.Critical}, {"warning", got.Warning, want.Warning}} {
		if c.got == nil || *c.got != float64(c.want) {
			t.Errorf("%s: history %v, fleet view %d", c.name, c.got, c.want)
		}
	}
	if got.UtilMax == nil || *got.UtilMax != 95 {
		t.Errorf("util max %v, want 95", got.UtilMax)
	}
}

// Of keeps nothing of a sample's own memory but its strings and the
// details a metrics.Decoder leaves to the caller: the hub decodes each
// sample into the memory of the last (metrics.Decoder), so figures that
// pointed into it would change under the views and history.
func TestOfCopiesTheSamplesFigures(t *testing.T) {
	sample := func(host string, x float64) *metrics.Sample {
		u32, i, b, u := uint32(x), int(x), x > 1, uint64(x)
		return &metrics.Sample{
			V: 1, Host: host, Boot: "b", Seq: 1, TS: 1e18,
			System: &metrics.System{
				CPUPercent: fp(x), PerCore: []float64{x, x}, Load1: fp(x), Load5: fp(x), Load15: fp(x),
				MemUsed: u, MemTotal: 2 * u, DiskReadBps: fp(x), NetTxBps: fp(x), Uptime: u,
			},
			GPUs: []metrics.GPU{{
				Index: 0, Name: "H200", Util: fp(x), MemUtil: fp(x), MemUsed: &u, MemTotal: &u, Temp: fp(x),
				Power: fp(x), PowerLimit: fp(x), SMClock: &u32, MemClock: &u32, Fan: fp(x), PState: &i,
				ThrottleMask: &u, Energy: fp(x), Persistence: &b, MIGMode: &b,
				SMActive: fp(x), SMOccupancy: fp(x), TensorActive: fp(x),
				Processes: []metrics.Process{{PID: 1, MemUsed: &u, SMUtil: fp(x)}},
			}},
		}
	}
	var d metrics.Decoder
	decode := func(s *metrics.Sample) *metrics.Sample {
		b, err := metrics.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.DecodeOwned(b)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	f := Of(decode(sample("a", 3)))
	want, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	Of(decode(sample("b", 7))) // the same memory, other figures
	if got, _ := json.Marshal(f); string(got) != string(want) {
		t.Fatalf("the next sample changed the figures:\n got %s\nwant %s", got, want)
	}
}
