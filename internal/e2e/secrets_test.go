package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/sysperf/sysperf/internal/agent"
	"github.com/sysperf/sysperf/internal/hub"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/sources"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// TestSecretsNeverShown plants a distinct secret in every URL and DSN the
// hub and the agent take (user info, credential query parameters, DSN
// passwords), points each at something that fails so its errors are
// produced, lets updates, alerts and webhook retries pass, and then looks
// for every secret in every log line (DEBUG and up, both binaries), every
// HTTP answer, every WebSocket message and every NATS message. None may
// appear.
func TestSecretsNeverShown(t *testing.T) {
	secrets := map[string]string{}
	secret := func(what string) string {
		s := "S3CRET" + strings.ToUpper(strings.ReplaceAll(what, "-", "")) + "Z"
		secrets[what] = s
		return s
	}

	// hangup accepts and closes: every HTTP client error then quotes the
	// URL it failed on, the way a dead proxy does.
	hangup := hangupServer(t)
	var hookPosts atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookPosts.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(hook.Close)
	closedPort := sourcestest.FreeAddr(t)
	host, port, _ := net.SplitHostPort(closedPort)

	rules := filepath.Join(t.TempDir(), "rules.yaml")
	// An unhealthy container fires within a second, so the webhooks send.
	if err := os.WriteFile(rules, []byte("rules:\n  - name: containers_unhealthy\n    warning: {threshold: 1, for: 1s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	hubLog, hubLines := logtest.New(slog.LevelDebug)
	redis.SetLogger(sources.RedisLog{Log: hubLog})
	t.Cleanup(func() { redis.SetLogger(sources.RedisLog{Log: slog.New(slog.DiscardHandler)}) })
	// The hubs share an external NATS that asks for no credential (the
	// embedded one admits enrolled keys only), so this test can read every
	// message on it and plant secrets in the URLs the hubs and the agent
	// are given for it.
	ext, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Open: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Shutdown)
	cfg := hub.DefaultConfig()
	cfg.HTTP = "127.0.0.1:0"
	cfg.NATSListen = ""
	cfg.NATSURL = strings.Replace(ext.ClientURL(), "nats://", "nats://hub:"+secret("hub-nats-password")+"@", 1)
	cfg.DataDir = t.TempDir()
	cfg.Interval = 300 * time.Millisecond
	cfg.SourceTimeout = time.Second
	cfg.DockerHost = "tcp://docker:" + secret("docker-password") + "@" + hangup
	cfg.Rules = rules
	cfg.PrometheusURL = "http://prom:" + secret("prom-password") + "@" + hangup + "/prom?token=" + secret("prom-token") + "&X-Api-Key=" + secret("prom-api-key")
	cfg.PostgresDSN = fmt.Sprintf("host=%s port=%s user=postgres password=%s dbname=test sslmode=disable connect_timeout=1", host, port, secret("pg-kv-password"))
	cfg.Postgres = []sources.PostgresConfig{{DSN: "postgres://postgres:" + secret("pg-url-password") + "@" + closedPort + "/other?sslmode=disable"}}
	cfg.RedisURL = "redis://:" + secret("redis-password") + "@" + closedPort + "/0"
	cfg.Containers = []sources.ContainerTarget{{Name: "backend", HealthURL: "http://hc:" + secret("health-password") + "@" + hangup + "/health?sig=" + secret("health-sig")}}
	cfg.Webhooks = []string{
		"http://hook:" + secret("hook-password") + "@" + hangup + "/hook?token=" + secret("hook-token"),
		strings.Replace(hook.URL, "http://", "http://"+secret("hook-user-token")+"@", 1) + "/ok?access_token=" + secret("hook-access-token"),
	}

	// Start-up errors quote a bad setting; the secrets stay out of them.
	for _, bad := range []func(*hub.Config){
		func(c *hub.Config) {
			c.Webhooks = []string{"ftp://u:" + secret("bad-hook-password") + "@h/x?token=" + secret("bad-hook-token")}
		},
		func(c *hub.Config) { c.Webhooks = []string{"http://u:" + secret("unparsable-hook") + "@h:port/"} },
		func(c *hub.Config) {
			c.PrometheusURL = "ftp://u:" + secret("bad-prom-password") + "@h/?apikey=" + secret("bad-prom-key")
		},
		func(c *hub.Config) { c.RedisURL = "redis://:" + secret("bad-redis") + "@h:port/x" },
		func(c *hub.Config) { c.PostgresDSN = "postgres://u:" + secret("bad-pg") + "@h:port/x" },
		func(c *hub.Config) {
			c.Containers = []sources.ContainerTarget{{Name: "x", HealthURL: "ftp://u:" + secret("bad-health") + "@h/?session=" + secret("bad-health-session")}}
		},
	} {
		c := cfg
		c.DataDir = t.TempDir()
		bad(&c)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		h, err := hub.Start(ctx, c, hub.Plugs{}, hubLog)
		cancel()
		if err == nil {
			_ = h.Close()
			t.Fatal("a hub with a bad setting started")
		}
		assertNoSecret(t, "start-up error", err.Error(), secrets)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	h, err := hub.Start(ctx, cfg, hub.Plugs{}, hubLog)
	cancel()
	if err != nil {
		t.Fatalf("start hub: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	hb := &Hub{Hub: h, Config: cfg}
	natsMsgs := natsTap(t, ext.ClientURL())

	// A second hub on the first one's NATS, as an external server: its
	// URL carries a token as the user.
	cfg2 := hub.DefaultConfig()
	cfg2.HTTP = "127.0.0.1:0"
	cfg2.NATSListen = ""
	cfg2.NATSURL = strings.Replace(ext.ClientURL(), "nats://", "nats://"+secret("hub-nats-token")+"@", 1)
	cfg2.Consumer = "sysperf-hub-2"
	cfg2.DataDir = ""
	cfg2.HTTPTokenFile = h.TokenFile()
	cfg2.Interval = cfg.Interval
	ctx, cancel = context.WithTimeout(context.Background(), wait)
	h2, err := hub.Start(ctx, cfg2, hub.Plugs{}, hubLog)
	cancel()
	if err != nil {
		t.Fatalf("start the second hub: %v", err)
	}
	t.Cleanup(func() { _ = h2.Close() })
	hb2 := &Hub{Hub: h2, Config: cfg2}
	ws := secretsWS(t, hb)

	agentLog, agentLines := logtest.New(slog.LevelDebug)
	acfg := agent.DefaultConfig()
	acfg.NATSURL = strings.Replace(ext.ClientURL(), "nats://", "nats://agent:"+secret("nats-password")+"@", 1)
	acfg.HostID = "secrets01"
	acfg.Interval = 300 * time.Millisecond
	acfg.RTDETRURL = "http://det:" + secret("rtdetr-password") + "@" + hangup + "/det?token=" + secret("rtdetr-token")
	acfg.LLMURL = "http://" + secret("llm-user-token") + "@" + hangup + "/llm?api_key=" + secret("llm-api-key")
	acfg.BackendMetricsURL = "http://be:" + secret("backend-password") + "@" + hangup + "/api/metrics?Signature=" + secret("backend-signature")
	a, err := agent.New(acfg, agent.Plugs{}, agentLog)
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	actx, acancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() {
		acancel()
		<-done
		_ = a.Close()
	})

	// Every failure has been reported: sources down, the agent's models
	// unreachable, its scrapes failed, the alert sent and a webhook retried.
	var last metrics.Update
	poll.Until(t, "an update with every source failing and the agent's errors", func() bool {
		u := ws.latest()
		if u == nil {
			return false
		}
		last = *u
		hs, ok := HostStatus(last, acfg.HostID)
		return ok && hs.Online && last.Errors["prometheus"] != "" &&
			last.Databases.PostgreSQL.Status == metrics.StatusUnreachable &&
			last.Databases.Redis.Status == metrics.StatusUnreachable &&
			len(last.Containers) == 1 && last.Containers[0].Reason != "" &&
			last.AIModels.RTDETR.Status == metrics.StatusUnreachable && last.AIModels.Nemotron.Status == metrics.StatusUnreachable
	})
	poll.Until(t, "the alert delivered to the webhook that answers", func() bool { return hookPosts.Load() > 0 })
	poll.Until(t, "a webhook retry logged", func() bool { return strings.Contains(hubLines.String(), "webhook retry") })
	poll.Until(t, "an agent sample with collector errors on NATS", func() bool {
		for _, m := range natsMsgs() {
			if strings.HasPrefix(m.Subject, "sysperf.v1.sample.") {
				if s, err := metrics.Decode(m.Data); err == nil && len(s.Errors) > 0 {
					return true
				}
			}
		}
		return false
	})
	if len(secrets) < 20 {
		t.Fatalf("only %d secrets planted", len(secrets))
	}

	for _, path := range []string{"/api/v1/performance", "/api/v1/alerts", "/api/v1/rules", "/api/v1/history?range=5m", "/api/v1/history?range=5m&host=" + acfg.HostID, "/metrics", "/healthz"} {
		for i, h := range []*Hub{hb, hb2} {
			code, body := secretsGet(t, h, path)
			if code != http.StatusOK && !(i == 1 && strings.Contains(path, "host=")) {
				t.Errorf("hub %d: GET %s: %d", i+1, path, code)
			}
			assertNoSecret(t, fmt.Sprintf("hub %d: GET %s", i+1, path), body, secrets)
		}
	}
	for i, m := range ws.all() {
		assertNoSecret(t, fmt.Sprintf("WebSocket message %d", i), m, secrets)
	}
	msgs := natsMsgs()
	for _, m := range msgs {
		text := m.Subject + " " + string(m.Data)
		for k, v := range m.Header {
			text += " " + k + ": " + strings.Join(v, ",")
		}
		assertNoSecret(t, "NATS message on "+m.Subject, text, secrets)
	}
	assertNoSecret(t, "hub log", hubLines.String(), secrets)
	assertNoSecret(t, "agent log", agentLines.String(), secrets)
	t.Logf("checked %d secrets in %d NATS messages, %d WebSocket messages, %d hub and %d agent log bytes",
		len(secrets), len(msgs), len(ws.all()), len(hubLines.String()), len(agentLines.String()))
}

// assertNoSecret fails naming which secret reached where.
func assertNoSecret(t *testing.T, where, text string, secrets map[string]string) {
	t.Helper()
	for what, s := range secrets {
		if i := strings.Index(text, s); i >= 0 {
			t.Errorf("%s shows the %s: ...%s...", where, what, text[max(0, i-120):min(len(text), i+len(s)+40)])
		}
	}
}

// hangupServer accepts connections and closes them at once.
func hangupServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

// natsTap records every message on the hub's NATS ("all subjects", so
// samples, updates, alerts and JetStream's own traffic). The one place
// that connects to NATS: give it credentials when NATS requires them.
func natsTap(t *testing.T, natsURL string) func() []*nats.Msg {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	var mu sync.Mutex
	var msgs []*nats.Msg
	if _, err := nc.Subscribe(">", func(m *nats.Msg) {
		mu.Lock()
		msgs = append(msgs, m)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() []*nats.Msg {
		mu.Lock()
		defer mu.Unlock()
		return append([]*nats.Msg(nil), msgs...)
	}
}

// secretsGet is the one place this test reads the HTTP API: give it the
// token when the API requires one.
func secretsGet(t *testing.T, h *Hub, path string) (int, string) {
	t.Helper()
	code, b := Get(t, h, path, path != "/healthz")
	return code, string(b)
}

// wsRecorder keeps every message of /ws/system, read in the background,
// and the latest update.
type wsRecorder struct {
	mu     sync.Mutex
	msgs   []string
	update *metrics.Update
}

// secretsWS dials /ws/system (the one place this test does: add the
// login when the hub requires it) and records it until the test ends.
func secretsWS(t *testing.T, h *Hub) *wsRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithTimeout(ctx, wait)
	defer dcancel()
	c, _, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(h.BaseURL(), "http")+"/ws/system", &websocket.DialOptions{HTTPHeader: h.Auth(t)})
	if err != nil {
		cancel()
		t.Fatalf("dial /ws/system: %v", err)
	}
	c.SetReadLimit(16 << 20)
	r := &wsRecorder{}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
					t.Logf("read /ws/system: %v", err)
				}
				return
			}
			r.add(b)
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = c.CloseNow()
		<-stopped
	})
	return r
}

func (r *wsRecorder) add(b []byte) {
	var head struct {
		Type string `json:"type"`
	}
	var u metrics.Update
	isUpdate := json.Unmarshal(b, &head) == nil && head.Type == metrics.TypeUpdate && json.Unmarshal(b, &u) == nil
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, string(b))
	if isUpdate {
		r.update = &u
	}
}

func (r *wsRecorder) latest() *metrics.Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.update
}

func (r *wsRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}
