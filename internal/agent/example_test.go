package agent

import (
	"os"
	"path/filepath"
	"reflect"
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
	t.Parallel()
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
		models           int
	}{
		{"as shipped", "../../deploy/agent.example.yaml", 0, 0, 0},
		{"every option on", all, 2, 2, 3},
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
			if len(cfg.Models) != tc.models {
				t.Errorf("models %d, want %d", len(cfg.Models), tc.models)
			}
		})
	}
}

// Every setting of the agent is documented in the example, as a plain or
// an optional "#key:" line, so the file stays the full reference. --once
// and --config are for the command line only.
func TestExampleConfigListsEverySetting(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../deploy/agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for f := range reflect.TypeFor[Config]().Fields() {
		switch name := f.Tag.Get("flag"); name {
		case "", "once", "config":
		case "-":
			keys = append(keys, f.Tag.Get("yaml"))
		default:
			keys = append(keys, name)
		}
	}
	if len(keys) < 12 {
		t.Fatalf("found only %d settings in Config: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !regexp.MustCompile(`(?m)^#?` + regexp.QuoteMeta(k) + `:`).Match(b) {
			t.Errorf("the example does not document %q", k)
		}
	}
}

// Under systemd the backlog goes to the unit's state directory; elsewhere
// it stays in memory unless told where.
func TestDefaultBacklogDir(t *testing.T) {
	for _, tc := range []struct {
		state string
		set   bool
		want  string
	}{
		{"", false, ""},
		{"", true, ""},
		{"/var/lib/sysperf-agent", true, "/var/lib/sysperf-agent/backlog"},
		// systemd joins several directories with ':'.
		{"/var/lib/sysperf-agent:/var/lib/other", true, "/var/lib/sysperf-agent/backlog"},
	} {
		if tc.set {
			t.Setenv("STATE_DIRECTORY", tc.state)
		} else {
			t.Setenv("STATE_DIRECTORY", "")
			os.Unsetenv("STATE_DIRECTORY")
		}
		if got := DefaultConfig().BacklogDir; got != tc.want {
			t.Errorf("STATE_DIRECTORY=%q (set %v): backlog dir %q, want %q", tc.state, tc.set, got, tc.want)
		}
	}
	t.Setenv("STATE_DIRECTORY", "/var/lib/sysperf-agent")
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"default", nil, "", "/var/lib/sysperf-agent/backlog"},
		{"flag", []string{"--backlog-dir", "/srv/q"}, "", "/srv/q"},
		{"env", nil, "/srv/e", "/srv/e"},
		{"empty flag: memory only", []string{"--backlog-dir="}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("SYSPERF_BACKLOG_DIR", tc.env)
			}
			cfg := DefaultConfig()
			if err := config.Load("agent", tc.args, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.BacklogDir != tc.want {
				t.Errorf("backlog dir %q, want %q", cfg.BacklogDir, tc.want)
			}
		})
	}
}
