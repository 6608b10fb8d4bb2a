package alerts

import (
	"strings"
	"testing"
	"time"
)

func TestLoadRules(t *testing.T) {
	const file = `
rules:
  - name: gpu_temperature
    warning: {threshold: 70, for: 2m}
    critical: {clear: 80}
  - name: redis_hit_ratio
    disabled: true
  - name: host_offline
    critical: {disabled: true}
  - name: gpu_busy
    metric: gpu_utilization
    target: gpu
    host: "gpu0*"
    comparison: ">"
    warning: {threshold: 50, for: 30s}
    keep_firing_for: 1m
    no_data: resolve
    message: "GPU {{.Target}} busy on {{.Host}}: {{.Value}}%"
`
	defaults := Defaults()
	rules, err := LoadRules(strings.NewReader(file), defaults)
	if err != nil {
		t.Fatalf("LoadRules: %v", err)
	}
	byName := map[string]Rule{}
	for _, r := range rules {
		byName[r.Name] = r
	}
	if len(rules) != len(defaults) {
		t.Errorf("%d rules, want %d (one removed, one added)", len(rules), len(defaults))
	}
	if _, ok := byName["redis_hit_ratio"]; ok {
		t.Error("disabled rule redis_hit_ratio is still there")
	}
	temp := byName["gpu_temperature"]
	if temp.Warning.Threshold != 70 || temp.Warning.For != 2*time.Minute {
		t.Errorf("gpu_temperature warning = %+v", temp.Warning)
	}
	if temp.Critical.Threshold != 85 || temp.Critical.Clear == nil || *temp.Critical.Clear != 80 {
		t.Errorf("gpu_temperature critical = %+v, want threshold kept, clear 80", temp.Critical)
	}
	if temp.Hysteresis != 3 || temp.Comparison != Above || temp.Message == "" {
		t.Errorf("gpu_temperature lost its other fields: %+v", temp)
	}
	if byName["host_offline"].Critical != nil {
		t.Error("host_offline critical level not removed")
	}
	busy := byName["gpu_busy"]
	if busy.Host != "gpu0*" || busy.KeepFiringFor != time.Minute || busy.NoData != NoDataResolve || busy.Warning.For != 30*time.Second {
		t.Errorf("gpu_busy = %+v", busy)
	}
	// The caller's defaults are untouched.
	for _, d := range defaults {
		if d.Name == "gpu_temperature" && (d.Warning.Threshold != 75 || d.Critical.Clear != nil) {
			t.Errorf("LoadRules changed the defaults: %+v %+v", d.Warning, d.Critical)
		}
	}
	if _, err := New(rules); err != nil {
		t.Fatalf("New(loaded rules): %v", err)
	}
}

func TestLoadRulesErrors(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"unknown key", "rules:\n  - name: gpu_power\n    treshold: 3\n", "treshold"},
		{"unknown top-level key", "rulez: []\n", "rulez"},
		{"bad duration", "rules:\n  - name: gpu_power\n    warning: {for: soon}\n", "soon"},
		{"bad rule names itself", "rules:\n  - name: gpu_power\n    comparison: \"!=\"\n", `"gpu_power": comparison`},
		{"incomplete new rule", "rules:\n  - name: mine\n    metric: gpu_power\n", `"mine": target`},
		{"no name", "rules:\n  - metric: gpu_power\n", "rule #1: name is empty"},
		{"twice", "rules:\n  - name: a\n    metric: gpu_power\n  - name: a\n", `"a": given twice`},
		{"misspelt default", "rules:\n  - name: gpu_powr\n    warning: {threshold: 600}\n", `"gpu_powr": not a default rule (gpu_utilization, `},
		{"misspelt default disabled", "rules:\n  - name: redis_hit_ratoi\n    disabled: true\n", `"redis_hit_ratoi": not a default rule`},
		{"not yaml", "rules: [\n", "rules file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadRules(strings.NewReader(tc.file), Defaults())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadRulesEmpty(t *testing.T) {
	rules, err := LoadRules(strings.NewReader(""), Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != len(Defaults()) {
		t.Fatalf("%d rules from an empty file", len(rules))
	}
}
