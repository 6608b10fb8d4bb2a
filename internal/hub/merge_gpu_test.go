package hub

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/alerts"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// The GPU health fields reach the update in the dashboard's units, and a
// MIG instance's processes carry the attribution of the GPU's list.
func TestMergeGPUHealth(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	u8 := func(v uint64) *uint64 { return &v }
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	b := func(v bool) *bool { return &v }
	gi := uint32(2)
	s := &metrics.Sample{
		Host: "gpu01", TS: now.UnixNano(), Interval: int64(5 * time.Second),
		GPUs: []metrics.GPU{{
			Index: 0, UUID: "GPU-a", Name: "NVIDIA H200",
			Processes: []metrics.Process{
				{PID: 7, Name: "vllm", MemUsed: u8(40 << 30), Container: "vllm", Model: "llama"},
				{PID: 8, MemUsed: u8(1 << 30)},
			},
			Persistence: b(true), Driver: "550.54.15", CUDA: "12.4", VBIOS: "96.00.74.00.1C",
			XIDs:    []metrics.XID{{Code: 79, TS: now.Add(-2 * time.Second).UnixNano(), Count: 3}, {Code: 95, TS: now.UnixNano(), Count: 1, GPUInstance: &gi}},
			ECC:     &metrics.ECC{Enabled: b(true), VolatileUncorrected: u8(1), RemapPending: b(true)},
			PCIe:    &metrics.PCIe{Gen: i(4), MaxGen: i(5), Width: i(16), MaxWidth: i(16), TxBps: f(2.5 * (1 << 20)), Degraded: b(true)},
			NVLinks: []metrics.NVLink{{Link: 0, Up: b(true), RxBps: f(1 << 20)}, {Link: 1, Up: b(false)}},
			MIGMode: b(true),
			MIG: []metrics.MIGInstance{{
				GPUInstance: 2, ComputeInstance: 0, UUID: "MIG-x", MemUsed: u8(41 << 30), MemTotal: u8(70 << 30),
				Processes: []metrics.Process{{PID: 7, MemUsed: u8(40 << 30)}, {PID: 99}},
			}},
			SMActive: f(61), SMOccupancy: f(22), TensorActive: f(40.5),
		}},
	}
	u := merge(now, map[string]*metrics.Sample{"gpu01": s}, 5*time.Second)
	if len(u.GPUs) != 1 {
		t.Fatalf("%d GPUs", len(u.GPUs))
	}
	g := u.GPUs[0]
	js, _ := json.Marshal(struct {
		X   []metrics.XIDView    `json:"x"`
		P   *metrics.PCIeView    `json:"p"`
		L   []metrics.NVLinkView `json:"l"`
		M   []metrics.MIGView    `json:"m"`
		E   *metrics.ECC         `json:"e"`
		Ver []string             `json:"v"`
		GPM []*float64           `json:"g"`
		PM  *bool                `json:"pm"`
		MM  *bool                `json:"mm"`
	}{g.XIDs, g.PCIe, g.NVLinks, g.MIG, g.ECC, []string{g.DriverVersion, g.CUDAVersion, g.VBIOSVersion},
		[]*float64{g.SMActivePercent, g.SMOccupancyPercent, g.TensorActivePercent}, g.PersistenceMode, g.MIGMode})
	want := `{"x":[{"code":79,"time":"2027-01-15T07:59:58Z","count":3},{"code":95,"time":"2027-01-15T08:00:00Z","count":1,"gpu_instance":2}],` +
		`"p":{"gen":4,"max_gen":5,"width":16,"max_width":16,"tx_mb_s":2.5,"degraded":true},` +
		`"l":[{"link":0,"up":true,"rx_mb_s":1},{"link":1,"up":false}],` +
		`"m":[{"gpu_instance":2,"compute_instance":0,"uuid":"MIG-x","vram_used_gb":41,"vram_total_gb":70,` +
		`"processes":[{"pid":7,"name":"vllm","vram_gb":40,"sm_percent":null,"container":"vllm","model":"llama"},{"pid":99,"vram_gb":null,"sm_percent":null}]}],` +
		`"e":{"enabled":true,"volatile_uncorrected":1,"remap_pending":true},` +
		`"v":["550.54.15","12.4","96.00.74.00.1C"],"g":[61,22,40.5],"pm":true,"mm":true}`
	if string(js) != want {
		t.Errorf("gpu health view\n got %s\nwant %s", js, want)
	}
}

// From the agent's sample to a firing alert: an XID 79 in one sample fires
// the default gpu_xid rule at once, critical, and it keeps firing after
// the next sample, which has none; a pending row remap fires gpu_row_remap
// as a warning.
func TestGPUHealthDefaultAlerts(t *testing.T) {
	t.Parallel()
	e, err := alerts.New(alerts.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	pending := true
	sample := func(at time.Time, xids ...metrics.XID) map[string]*metrics.Sample {
		return map[string]*metrics.Sample{"gpu01": {
			Host: "gpu01", TS: at.UnixNano(), Interval: int64(5 * time.Second),
			GPUs: []metrics.GPU{
				{Index: 0, UUID: "GPU-a", Name: "NVIDIA H200"},
				{Index: 3, UUID: "GPU-b", Name: "NVIDIA H200", XIDs: xids, ECC: &metrics.ECC{RemapPending: &pending}},
			},
		}}
	}
	firing := map[string]alerts.Severity{}
	for _, tr := range e.Evaluate(now, ptrUpdate(merge(now, sample(now, metrics.XID{Code: 79, TS: now.UnixNano(), Count: 2}), 5*time.Second))) {
		if tr.State == alerts.StateFiring {
			firing[tr.Rule+" "+tr.Host+" "+tr.Target] = tr.Severity
		}
	}
	want := map[string]alerts.Severity{"gpu_xid gpu01 gpu3": alerts.SeverityCritical, "gpu_row_remap gpu01 gpu3": alerts.SeverityWarning}
	if len(firing) != len(want) || firing["gpu_xid gpu01 gpu3"] != want["gpu_xid gpu01 gpu3"] || firing["gpu_row_remap gpu01 gpu3"] != want["gpu_row_remap gpu01 gpu3"] {
		t.Fatalf("firing %v, want %v", firing, want)
	}
	later := now.Add(5 * time.Second)
	for _, tr := range e.Evaluate(later, ptrUpdate(merge(later, sample(later), 5*time.Second))) {
		t.Errorf("the next sample, without the XID, changed an alert: %+v", tr)
	}
}

func ptrUpdate(u metrics.Update) *metrics.Update { return &u }
