package config

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysperf/sysperf/internal/agent"
	"github.com/sysperf/sysperf/internal/hub"
)

type hubFile struct {
	hub.Config
	LogLevel slog.Level `flag:"log-level" usage:"level"`
}

// loadHubFile loads data as the hub's --config file.
func loadHubFile(data string) (hubFile, error) {
	hs := hubFile{Config: hub.DefaultConfig()}
	read := func(string) ([]byte, error) { return []byte(data), nil }
	noEnv := func(string) (string, bool) { return "", false }
	return hs, load("hub", []string{"--config", "hub.yaml"}, noEnv, read, io.Discard, &hs)
}

// TestHubFileEdgeCases holds YAML that is valid but odd, or hostile: each
// is refused with an error naming what is wrong, or taken as meant; none
// may crash or hang the loader (the agent's included).
func TestHubFileEdgeCases(t *testing.T) {
	// 10^12 containers through ten levels of aliases, if expanded.
	bomb := "containers:\n  - &a0 {name: a}\n"
	for i := 1; i <= 12; i++ {
		prev := "*a" + string(rune('a'+i-1))
		if i == 1 {
			prev = "*a0"
		}
		bomb += "  - &a" + string(rune('a'+i)) + " [" + strings.Repeat(prev+", ", 9) + prev + "]\n"
	}
	cases := []struct {
		name, yaml, wantErr string
		check               func(hubFile) bool
	}{
		{name: "top-level list", yaml: "- a\n- b\n", wantErr: "top level must be a mapping"},
		{name: "top-level null", yaml: "~\n", wantErr: "top level must be a mapping"},
		{name: "duplicate key", yaml: "interval: 5s\ninterval: 6s\n", wantErr: `line 2: key "interval" set twice (first on line 1)`},
		{name: "duplicate list", yaml: "containers: [{name: a}]\ncontainers: [{name: b}]\n", wantErr: `key "containers" set twice`},
		{name: "duplicate inner key", yaml: "containers: [{name: a, name: b}]\n", wantErr: `"name" already defined`},
		{name: "null list", yaml: "containers: ~\npostgres: null\n", check: func(h hubFile) bool { return h.Containers == nil && h.Postgres == nil }},
		{name: "null item", yaml: "containers: [~]\n", check: func(h hubFile) bool { return len(h.Containers) == 0 }},
		{name: "mapping for a list", yaml: "postgres: {dsn: x}\n", wantErr: "cannot unmarshal !!map into []sources.PostgresConfig"},
		{name: "huge int", yaml: "nats-max-store: 99999999999999999999999\n", wantErr: `key "nats-max-store": size "99999999999999999999999" too large`},
		{name: "huge int inside", yaml: "postgres: [{pool_size: 99999999999999999999}]\n", wantErr: "into int"},
		{name: "merge key", yaml: "containers:\n  - &c {name: api, health_url: 'http://api/health'}\n  - {<<: *c, name: worker}\n",
			check: func(h hubFile) bool {
				return len(h.Containers) == 2 && h.Containers[1].Name == "worker" && h.Containers[1].HealthURL == "http://api/health"
			}},
		{name: "misspelt key in a merge", yaml: "containers: [{<<: {nmae: a}}]\n", wantErr: `key "containers[0].nmae": unknown key`},
		{name: "merge of itself", yaml: "containers: [&a {<<: *a}]\n", wantErr: "contains itself"},
		{name: "merge of a scalar", yaml: "containers: [{<<: [{name: a}, ~]}]\n", wantErr: "map merge requires map"},
		{name: "list of itself", yaml: "containers: &a [*a]\n", wantErr: "cannot unmarshal"},
		{name: "alias bomb", yaml: bomb, wantErr: "cannot unmarshal !!seq"},
		{name: "alias as a key", yaml: "x: &k interval\n", wantErr: `unknown key "x"`},
		{name: "complex key", yaml: "? [a]\n: b\n", wantErr: `unknown key ""`},
		{name: "tagged value", yaml: "interval: !!binary aGVsbG8=\n", wantErr: "not a duration"},
		{name: "level out of range", yaml: "log-level: DEBUG+99999999999999999999\n", wantErr: "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := loadHubFile(tc.yaml)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.check != nil && !tc.check(h):
				t.Fatalf("loaded %+v", h.Config)
			}
			ac := agent.DefaultConfig()
			_ = load("agent", []string{"--config", "agent.yaml"}, func(string) (string, bool) { return "", false },
				func(string) ([]byte, error) { return []byte(tc.yaml), nil }, io.Discard, &ac)
		})
	}
}

// TestConfigFileBounded: a --config that never ends (/dev/zero) or is far
// too large is refused, not read into memory.
func TestConfigFileBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", maxFile)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{big}
	if _, err := os.Stat("/dev/zero"); err == nil {
		paths = append(paths, "/dev/zero")
	}
	for _, p := range paths {
		s := defaults()
		err := Load("hub", []string{"--config", p}, &s)
		if err == nil || !strings.Contains(err.Error(), "too large for a config file") {
			t.Errorf("--config %s: %v, want it refused as too large", p, err)
		}
	}
	ok := filepath.Join(t.TempDir(), "ok.yaml")
	if err := os.WriteFile(ok, []byte("http: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := defaults()
	if err := Load("hub", []string{"--config", ok}, &s); err != nil || s.HTTP != "127.0.0.1:1" {
		t.Fatalf("a small file: %v, http %q", err, s.HTTP)
	}
}
