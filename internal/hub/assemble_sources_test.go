package hub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysperf/sysperf/internal/config"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// The sources' settings load from flags, env and YAML lists, and build the
// sources in order: direct ones first, Prometheus last.
func TestSourceSettingsBuildSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hub.yaml")
	yaml := `redis-url: redis://127.0.0.1:6379/0
postgres:
  - dsn: postgres://postgres@127.0.0.1:5432/test
    pool_size: 20
  - dsn: "host=127.0.0.1 user=postgres password=hunter2 dbname=postgres"
    database: test
containers:
  - name: backend
    health_url: http://127.0.0.1:8000/health
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SYSPERF_PROMETHEUS_URL", "http://127.0.0.1:9090")
	cfg := DefaultConfig()
	if err := config.Load("hub", []string{"--config", file, "--docker-host", "none", "--postgres-pool-size", "7"}, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Postgres) != 2 || cfg.Postgres[0].PoolSize != 20 || cfg.Postgres[1].Database != "test" ||
		cfg.PrometheusURL != "http://127.0.0.1:9090" || cfg.DockerHost != "none" || cfg.PostgresPoolSize != 7 {
		t.Fatalf("loaded %+v", cfg.SourceSettings)
	}
	h := &Hub{cfg: cfg}
	srcs, err := h.buildSources()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, s.Name)
	}
	want := []string{metrics.SectionPostgreSQL, metrics.SectionPostgreSQL + "_extra/test", metrics.SectionRedis, metrics.SectionContainers, "prometheus"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("sources %v, want %v", names, want)
	}
	for i, s := range srcs {
		if s.Fallback != (i == len(srcs)-1) {
			t.Errorf("%s: fallback %v; only prometheus is the fallback", s.Name, s.Fallback)
		}
	}
	closeSources(srcs)

	bad := cfg
	bad.RedisURL = "redis://:pw@host:notaport"
	h = &Hub{cfg: bad}
	if _, err := h.buildSources(); err == nil || !strings.Contains(err.Error(), "redis-url") || strings.Contains(err.Error(), ":pw@") {
		t.Errorf("bad redis-url: %v", err)
	}
}
