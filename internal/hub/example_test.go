package hub

import (
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/config"
)

// The shipped example must load: every key it sets is one the hub knows.
func TestExampleConfigLoads(t *testing.T) {
	cfg := DefaultConfig()
	if err := config.Load("hub", []string{"--config", "../../deploy/sysperf.example.yaml"}, &cfg); err != nil {
		t.Fatalf("deploy/sysperf.example.yaml: %v", err)
	}
	if cfg.HTTP != "127.0.0.1:8321" || cfg.Interval != 5*time.Second || cfg.Replay != time.Hour {
		t.Fatalf("loaded %+v", cfg)
	}
	if len(cfg.Containers) != 6 || cfg.Containers[0].Name != "backend" || cfg.Containers[0].HealthURL == "" {
		t.Fatalf("containers %+v, want the seed's six", cfg.Containers)
	}
}
