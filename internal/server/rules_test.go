package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sysperf/sysperf/pkg/alerts"
)

type ruleJSON struct {
	Name       string `json:"name"`
	Metric     string `json:"metric"`
	Target     string `json:"target"`
	Match      string `json:"match"`
	Comparison string `json:"comparison"`
	Warning    *struct {
		Threshold float64 `json:"threshold"`
		For       string  `json:"for"`
	} `json:"warning"`
	Critical *struct {
		Threshold float64 `json:"threshold"`
		For       string  `json:"for"`
	} `json:"critical"`
	Disabled bool `json:"disabled"`
}

func engine(t *testing.T, file string) *alerts.Engine {
	t.Helper()
	rules, err := alerts.LoadRules(strings.NewReader(file), alerts.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	e, err := alerts.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func getRules(t *testing.T, s *Server) map[string]ruleJSON {
	t.Helper()
	code, hdr, body := get(t, "http://"+s.Addr()+"/api/v1/rules")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/v1/rules: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	var b struct {
		Rules []ruleJSON `json:"rules"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	out := map[string]ruleJSON{}
	for _, r := range b.Rules {
		if _, dup := out[r.Name]; dup {
			t.Fatalf("rule %s listed twice", r.Name)
		}
		out[r.Name] = r
	}
	return out
}

func TestRulesEndpoint(t *testing.T) {
	t.Run("not configured", func(t *testing.T) {
		s := start(t, Config{})
		code, _, body := get(t, "http://"+s.Addr()+"/api/v1/rules")
		if code != http.StatusNotImplemented || !strings.Contains(body, "not configured") {
			t.Fatalf("%d %s", code, body)
		}
	})

	t.Run("defaults", func(t *testing.T) {
		rules := getRules(t, start(t, Config{Rules: engine(t, "")}))
		if len(rules) != len(alerts.Defaults()) {
			t.Fatalf("%d rules, want the %d defaults", len(rules), len(alerts.Defaults()))
		}
		p := rules["gpu_power"]
		if p.Metric != "gpu_power_percent" || p.Target != "gpu" || p.Comparison != ">" || p.Disabled ||
			p.Warning == nil || p.Warning.Threshold != 90 || p.Warning.For != "2m0s" ||
			p.Critical == nil || p.Critical.Threshold != 98 || p.Critical.For != "1m0s" {
			t.Fatalf("gpu_power: %+v %+v %+v", p, p.Warning, p.Critical)
		}
		w := rules["gpu_power_watts"]
		if w.Metric != "gpu_power_no_limit" || w.Target != "gpu" || w.Comparison != ">" || w.Disabled ||
			w.Warning == nil || w.Warning.Threshold != 300 || w.Warning.For != "2m0s" ||
			w.Critical == nil || w.Critical.Threshold != 350 || w.Critical.For != "1m0s" {
			t.Fatalf("gpu_power_watts: %+v %+v %+v", w, w.Warning, w.Critical)
		}
		if r := rules["rtdetr_latency_p95"]; r.Match != "rtdetr" || r.Metric != "model_latency_p95_ms" {
			t.Fatalf("rtdetr_latency_p95: %+v", r)
		}
		if r := rules["redis_hit_ratio"]; r.Comparison != "<" || r.Warning.Threshold != 50 || r.Critical.Threshold != 10 {
			t.Fatalf("redis_hit_ratio: %+v", r)
		}
	})

	t.Run("rules file applied", func(t *testing.T) {
		rules := getRules(t, start(t, Config{Rules: engine(t, `
rules:
  - name: gpu_power
    warning: {threshold: 600}
    critical: {threshold: 680, for: 2m}
  - name: gpu_temperature
    critical: {disabled: true}
  - name: redis_hit_ratio
    disabled: true
  - name: gpu_fan
    metric: gpu_utilization
    target: gpu
    comparison: ">"
    warning: {threshold: 50, for: 30s}
    message: "busy"
`)}))
		p := rules["gpu_power"]
		if p.Warning.Threshold != 600 || p.Warning.For != "2m0s" || p.Critical.Threshold != 680 || p.Critical.For != "2m0s" || p.Disabled {
			t.Errorf("gpu_power: %+v %+v", p.Warning, p.Critical)
		}
		if tmp := rules["gpu_temperature"]; tmp.Critical != nil || tmp.Warning == nil || tmp.Warning.Threshold != 75 {
			t.Errorf("gpu_temperature: %+v", tmp)
		}
		if r, ok := rules["redis_hit_ratio"]; !ok || !r.Disabled || r.Warning != nil || r.Critical != nil || r.Metric != "redis_hit_ratio" {
			t.Errorf("redis_hit_ratio: %+v (listed %v)", r, ok)
		}
		if r := rules["gpu_fan"]; r.Warning == nil || r.Warning.Threshold != 50 || r.Critical != nil || r.Disabled {
			t.Errorf("gpu_fan: %+v", r)
		}
		if len(rules) != len(alerts.Defaults())+1 {
			t.Errorf("%d rules, want the defaults and gpu_fan", len(rules))
		}
	})
}
