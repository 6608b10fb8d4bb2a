package hub

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type servedRule struct {
	Name     string `json:"name"`
	Metric   string `json:"metric"`
	Disabled bool   `json:"disabled"`
	Warning  *struct {
		Threshold float64 `json:"threshold"`
		For       string  `json:"for"`
	} `json:"warning"`
	Critical *struct {
		Threshold float64 `json:"threshold"`
		For       string  `json:"for"`
	} `json:"critical"`
}

func servedRules(t *testing.T, h *Hub) map[string]servedRule {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(authed("http://"+h.HTTPAddr()+"/api/v1/rules", readToken(t, h.TokenFile())))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/rules: %s", resp.Status)
	}
	var body struct {
		Rules []servedRule `json:"rules"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]servedRule{}
	for _, r := range body.Rules {
		out[r.Name] = r
	}
	return out
}

// The hub serves the rules it evaluates: the defaults, or the defaults
// with the --rules file applied (power is a share of the card's limit).
func TestHubServesEffectiveRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		file             string
		warn, crit       float64
		critFor          string
		redisHitDisabled bool
	}{
		{name: "defaults", warn: 90, crit: 98, critFor: "1m0s"},
		{
			name: "rules file",
			file: "rules:\n  - name: gpu_power\n    warning: {threshold: 85}\n    critical: {threshold: 95, for: 3m}\n  - name: redis_hit_ratio\n    disabled: true\n",
			warn: 85, crit: 95, critFor: "3m0s", redisHitDisabled: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tt.file != "" {
				cfg.Rules = filepath.Join(t.TempDir(), "rules.yaml")
				if err := os.WriteFile(cfg.Rules, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			rules := servedRules(t, startHub(t, cfg))
			p, ok := rules["gpu_power"]
			if !ok || p.Disabled || p.Warning == nil || p.Critical == nil {
				t.Fatalf("gpu_power: %+v (listed %v)", p, ok)
			}
			if p.Warning.Threshold != tt.warn || p.Warning.For != "2m0s" || p.Critical.Threshold != tt.crit || p.Critical.For != tt.critFor {
				t.Errorf("gpu_power warning %+v critical %+v, want %v/2m0s and %v/%s", *p.Warning, *p.Critical, tt.warn, tt.crit, tt.critFor)
			}
			if r, ok := rules["redis_hit_ratio"]; !ok || r.Disabled != tt.redisHitDisabled {
				t.Errorf("redis_hit_ratio: %+v (listed %v), want disabled %v", r, ok, tt.redisHitDisabled)
			}
			if r := rules["gpu_temperature"]; r.Disabled || r.Warning == nil || r.Warning.Threshold != 75 {
				t.Errorf("gpu_temperature: %+v", r)
			}
		})
	}
}
