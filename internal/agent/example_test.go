package agent

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/sysperf/sysperf/internal/config"
)

// optionalLine is a commented-out setting of the example ("#key: v" or a
// "#  - item" of a list), as opposed to prose ("# text").
var optionalLine = regexp.MustCompile(`(?m)^#(  |[a-z-]+:)`)

// The example shipped in deploy/ must load as it is and with every optional
// line switched on, so the documentation cannot drift from the code.
func TestExampleConfigLoads(t *testing.T) {
	example, err := os.ReadFile("../../deploy/agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	all := filepath.Join(t.TempDir(), "all.yaml")
	if err := os.WriteFile(all, optionalLine.ReplaceAll(example, []byte("$1")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path       string
		scrape, matchers int
	}{
		{"as shipped", "../../deploy/agent.example.yaml", 0, 0},
		{"every option on", all, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if err := config.Load("agent", []string{"--config", tc.path}, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.RTDETRURL != "http://127.0.0.1:8090" || cfg.LLMURL != "http://127.0.0.1:8091" {
				t.Errorf("model URLs not read: %q %q", cfg.RTDETRURL, cfg.LLMURL)
			}
			if len(cfg.Scrape) != tc.scrape || len(cfg.ModelMatchers) != tc.matchers {
				t.Errorf("scrape targets %d, matchers %d; want %d, %d", len(cfg.Scrape), len(cfg.ModelMatchers), tc.scrape, tc.matchers)
			}
		})
	}
}
