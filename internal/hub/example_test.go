package hub

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/config"
	"github.com/sysperf/sysperf/pkg/metrics"
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
	// Sizes are written with units.
	if cfg.NATSMaxStore != 10<<30 || cfg.StreamMaxBytes != 4<<30 {
		t.Fatalf("nats-max-store %d, stream-max-bytes %d; want 10GiB and 4GiB", cfg.NATSMaxStore, cfg.StreamMaxBytes)
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

// portSource is an example of a new hub source, whole in this one file: it
// watches that a service accepts TCP connections and shows it as a
// container. It fills only its own section; the hub writes its entries in
// the update's sources, errors and stale from the reading.
func portSource(name, addr string) SourceSpec {
	return SourceSpec{Name: metrics.SectionContainers, Poll: func(ctx context.Context) Reading {
		c := metrics.Container{Name: name, Status: "running", Health: metrics.StatusHealthy}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		reason := ""
		if err != nil {
			reason = fmt.Sprintf("%s: %v", name, err)
			c.Health, c.Reason = metrics.StatusUnhealthy, reason
		} else {
			_ = conn.Close()
		}
		return Reading{Via: "tcp", Reason: reason, Up: err == nil, Fill: func(u *metrics.Update) map[string]bool {
			u.Containers = append(u.Containers, c)
			return nil
		}}
	}}
}

// A new source takes one file (portSource above) and one line of
// registration; the hub does the rest: polling, the update's bookkeeping,
// and /metrics.
func TestExampleSourceRegistered(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	var plugs Plugs
	plugs.Sources = append(plugs.Sources, portSource("queue", l.Addr().String())) // the registration
	h := startHub(t, testConfig(t), plugs)

	up := performance(t, h, func(u metrics.Update) bool {
		return len(u.Containers) == 1 && u.Containers[0].Health == metrics.StatusHealthy
	})
	if up.Containers[0].Name != "queue" || up.Sources[metrics.SectionContainers] != "tcp" || up.Stale[metrics.SectionContainers] {
		t.Fatalf("containers %+v sources %v stale %v", up.Containers, up.Sources, up.Stale)
	}
	if why, ok := up.Errors[metrics.SectionContainers]; ok {
		t.Fatalf("errors[containers] = %q while the port answers", why)
	}

	_ = l.Close()
	down := performance(t, h, func(u metrics.Update) bool {
		return len(u.Containers) == 1 && u.Containers[0].Health == metrics.StatusUnhealthy
	})
	if why := down.Errors[metrics.SectionContainers]; !strings.Contains(why, "queue") || !strings.Contains(why, "refused") {
		t.Fatalf("errors[containers] = %q, want the refused connection", why)
	}
	if down.Sources[metrics.SectionContainers] != "tcp" || down.Containers[0].Reason != down.Errors[metrics.SectionContainers] {
		t.Fatalf("sources %v container %+v", down.Sources, down.Containers[0])
	}
	// The hub timed the polls for /metrics, and the reading told it the
	// port no longer answers.
	code, body := fetch("http://"+h.HTTPAddr()+"/metrics", readToken(t, h.TokenFile()))
	if code != http.StatusOK || !strings.Contains(body, `sysperf_source_up{source="containers"} 0`+"\n") ||
		!strings.Contains(body, `sysperf_source_poll_duration_seconds_count{source="containers"}`) {
		t.Fatalf("/metrics: %d, want the source's up and poll duration in:\n%s", code, body)
	}
}
