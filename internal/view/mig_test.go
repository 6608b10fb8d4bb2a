package view

import (
	"encoding/json"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// A MIG instance's GPM figures reach its view as percentages, as the
// GPU's do, and stay absent where the agent read none.
func TestGPUMIGInstanceGPM(t *testing.T) {
	g := metrics.GPU{
		Index: 0, MIGMode: new(true),
		Processes: []metrics.Process{{PID: 7, Name: "vllm", Model: "llama"}},
		MIG: []metrics.MIGInstance{
			{GPUInstance: 1, ComputeInstance: 0, MemUsed: up(8 << 30), SMActive: fp(62.5), TensorActive: fp(40),
				Processes: []metrics.Process{{PID: 7}}},
			{GPUInstance: 2, ComputeInstance: 0, SMActive: fp(3)},
			{GPUInstance: 9, ComputeInstance: 0},
		},
	}
	js, err := json.Marshal(GPU("gpu01", g, false).MIG)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"gpu_instance":1,"compute_instance":0,"vram_used_gb":8,` +
		`"processes":[{"pid":7,"name":"vllm","vram_gb":null,"sm_percent":null,"model":"llama"}],"sm_active_percent":62.5,"tensor_active_percent":40},` +
		`{"gpu_instance":2,"compute_instance":0,"sm_active_percent":3},` +
		`{"gpu_instance":9,"compute_instance":0}]`
	if string(js) != want {
		t.Errorf("MIG views\n got %s\nwant %s", js, want)
	}
}
