package view

import (
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
