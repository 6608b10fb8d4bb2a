package alerts_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/alerts"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// FuzzLoadRules feeds the --rules file: it is refused with an error or
// gives rules the engine takes and evaluates (templates and all) without
// a panic.
func FuzzLoadRules(f *testing.F) {
	f.Add([]byte(`rules:
  - name: gpu_power
    warning: {threshold: 600, for: 2m}
    critical: {threshold: 680, for: 1m}
  - name: redis_hit_ratio
    disabled: true
  - name: gpu_busy
    metric: gpu_utilization
    target: gpu
    host: "gpu0*"
    comparison: ">"
    warning: {threshold: 50, for: 30s}
    keep_firing_for: 1m
    no_data: resolve
    message: "GPU {{.Target}} busy on {{.Host}}: {{.Value}}%"
`))
	f.Add([]byte("rules:\n  - name: hot\n    metric: gpu_temperature\n    target: gpu\n    comparison: \">=\"\n    warning: {threshold: -1, for: 0s}\n    message: \"{{.Value | printf \\\"%q\\\"}} {{index .Labels 9}}\"\n"))
	f.Add([]byte("rules: [{name: containers_unhealthy, warning: {threshold: 1, for: 1s}}]\n"))
	f.Add([]byte(""))
	f.Add([]byte("rules: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := alerts.LoadRules(bytes.NewReader(data), alerts.Defaults())
		if err != nil {
			return
		}
		e, err := alerts.New(rules)
		if err != nil {
			t.Fatalf("LoadRules accepted rules the engine refuses: %v", err)
		}
		idx, v := 0, 100.0
		u := &metrics.Update{
			Hosts: []metrics.HostStatus{{Host: "gpu01", Online: true}},
			GPUs:  []metrics.GPUView{{Host: "gpu01", Index: &idx, Utilization: &v, Temperature: &v}},
		}
		now := time.Unix(1_800_000_000, 0)
		for i := range 3 {
			e.Evaluate(now.Add(time.Duration(i)*10*time.Minute), u)
		}
		_ = e.Active()
	})
}
