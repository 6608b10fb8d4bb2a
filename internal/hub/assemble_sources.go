package hub

import (
	"fmt"
	"time"

	"github.com/sysperf/sysperf/internal/export"
	"github.com/sysperf/sysperf/internal/sources"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// SourceSettings are the settings of the hub's own sources (internal/
// sources) and of its /metrics (internal/export). Config embeds them.
type SourceSettings struct {
	PostgresDSN      string `flag:"postgres-dsn" usage:"PostgreSQL to watch (URL or key=value); read over one connection of the hub's own, never the application's pool"`
	PostgresDatabase string `flag:"postgres-database" usage:"database to watch (default: the DSN's)"`
	PostgresPoolSize int    `flag:"postgres-pool-size" usage:"the application's configured pool size, shown as connections_max (0: max_connections)"`
	RedisURL         string `flag:"redis-url" usage:"Redis to watch, redis://[:password@]host:port[/db]"`
	PrometheusURL    string `flag:"prometheus-url" usage:"optional Prometheus server: fills GPUs of hosts without an agent and latency no agent reports"`
	DockerHost       string `flag:"docker-host" usage:"Docker or Podman Engine API for container state (unix:///path or tcp://host:port; empty: DOCKER_HOST, then the usual sockets; none: off)"`

	// Postgres lists further databases to watch (YAML only). The first
	// fills databases.postgresql unless --postgres-dsn is given; the rest
	// databases.postgresql_extra.
	Postgres []sources.PostgresConfig `flag:"-" yaml:"postgres"`
}

// assembleSources builds the sources the settings ask for, when the caller
// gave none, and the /metrics exporter, when the caller gave no handler;
// the exporter then times every source's polls. Direct sources come
// first, Prometheus (a fallback) last.
func (h *Hub) assembleSources() error {
	if h.plugs.Sources == nil {
		// Close closes what was built, also when a later step fails.
		srcs, err := h.buildSources()
		h.plugs.Sources = srcs
		if err != nil {
			return err
		}
	}
	if h.plugs.Metrics == nil {
		e := export.New(exportView{h})
		h.observe = e.Observe
		h.plugs.Metrics = e.Handler()
	}
	return nil
}

// buildSources registers each source the settings ask for: one line per
// kind of source.
func (h *Hub) buildSources() ([]SourceSpec, error) {
	var out []SourceSpec
	timeout := h.cfg.SourceTimeout
	pgs := h.cfg.Postgres
	if h.cfg.PostgresDSN != "" {
		primary := sources.PostgresConfig{DSN: h.cfg.PostgresDSN, Database: h.cfg.PostgresDatabase, PoolSize: h.cfg.PostgresPoolSize}
		pgs = append([]sources.PostgresConfig{primary}, pgs...)
	}
	for i, pc := range pgs {
		pc.Timeout, pc.Extra = timeout, i > 0
		p, err := sources.NewPostgres(pc)
		if err != nil {
			return out, fmt.Errorf("postgres[%d]: %w", i, err)
		}
		out = append(out, SourceSpec{Name: p.Name(), Poll: p.Poll, Close: p.Close})
	}
	if h.cfg.RedisURL != "" {
		r, err := sources.NewRedis(h.cfg.RedisURL)
		if err != nil {
			return out, fmt.Errorf("redis-url: %w", err)
		}
		out = append(out, SourceSpec{Name: r.Name(), Poll: r.Poll, Close: r.Close})
	}
	c, err := sources.NewContainers(sources.ContainersConfig{
		Targets:     h.cfg.Containers,
		EngineHost:  h.cfg.DockerHost,
		PingTimeout: min(2*time.Second, timeout),
	})
	if err != nil {
		return out, fmt.Errorf("containers: %w", err)
	}
	// With nothing configured and no engine there is nothing to watch;
	// the section then says "not configured" rather than an empty list.
	if len(h.cfg.Containers) > 0 || c.HasEngine() {
		out = append(out, SourceSpec{Name: c.Name(), Poll: c.Poll})
	}
	if h.cfg.PrometheusURL != "" {
		p, err := sources.NewPrometheus(h.cfg.PrometheusURL, sources.PrometheusOptions{Timeout: min(2*time.Second, timeout)})
		if err != nil {
			return out, err
		}
		out = append(out, SourceSpec{Name: p.Name(), Fallback: p.Fallback(), Poll: p.Poll})
	}
	return out, nil
}

// closeSources closes the sources that declared a Close.
func closeSources(specs []SourceSpec) {
	for _, s := range specs {
		if s.Close != nil {
			_ = s.Close()
		}
	}
}

// exportView is what the exporter reads of the hub at scrape time.
type exportView struct{ h *Hub }

// Ingest reads ingest only once the first update exists: /metrics is
// served while NATS is waited for, before ingest is made (ordered as
// Clients is).
func (v exportView) Ingest() export.Ingest {
	if v.h.latest.Load() == nil {
		return export.Ingest{}
	}
	s, l := v.h.in.Stats(), v.h.LiveStats()
	in := export.Ingest{
		Samples: s.Samples, Late: s.Late, Observations: s.Observations,
		Dropped: s.Dropped, ObservationsDropped: s.ObservationsDropped, Hosts: s.Hosts,
		Gaps: l.Gaps, ReadBack: l.ReadBack, Stalls: l.Stalls, Short: l.Short,
	}
	if d, ok := v.h.streamWatch().held(metrics.StreamSamples); ok {
		in.Held = &d
	}
	return in
}

// Clients reads the server only once the first update exists: Start sets
// h.srv before that update is stored, so the atomic load orders the read.
func (v exportView) Clients() int {
	if v.h.latest.Load() == nil {
		return 0
	}
	return v.h.srv.Clients()
}

// ClientsDropped is ordered like Clients.
func (v exportView) ClientsDropped() uint64 {
	if v.h.latest.Load() == nil {
		return 0
	}
	return v.h.srv.Dropped()
}

// ClientsRefused is ordered like Clients.
func (v exportView) ClientsRefused() uint64 {
	if v.h.latest.Load() == nil {
		return 0
	}
	return v.h.srv.Refused()
}

func (v exportView) Latest() *metrics.Update { return v.h.latest.Load() }
