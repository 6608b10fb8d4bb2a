package hub

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/config"
)

const example = "../../deploy/sysperf.example.yaml"

// The shipped example must load as it is, and with every optional
// "#key: value" line switched on, so that no key it documents is one the
// hub does not know.
func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	if err := config.Load("hub", []string{"--config", example}, &cfg); err != nil {
		t.Fatalf("%s: %v", example, err)
	}
	if cfg.HTTP != "127.0.0.1:8321" || cfg.Interval != 5*time.Second || cfg.Replay != time.Hour {
		t.Fatalf("loaded %+v", cfg)
	}
	if len(cfg.Containers) != 6 || cfg.Containers[0].Name != "backend" || cfg.Containers[0].HealthURL == "" {
		t.Fatalf("containers %+v, want the seed's six", cfg.Containers)
	}

	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	optional := 0
	for _, l := range strings.Split(string(b), "\n") {
		// Prose is "# text" or "##"; a setting is "#key:" or "#  nested".
		if len(l) > 1 && l[0] == '#' && (l[1] != ' ' && l[1] != '#' || strings.HasPrefix(l, "#  ")) {
			l = l[1:]
			optional++
		}
		lines = append(lines, l)
	}
	if optional < 10 {
		t.Fatalf("found %d optional lines; the example's convention changed?", optional)
	}
	all := filepath.Join(t.TempDir(), "all.yaml")
	if err := os.WriteFile(all, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = DefaultConfig()
	if err := config.Load("hub", []string{"--config", all}, &cfg); err != nil {
		t.Fatalf("%s with every optional line on: %v", example, err)
	}
	if cfg.NATSURL == "" || cfg.PostgresDSN == "" || len(cfg.Postgres) != 1 || cfg.Postgres[0].PoolSize != 10 || len(cfg.Webhooks) != 1 {
		t.Fatalf("optional settings not loaded: %+v", cfg)
	}
}

// Every setting of the hub is documented in the example, as a plain or
// an optional "#key:" line, so the file stays the full reference.
func TestExampleConfigListsEverySetting(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for f := range typ.Fields() {
			switch name := f.Tag.Get("flag"); {
			case f.Anonymous && name == "":
				walk(f.Type)
			case name == "-":
				keys = append(keys, f.Tag.Get("yaml"))
			case name != "":
				keys = append(keys, name)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	if len(keys) < 20 {
		t.Fatalf("found only %d settings in Config: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !regexp.MustCompile(`(?m)^#?` + regexp.QuoteMeta(k) + `:`).Match(b) {
			t.Errorf("%s does not document %q", example, k)
		}
	}
}
