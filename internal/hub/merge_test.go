package hub

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

func f64(v float64) *float64 { return &v }
func u64(v uint64) *uint64   { return &v }
func intp(v int) *int        { return &v }

const gib = 1 << 30

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func sample(host string, age time.Duration) *metrics.Sample {
	return &metrics.Sample{V: 1, Host: host, Boot: "boot-" + host, Seq: 42, TS: now.Add(-age).UnixNano(), Interval: int64(5 * time.Second)}
}

func withGPU(s *metrics.Sample, gpus ...metrics.GPU) *metrics.Sample {
	s.GPUs = gpus
	return s
}

func a5500(index int, used uint64) metrics.GPU {
	return metrics.GPU{
		Index: index, UUID: "GPU-" + string(rune('a'+index)), Name: "NVIDIA RTX A5500",
		Util: f64(38), MemUsed: u64(used), MemTotal: u64(24 * gib), Temp: f64(38), Power: f64(31),
		Processes: []metrics.Process{
			{PID: 100, Name: "python", MemUsed: u64(gib / 2), SMUtil: f64(20), Container: "ai-detector", Model: "rtdetr"},
			{PID: 200, Name: "llama-server", MemUsed: u64(3 * gib), Container: "ai-llm", Model: "nemotron"},
		},
	}
}

func system() *metrics.System {
	return &metrics.System{
		CPUPercent: f64(12), MemUsed: 8 * gib, MemTotal: 32 * gib,
		Disks:       []metrics.Disk{{Mount: "/", Used: 156 * gib, Total: 500 * gib}},
		DiskReadBps: f64(2 << 20), Uptime: 3600,
	}
}

func eq(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s is null, want %v", what, want)
	}
	if math.Abs(*got-want) > 1e-9 {
		t.Fatalf("%s = %v, want %v", what, *got, want)
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		hosts []*metrics.Sample
		check func(t *testing.T, u metrics.Update)
	}{
		{
			name: "units: bytes to binary GB, bytes/s to MB/s",
			hosts: []*metrics.Sample{func() *metrics.Sample {
				s := withGPU(sample("gpu01", time.Second), a5500(0, 22*gib+gib/2))
				s.System = system()
				return s
			}()},
			check: func(t *testing.T, u metrics.Update) {
				eq(t, "gpu.vram_used_gb", u.GPU.VRAMUsedGB, 22.5)
				eq(t, "gpu.vram_total_gb", u.GPU.VRAMTotalGB, 24)
				eq(t, "gpu.power_watts", u.GPU.PowerWatts, 31)
				eq(t, "host.ram_used_gb", u.Host.RAMUsedGB, 8)
				eq(t, "host.ram_total_gb", u.Host.RAMTotalGB, 32)
				eq(t, "host.disk_used_gb", u.Host.DiskUsedGB, 156)
				eq(t, "host.disk_total_gb", u.Host.DiskTotalGB, 500)
				eq(t, "host.disk_read_mb_s", u.Host.DiskReadMBps, 2)
				eq(t, "gpus[0].processes[1].vram_gb", u.GPUs[0].Processes[1].VRAMGB, 3)
				if p := u.GPUs[0].Processes[0]; p.Container != "ai-detector" || p.Model != "rtdetr" || *p.SMPercent != 20 {
					t.Fatalf("process view %+v", p)
				}
				if u.Sources["gpu"] != "agent:gpu01" || u.Sources["host"] != "agent:gpu01" || u.Stale["gpu"] || u.Stale["host"] {
					t.Fatalf("sources %v stale %v", u.Sources, u.Stale)
				}
			},
		},
		{
			name: "gpu is the first GPU of the first online host by name",
			hosts: []*metrics.Sample{
				withGPU(sample("b-host", time.Second), a5500(1, gib), a5500(0, 2*gib)),
				withGPU(sample("a-host", time.Minute), a5500(0, 9*gib)), // offline
				withGPU(sample("c-host", time.Second), a5500(0, 3*gib)),
				sample("0-no-gpu", time.Second),
			},
			check: func(t *testing.T, u metrics.Update) {
				if u.GPU.Host != "b-host" || *u.GPU.Index != 1 {
					t.Fatalf("gpu from %s/%d, want b-host's first reported GPU", u.GPU.Host, *u.GPU.Index)
				}
				if u.GPU.Stale {
					t.Fatal("gpu of an online host marked stale")
				}
				var order []string
				for _, g := range u.GPUs {
					order = append(order, g.Host+"/"+string(rune('0'+*g.Index)))
				}
				if strings.Join(order, " ") != "a-host/0 b-host/0 b-host/1 c-host/0" {
					t.Fatalf("gpus order %v", order)
				}
				if !u.GPUs[0].Stale || u.GPUs[1].Stale {
					t.Fatalf("offline host's GPU must be stale, online ones not: %+v", u.GPUs)
				}
				if len(u.Hosts) != 4 || u.Hosts[0].Host != "0-no-gpu" || u.Hosts[1].Online || !u.Hosts[2].Online || u.Hosts[2].GPUCount != 2 {
					t.Fatalf("hosts %+v", u.Hosts)
				}
			},
		},
		{
			name: "a host silent for three intervals is offline and stale, not frozen",
			hosts: []*metrics.Sample{func() *metrics.Sample {
				s := withGPU(sample("gpu01", 16*time.Second), a5500(0, gib))
				s.System = system()
				s.Models = map[string]metrics.Model{"rtdetr": {Status: "healthy", Model: "rtdetr_r50vd"}}
				return s
			}()},
			check: func(t *testing.T, u metrics.Update) {
				if u.Hosts[0].Online {
					t.Fatal("host online after 16s silence at a 5s interval")
				}
				if !u.Stale["gpu"] || !u.Stale["host"] || !u.Stale["ai_models.rtdetr"] || !u.GPU.Stale || !u.AIModels.RTDETR.Stale {
					t.Fatalf("sections not marked stale: %v %+v", u.Stale, u.AIModels.RTDETR)
				}
				if !u.Hosts[0].LastSeen.Equal(now.Add(-16 * time.Second)) {
					t.Fatalf("last_seen %v", u.Hosts[0].LastSeen)
				}
			},
		},
		{
			name: "the agent's own interval decides staleness",
			hosts: []*metrics.Sample{func() *metrics.Sample {
				s := sample("slow", 40*time.Second)
				s.Interval = int64(15 * time.Second)
				return s
			}()},
			check: func(t *testing.T, u metrics.Update) {
				if !u.Hosts[0].Online {
					t.Fatal("host with a 15s interval offline after 40s")
				}
			},
		},
		{
			name: "missing sections are null and say why",
			hosts: []*metrics.Sample{func() *metrics.Sample {
				s := sample("cpu-only", time.Second)
				s.System = &metrics.System{MemUsed: 0, MemTotal: 0}
				s.Errors = map[string]string{"gpu": "NVML unavailable: ERROR_LIBRARY_NOT_FOUND"}
				return s
			}()},
			check: func(t *testing.T, u metrics.Update) {
				if u.GPU.Name != nil || u.GPU.Utilization != nil || u.GPU.VRAMUsedGB != nil {
					t.Fatalf("gpu %+v, want nulls", u.GPU)
				}
				if u.Errors["gpu"] != "NVML unavailable: ERROR_LIBRARY_NOT_FOUND" || u.Sources["gpu"] != "none" {
					t.Fatalf("errors %v sources %v", u.Errors, u.Sources)
				}
				if u.Host.RAMTotalGB != nil || u.Host.DiskTotalGB != nil || u.Host.CPUPercent != nil || u.Host.UptimeS != nil {
					t.Fatalf("unread host figures must be null: %+v", u.Host)
				}
				if u.AIModels.RTDETR.Status != metrics.StatusUnconfigured || !strings.Contains(u.Errors["ai_models.rtdetr"], "no agent reports rtdetr") {
					t.Fatalf("rtdetr %+v, errors %v", u.AIModels.RTDETR, u.Errors)
				}
				b, _ := json.Marshal(u)
				for _, frag := range []string{`"gpu":{"name":null,"utilization":null,"vram_used_gb":null,"vram_total_gb":null,"temperature":null,"power_watts":null}`, `"cpu_percent":null`, `"gpus":[]`, `"alerts":[]`, `"containers":[]`} {
					if !strings.Contains(string(b), frag) {
						t.Fatalf("JSON lacks %s:\n%s", frag, b)
					}
				}
			},
		},
		{
			name:  "no agent at all",
			hosts: nil,
			check: func(t *testing.T, u metrics.Update) {
				if u.Errors["gpu"] != "no agent reporting" || u.Errors["host"] != "no agent reporting" || len(u.Hosts) != 0 || u.Hosts == nil {
					t.Fatalf("errors %v hosts %#v", u.Errors, u.Hosts)
				}
			},
		},
		{
			name: "models: server VRAM first, else the attributed processes' sum",
			hosts: []*metrics.Sample{func() *metrics.Sample {
				s := withGPU(sample("gpu01", time.Second), a5500(0, gib), a5500(1, gib))
				s.Models = map[string]metrics.Model{
					"rtdetr":   {Status: "healthy", Model: "rtdetr_r50vd_coco_o365", Device: "cuda:0", MemUsed: u64(gib / 4)},
					"nemotron": {Status: "loading", Reason: "HTTP 503", SlotsActive: intp(0), SlotsTotal: intp(2), ContextSize: intp(4096), Gauges: map[string]float64{"llamacpp:requests_processing": 1}},
				}
				return s
			}()},
			check: func(t *testing.T, u metrics.Update) {
				r, n := u.AIModels.RTDETR, u.AIModels.Nemotron
				eq(t, "rtdetr.vram_gb", r.VRAMGB, 0.25)
				if r.Status != "healthy" || r.Model != "rtdetr_r50vd_coco_o365" || r.Device != "cuda:0" || r.Host != "gpu01" {
					t.Fatalf("rtdetr %+v", r)
				}
				eq(t, "nemotron.vram_gb (two GPUs' llama-server)", n.VRAMGB, 6)
				if n.Status != "loading" || *n.SlotsTotal != 2 || *n.ContextSize != 4096 || n.Gauges["llamacpp:requests_processing"] != 1 {
					t.Fatalf("nemotron %+v", n)
				}
				if u.Errors["ai_models.nemotron"] != "HTTP 503" || u.Sources["ai_models.nemotron"] != "agent:gpu01" {
					t.Fatalf("errors %v sources %v", u.Errors, u.Sources)
				}
				if _, ok := u.Errors["ai_models.rtdetr"]; ok {
					t.Fatalf("healthy model has an error: %v", u.Errors)
				}
				if u.Hosts[0].Models["nemotron"].Status != "loading" {
					t.Fatalf("host models %+v", u.Hosts[0].Models)
				}
			},
		},
		{
			name: "a model the agent failed to read without a section is unreachable",
			hosts: []*metrics.Sample{func() *metrics.Sample {
				s := sample("gpu01", time.Second)
				s.Errors = map[string]string{"nemotron": "connection refused"}
				return s
			}()},
			check: func(t *testing.T, u metrics.Update) {
				if n := u.AIModels.Nemotron; n.Status != metrics.StatusUnreachable || n.Reason != "connection refused" {
					t.Fatalf("nemotron %+v", n)
				}
			},
		},
		{
			name: "host section from the first online host that has one",
			hosts: []*metrics.Sample{
				sample("a", time.Second),
				func() *metrics.Sample { s := sample("b", time.Second); s.System = system(); return s }(),
			},
			check: func(t *testing.T, u metrics.Update) {
				if u.Sources["host"] != "agent:b" {
					t.Fatalf("host from %s", u.Sources["host"])
				}
				eq(t, "host.cpu_percent", u.Host.CPUPercent, 12)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newest := map[string]*metrics.Sample{}
			for _, s := range tc.hosts {
				newest[s.Host] = s
			}
			u := merge(now, newest, 5*time.Second)
			if u.Type != metrics.TypeUpdate || !u.Timestamp.Equal(now) {
				t.Fatalf("type %q timestamp %v", u.Type, u.Timestamp)
			}
			tc.check(t, u)
		})
	}
}
