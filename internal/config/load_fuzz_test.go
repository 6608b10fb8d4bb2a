package config

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/sysperf/sysperf/internal/agent"
	"github.com/sysperf/sysperf/internal/hub"
	"github.com/sysperf/sysperf/internal/notify"
	"github.com/sysperf/sysperf/internal/sources"
)

// FuzzLoad feeds arbitrary bytes as the --config file of both programs'
// settings, with arbitrary flags and one environment variable: bad input
// is refused with an error, never crashes the loader. Seeds are the
// documented example files.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../../deploy/sysperf.example.yaml", "../../deploy/agent.example.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "", "")
	}
	f.Add([]byte("containers:\n  - name: a\n    health_url: http://u:p@h/x?token=t\n"), "--interval=5s --webhook=a,b", "SYSPERF_LOG_LEVEL=debug")
	f.Add([]byte("scrape: []\nmodel-matchers: {}\n"), "-h", "SYSPERF_INTERVAL=1s")
	// Anchors, aliases, merge keys, tags and flow style, which mutation
	// alone rarely builds.
	f.Add([]byte("containers: &a [{name: x, health_url: 'http://h/'}]\npostgres: *a\n"), "", "")
	f.Add([]byte("postgres: [&p {dsn: !!str host=x, <<: {database: d}}, *p]\nwebhook: [a, *p]\n"), "", "")
	f.Add([]byte("? !!str containers\n: [{name: a}, ~, {}]\nscrape: [{url: http://h/m, histograms: &h {rtdetr: x}, counters: *h}]\n"), "", "")
	f.Add([]byte("model-matchers: [{model: rtdetr, command: '*', container: x}]\nlog-level: DEBUG+2\ninterval: 1ns\n"), "", "")
	// Merge keys, self-merges and keys set twice (TestHubFileEdgeCases).
	f.Add([]byte("containers:\n  - &c {name: a, health_url: 'http://h/'}\n  - {<<: *c, name: b}\n  - &s {<<: *s}\ninterval: 5s\ninterval: 6s\n"), "", "")
	f.Fuzz(func(t *testing.T, data []byte, args, env string) {
		name, value, _ := strings.Cut(env, "=")
		noEnv := func(k string) (string, bool) {
			if k == name {
				return value, true
			}
			return "", false
		}
		read := func(string) ([]byte, error) { return data, nil }
		type hubSettings struct {
			hub.Config
			LogLevel slog.Level `flag:"log-level" usage:"level"`
		}
		hs := hubSettings{Config: hub.DefaultConfig()}
		if load("hub", append([]string{"--config", "hub.yaml"}, strings.Fields(args)...), noEnv, read, io.Discard, &hs) == nil {
			buildHubParts(t, hs.Config)
		}
		ac := agent.DefaultConfig()
		_ = load("agent", append([]string{"--config", "agent.yaml"}, strings.Fields(args)...), noEnv, read, io.Discard, &ac)
	})
}

// buildHubParts makes what hub.Start makes of the loaded settings before
// any I/O: every source and the webhook notifier. A setting the loader let
// through may be refused there, but must not crash.
func buildHubParts(t *testing.T, c hub.Config) {
	pgs := c.Postgres
	if c.PostgresDSN != "" {
		pgs = append([]sources.PostgresConfig{{DSN: c.PostgresDSN, Database: c.PostgresDatabase, PoolSize: c.PostgresPoolSize}}, pgs...)
	}
	for _, pc := range pgs {
		_, _ = sources.NewPostgres(pc)
	}
	if c.RedisURL != "" {
		if r, err := sources.NewRedis(c.RedisURL); err == nil {
			_ = r.Close()
		}
	}
	_, _ = sources.NewContainers(sources.ContainersConfig{Targets: c.Containers, EngineHost: c.DockerHost})
	if c.PrometheusURL != "" {
		_, _ = sources.NewPrometheus(c.PrometheusURL, sources.PrometheusOptions{})
	}
	_, _ = notify.New(notify.Config{URLs: c.Webhooks}, slog.New(slog.DiscardHandler))
}
