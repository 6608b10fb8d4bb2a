package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sysperf/sysperf/internal/hub"
	"github.com/sysperf/sysperf/internal/sources"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

const e2ePGDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// TestSourcesEndToEnd runs a hub with its own sources against the
// machine's PostgreSQL, a private Redis and two container health
// endpoints, reads them over the WebSocket, kills Redis and checks that
// only Redis turns unreachable, then brings it back.
func TestSourcesEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	pg, err := pgx.Connect(ctx, e2ePGDSN)
	cancel()
	if err != nil {
		sourcestest.Need(t, "PostgreSQL at 127.0.0.1:5432: %v", err)
	}
	defer pg.Close(context.Background())

	rd := sourcestest.StartRedis(t)
	redisAddr := rd.Addr()

	okSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"status":"ok"}`) }))
	defer okSrv.Close()
	badSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer badSrv.Close()
	const secret = "e2e-Secret-771"
	deadPG := "postgres://postgres:" + secret + "@" + sourcestest.FreeAddr(t) + "/x?sslmode=disable"

	h := StartHub(t, 500*time.Millisecond, func(c *hub.Config) {
		c.PostgresDSN = e2ePGDSN
		c.PostgresPoolSize = 30
		c.Postgres = []sources.PostgresConfig{{DSN: deadPG}}
		c.RedisURL = "redis://" + redisAddr
		c.DockerHost = "none"
		c.Containers = []sources.ContainerTarget{
			{Name: "backend", HealthURL: okSrv.URL + "/health"},
			{Name: "frontend", HealthURL: badSrv.URL + "/"},
		}
		c.SourceTimeout = 2 * time.Second
	})
	ws := DialWS(t, h)

	// TPM needs two readings, so wait for it rather than the first poll.
	raw, u := ws.UpdateWhere(t, "postgres and redis healthy, TPM known", func(u metrics.Update) bool {
		return u.Databases.PostgreSQL.Status == metrics.StatusHealthy && u.Databases.PostgreSQL.TransactionsPerMin != nil &&
			u.Databases.Redis.Status == metrics.StatusHealthy && len(u.Containers) == 2
	})
	p := u.Databases.PostgreSQL
	if p.ConnectionsMax == nil || *p.ConnectionsMax != 30 || p.ConnectionsActive == nil || p.Database != "test" || *p.TransactionsPerMin < 0 {
		t.Errorf("postgresql %+v", p)
	}
	r := u.Databases.Redis
	if r.ConnectedClients == nil || *r.ConnectedClients < 1 || r.MemoryMB == nil || *r.MemoryMB <= 0 || r.BlockedClients == nil {
		t.Errorf("redis %+v", r)
	}
	if r.HitRatio != nil {
		t.Errorf("redis hit ratio %v on a server nobody looked a key up in", *r.HitRatio)
	}
	byName := map[string]metrics.Container{}
	for _, c := range u.Containers {
		byName[c.Name] = c
	}
	if c := byName["backend"]; c.Health != "healthy" || c.Status != sources.StateUnknown || len(c.Timeline) == 0 {
		t.Errorf("backend %+v", c)
	}
	if c := byName["frontend"]; c.Health != "unhealthy" || c.Reason != "HTTP 500" {
		t.Errorf("frontend %+v", c)
	}
	if len(u.Databases.PostgreSQLExtra) != 1 || u.Databases.PostgreSQLExtra[0].Status != metrics.StatusUnreachable ||
		!strings.Contains(u.Databases.PostgreSQLExtra[0].Reason, "refused") {
		t.Errorf("dead extra database: %+v", u.Databases.PostgreSQLExtra)
	}
	for sec, want := range map[string]string{metrics.SectionPostgreSQL: "postgres", metrics.SectionRedis: "redis", metrics.SectionContainers: "ping"} {
		if u.Sources[sec] != want {
			t.Errorf("sources[%s] = %q, want %q", sec, u.Sources[sec], want)
		}
	}
	// The seed's field names, as JSON.
	dbs, _ := raw["databases"].(map[string]any)
	pgRaw, _ := dbs["postgresql"].(map[string]any)
	for _, k := range []string{"status", "connections_active", "connections_max", "cache_hit_ratio", "transactions_per_min"} {
		if _, ok := pgRaw[k]; !ok {
			t.Errorf("databases.postgresql.%s missing from the JSON", k)
		}
	}

	// Kill Redis: the next poll says so; nothing else moves.
	rd.Stop()
	raw, u = ws.UpdateWhere(t, "redis unreachable", func(u metrics.Update) bool {
		return u.Databases.Redis.Status == metrics.StatusUnreachable
	})
	if u.Databases.Redis.Reason == "" || u.Errors[metrics.SectionRedis] == "" {
		t.Errorf("unreachable without a reason: %+v %v", u.Databases.Redis, u.Errors)
	}
	if u.Databases.Redis.ConnectedClients != nil || u.Databases.Redis.MemoryMB != nil {
		t.Errorf("figures kept for a dead Redis: %+v", u.Databases.Redis)
	}
	if u.Databases.PostgreSQL.Status != metrics.StatusHealthy || len(u.Containers) != 2 || u.Stale[metrics.SectionPostgreSQL] {
		t.Errorf("the rest changed with Redis down: pg %q containers %d stale %v", u.Databases.PostgreSQL.Status, len(u.Containers), u.Stale)
	}
	t.Logf("redis down: %s", u.Databases.Redis.Reason)

	var body bytes.Buffer
	req, err := http.NewRequest(http.MethodGet, h.BaseURL()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Auth(t)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(&body, resp.Body)
	resp.Body.Close()
	for _, want := range []string{`sysperf_source_up{source="databases.redis"} 0`, `sysperf_source_up{source="databases.postgresql"} 1`, `sysperf_container_health{container="frontend",health="unhealthy"} 1`} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if bin, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body.Bytes())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on the hub's /metrics: %v\n%s", err, out)
		}
	}

	// Back again.
	rd.Start()
	ws.UpdateWhere(t, "redis healthy again", func(u metrics.Update) bool {
		return u.Databases.Redis.Status == metrics.StatusHealthy
	})

	// No password anywhere a user can see it.
	var perf map[string]any
	GetJSON(t, h, "/api/v1/performance", &perf)
	for where, text := range map[string]string{"websocket": fmt.Sprint(raw), "api": fmt.Sprint(perf), "/metrics": body.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("password shown in %s", where)
		}
	}
}

// dcgmExporter serves one GPU as NVIDIA's DCGM exporter does.
func dcgmExporter(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	const l = `{gpu="0",UUID="GPU-5a5b",device="nvidia0",modelName="NVIDIA RTX A5500",Hostname="cam-box"}`
	fmt.Fprintf(w, "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\nDCGM_FI_DEV_GPU_UTIL%s 38\n", l)
	fmt.Fprintf(w, "# TYPE DCGM_FI_DEV_FB_USED gauge\nDCGM_FI_DEV_FB_USED%s 23245\n", l)
	fmt.Fprintf(w, "# TYPE DCGM_FI_DEV_FB_FREE gauge\nDCGM_FI_DEV_FB_FREE%s 1331\n", l)
	fmt.Fprintf(w, "# TYPE DCGM_FI_DEV_GPU_TEMP gauge\nDCGM_FI_DEV_GPU_TEMP%s 38\n", l)
	fmt.Fprintf(w, "# TYPE DCGM_FI_DEV_POWER_USAGE gauge\nDCGM_FI_DEV_POWER_USAGE%s 31\n", l)
}

// TestPrometheusFallbackEndToEnd: a hub with no agent and a real
// Prometheus scraping a DCGM exporter shows that GPU, says it came from
// Prometheus, and keeps serving updates when Prometheus is killed.
func TestPrometheusFallbackEndToEnd(t *testing.T) {
	t.Parallel()
	exp := httptest.NewServer(http.HandlerFunc(dcgmExporter))
	defer exp.Close()
	// The source trusts a "down" answer for a minute, so the hub starts
	// once Prometheus is ready; its first scrape may still be pending.
	prom := sourcestest.StartPrometheus(t, strings.TrimPrefix(exp.URL, "http://"))
	h := StartHub(t, 500*time.Millisecond, func(c *hub.Config) {
		c.PrometheusURL = prom.URL
		c.DockerHost = "none"
		c.SourceTimeout = 2 * time.Second
	})
	ws := DialWS(t, h)
	_, u := ws.UpdateWhere(t, "a GPU from Prometheus", func(u metrics.Update) bool {
		return u.GPU.Host == "cam-box"
	})
	if u.Sources[metrics.SectionGPU] != "prometheus" || u.GPU.Utilization == nil || *u.GPU.Utilization != 38 ||
		u.GPU.VRAMTotalGB == nil || *u.GPU.VRAMTotalGB != 24 {
		t.Errorf("gpu %+v sources %v", u.GPU, u.Sources)
	}
	prom.Stop()
	// Updates keep coming on time with Prometheus gone.
	for range 3 {
		ws.NextUpdate(t)
	}
}
