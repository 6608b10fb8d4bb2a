package alerts

import (
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// The GPU health metrics read the right fields, and absent fields are no
// data rather than a healthy zero.
func TestGPUHealthMetrics(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	cases := []struct {
		metric string
		gpu    metrics.GPUView
		want   *float64
	}{
		{"gpu_xid_severity", metrics.GPUView{}, ptr(0.0)},
		{"gpu_xid_severity", metrics.GPUView{XIDs: []metrics.XIDView{{Code: 13}, {Code: 31}, {Code: 43}}}, ptr(0.0)},
		{"gpu_xid_severity", metrics.GPUView{XIDs: []metrics.XIDView{{Code: 13}, {Code: 94}}}, ptr(1.0)},
		{"gpu_xid_severity", metrics.GPUView{XIDs: []metrics.XIDView{{Code: 92}, {Code: 48}}}, ptr(2.0)},
		{"gpu_xid_severity", metrics.GPUView{XIDs: []metrics.XIDView{{Code: 119}}}, ptr(2.0)},
		{"gpu_ecc_uncorrected", metrics.GPUView{}, nil},
		{"gpu_ecc_uncorrected", metrics.GPUView{ECC: &metrics.ECC{AggregateUncorrected: ptr(uint64(4))}}, nil},
		{"gpu_ecc_uncorrected", metrics.GPUView{ECC: &metrics.ECC{VolatileUncorrected: ptr(uint64(3))}}, ptr(3.0)},
		{"gpu_row_remap", metrics.GPUView{ECC: &metrics.ECC{Enabled: yes}}, nil},
		{"gpu_row_remap", metrics.GPUView{ECC: &metrics.ECC{RemapPending: no, RemapFailure: no}}, ptr(0.0)},
		{"gpu_row_remap", metrics.GPUView{ECC: &metrics.ECC{RemapPending: yes, RemapFailure: no}}, ptr(1.0)},
		{"gpu_row_remap", metrics.GPUView{ECC: &metrics.ECC{RetiredPending: yes}}, ptr(1.0)},
		{"gpu_row_remap", metrics.GPUView{ECC: &metrics.ECC{RemapPending: yes, RemapFailure: yes}}, ptr(2.0)},
		{"gpu_pcie_degraded", metrics.GPUView{PCIe: &metrics.PCIeView{Gen: ptr(4)}}, nil},
		{"gpu_pcie_degraded", metrics.GPUView{PCIe: &metrics.PCIeView{Degraded: no}}, ptr(0.0)},
		{"gpu_pcie_degraded", metrics.GPUView{PCIe: &metrics.PCIeView{Degraded: yes}}, ptr(1.0)},
		{"gpu_sm_active_percent", metrics.GPUView{SMActivePercent: ptr(61.5)}, ptr(61.5)},
		// A stale GPU's figures are old news.
		{"gpu_xid_severity", metrics.GPUView{Stale: true, XIDs: []metrics.XIDView{{Code: 79}}}, nil},
	}
	for i, tc := range cases {
		g := tc.gpu
		g.Host, g.Index = "h1", ptr(1)
		obs := extractor(KindGPU, tc.metric)(&metrics.Update{GPUs: []metrics.GPUView{g}}, nil)
		if len(obs) != 1 || obs[0].target != "gpu1" || obs[0].host != "h1" {
			t.Fatalf("case %d: observations %+v", i, obs)
		}
		got := obs[0].value
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("case %d %s: got %v, want %v", i, tc.metric, fmtp(got), fmtp(tc.want))
		}
	}
}

func fmtp(v *float64) any {
	if v == nil {
		return "no data"
	}
	return *v
}
