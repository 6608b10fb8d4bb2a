package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/hub"
	"github.com/sysperf/sysperf/internal/notify"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/sources"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/alerts"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// webhookReceiver is a webhook that counts the calls it gets and keeps each
// call's alerts, as an Alertmanager would receive them.
type webhookReceiver struct {
	mu    sync.Mutex
	calls [][]notify.Alert
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var batch []notify.Alert
	if err := json.NewDecoder(req.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.calls = append(r.calls, batch)
	r.mu.Unlock()
}

func (r *webhookReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// got reports whether a call from the from-th on carried the alert of
// rule on target, firing (resolved false) or resolved.
func (r *webhookReceiver) got(from int, rule, target string, resolved bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls[from:] {
		for _, a := range c {
			if a.Labels["alertname"] == rule && a.Labels["target"] == target && a.EndsAt.IsZero() != resolved {
				return true
			}
		}
	}
	return false
}

// tcpProxy stands between the hub and the machine's PostgreSQL, so the
// test can take the database away (close every connection, refuse new
// ones) without touching the server others use.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, addr: sourcestest.FreeAddr(t), target: target}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start listens (again) on the proxy's address.
func (p *tcpProxy) Start() {
	p.t.Helper()
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.l, p.conns = l, map[net.Conn]struct{}{}
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.pipe(c) })
		}
	})
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) pipe(c net.Conn) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(c) || !p.track(up) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// Stop closes the listener and every proxied connection, as a database
// that went away does.
func (p *tcpProxy) Stop() {
	p.mu.Lock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// httpStub is a stub HTTP server that can be stopped and started again on
// the same address: a model server or a container's health endpoint.
type httpStub struct {
	t    *testing.T
	addr string
	h    http.Handler
	srv  *httptest.Server
}

func startStub(t *testing.T, h http.Handler) *httpStub {
	s := &httpStub{t: t, addr: sourcestest.FreeAddr(t), h: h}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

func (s *httpStub) URL() string { return "http://" + s.addr }

func (s *httpStub) Start() {
	s.t.Helper()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("stub listen %s: %v", s.addr, err)
	}
	s.srv = httptest.NewUnstartedServer(s.h)
	_ = s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
}

func (s *httpStub) Stop() {
	if s.srv != nil {
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.srv = nil
	}
}

// testRules is a rules file that keeps the default rules named in fors,
// each with its warning after that `for`, no critical level (so an alert
// does not escalate while the test watches) and no keep_firing_for, and
// disables every other default, so nothing about this machine (a full
// disk, a busy CPU) adds an alert of its own.
func testRules(t *testing.T, fors map[string]time.Duration) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for _, r := range alerts.Defaults() {
		d, ok := fors[r.Name]
		if !ok {
			fmt.Fprintf(&b, "  - name: %s\n    disabled: true\n", r.Name)
			continue
		}
		fmt.Fprintf(&b, "  - name: %s\n    warning: {for: %s}\n    critical: {disabled: true}\n    keep_firing_for: 0s\n", r.Name, d)
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type alertLists struct {
	Active []metrics.Alert `json:"active"`
	Recent []metrics.Alert `json:"recent"`
}

func alertsOf(t *testing.T, h *Hub) alertLists {
	t.Helper()
	var l alertLists
	if code := GetJSON(t, h, "/api/v1/alerts", &l); code != http.StatusOK {
		t.Fatalf("GET /api/v1/alerts: %d", code)
	}
	return l
}

func alertIn(list []metrics.Alert, rule, target string, state metrics.AlertState) (metrics.Alert, bool) {
	for _, a := range list {
		if a.Rule == rule && a.Target == target && (state == "" || a.State == state) {
			return a, true
		}
	}
	return metrics.Alert{}, false
}

func performanceOf(t *testing.T, h *Hub) metrics.Update {
	t.Helper()
	var u metrics.Update
	if code := GetJSON(t, h, "/api/v1/performance", &u); code != http.StatusOK {
		t.Fatalf("GET /api/v1/performance: %d", code)
	}
	return u
}

// TestAlertsForEverythingDown runs a hub with its real sources and a real
// agent against a model server, PostgreSQL (through a proxy), a private
// Redis and a container's health endpoint. Each is killed in turn: its
// alert fires after its `for`, names what failed, reaches the webhook, and
// resolves when the part comes back. Then three fire at once and the hub
// is stopped (what SIGTERM does) and started on the same data directory:
// all stay firing with their start times, and the webhook gets no call for
// them, only the one for an alert that starts afterwards.
func TestAlertsForEverythingDown(t *testing.T) {
	const pgDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	pg, err := pgx.Connect(ctx, pgDSN)
	cancel()
	if err != nil {
		sourcestest.Need(t, "PostgreSQL at 127.0.0.1:5432: %v", err)
	}
	_ = pg.Close(context.Background())

	const forDur = time.Second
	const iv = 200 * time.Millisecond
	proxy := startProxy(t, "127.0.0.1:5432")
	rd := sourcestest.StartRedis(t)
	model := startStub(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, rtdetrHealth)
	}))
	container := startStub(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	hook := &webhookReceiver{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)

	h := StartHub(t, iv, func(c *hub.Config) {
		// A fixed NATS address, so the agent finds the restarted hub.
		c.NATSListen = sourcestest.FreeAddr(t)
		c.Rules = testRules(t, map[string]time.Duration{
			"model_down": forDur, "database_unreachable": forDur, "containers_unhealthy": forDur,
		})
		c.Webhooks = []string{hookSrv.URL}
		c.PostgresDSN = "postgres://postgres@" + proxy.addr + "/test?sslmode=disable"
		c.RedisURL = "redis://" + rd.Addr()
		c.DockerHost = "none"
		c.Containers = []sources.ContainerTarget{{Name: "frontend", HealthURL: container.URL() + "/health"}}
		c.SourceTimeout = time.Second
	})
	StartAgent(t, h.NATSURL(), "gpu-e2e", iv, func(c *AgentSetup) {
		c.Collectors = []collect.Collector{collect.NewRTDETR(model.URL(), nil)}
	})

	healthy := func(h *Hub) func() bool {
		return func() bool {
			u := performanceOf(t, h)
			return u.AIModels.RTDETR.Status == metrics.StatusHealthy &&
				u.Databases.PostgreSQL.Status == metrics.StatusHealthy &&
				u.Databases.Redis.Status == metrics.StatusHealthy &&
				len(u.Containers) == 1 && u.Containers[0].Health == metrics.StatusHealthy
		}
	}
	poll.Until(t, "model, PostgreSQL, Redis and container healthy", healthy(h))
	if a := alertsOf(t, h).Active; len(a) != 0 {
		t.Fatalf("alerts with everything healthy: %+v", a)
	}

	parts := []struct {
		name, rule, target, host string
		says                     []string // in the message
		stop, start              func()
	}{
		{"model server", "model_down", "rtdetr", "gpu-e2e", []string{"rtdetr", "gpu-e2e", "unreachable"}, model.Stop, model.Start},
		{"PostgreSQL", "database_unreachable", "postgresql", "", []string{"postgresql", "unreachable"}, proxy.Stop, proxy.Start},
		{"Redis", "database_unreachable", "redis", "", []string{"redis", "unreachable"}, rd.Stop, rd.Start},
		{"container", "containers_unhealthy", "containers", "", []string{"frontend", "unhealthy"}, container.Stop, container.Start},
	}
	for _, p := range parts {
		from := hook.count()
		p.stop()
		poll.Until(t, p.name+" down: "+p.rule+" firing", func() bool {
			_, ok := alertIn(alertsOf(t, h).Active, p.rule, p.target, alerts.StateFiring)
			return ok
		})
		l := alertsOf(t, h)
		if len(l.Active) != 1 {
			t.Fatalf("%s down: active %+v, want only %s", p.name, l.Active, p.rule)
		}
		a := l.Active[0]
		for _, s := range p.says {
			if !strings.Contains(a.Message, s) {
				t.Errorf("%s: message %q does not say %q", p.name, a.Message, s)
			}
		}
		if a.Host != p.host {
			t.Errorf("%s: host %q, want %q", p.name, a.Host, p.host)
		}
		fired, _ := alertIn(l.Recent, p.rule, p.target, alerts.StateFiring)
		if wait := fired.At.Sub(fired.Since); wait < forDur {
			t.Errorf("%s: fired %s after its condition started, before its for (%s)", p.name, wait, forDur)
		}
		poll.Until(t, p.name+": webhook gets the firing alert", func() bool { return hook.got(from, p.rule, p.target, false) })

		p.start()
		poll.Until(t, p.name+" back: no alert active", func() bool { return len(alertsOf(t, h).Active) == 0 })
		poll.Until(t, p.name+": webhook gets the resolution", func() bool { return hook.got(from, p.rule, p.target, true) })
	}

	// Alerts fire (two from the agent's and the hub's sources, and the
	// containers', whose list the hub sends empty until its first poll);
	// the hub stops as on SIGTERM and starts again.
	from := hook.count()
	model.Stop()
	rd.Stop()
	container.Stop()
	restored := [][2]string{{"model_down", "rtdetr"}, {"database_unreachable", "redis"}, {"containers_unhealthy", "containers"}}
	var before []metrics.Alert
	poll.Until(t, "model_down, redis and containers firing", func() bool {
		before = alertsOf(t, h).Active
		for _, r := range restored {
			if _, ok := alertIn(before, r[0], r[1], alerts.StateFiring); !ok {
				return false
			}
		}
		return len(before) == len(restored)
	})
	poll.Until(t, "webhook gets all three", func() bool {
		for _, r := range restored {
			if !hook.got(from, r[0], r[1], false) {
				return false
			}
		}
		return true
	})
	if err := h.Close(); err != nil {
		t.Fatalf("close hub: %v", err)
	}
	calls := hook.count()
	restarted := time.Now()

	h2 := StartHubConfig(t, h.Config)
	// Wait for what only the new hub can know: Redis polled by it, and a
	// sample the agent took after the restart.
	poll.Until(t, "the new hub has polled Redis and the container and heard the agent", func() bool {
		u := performanceOf(t, h2)
		st, ok := HostStatus(u, "gpu-e2e")
		return u.Databases.Redis.Status == metrics.StatusUnreachable && ok && st.LastSeen.After(restarted) &&
			u.AIModels.RTDETR.Status == metrics.StatusUnreachable && len(u.Containers) == 1
	})
	l := alertsOf(t, h2)
	if len(l.Active) != len(restored) {
		t.Fatalf("after the restart: active %+v, want the %d alerts", l.Active, len(restored))
	}
	for _, b := range before {
		a, ok := alertIn(l.Active, b.Rule, b.Target, alerts.StateFiring)
		if !ok || !a.Since.Equal(b.Since) {
			t.Errorf("%s/%s after the restart: %+v (found %v), want firing since %v", b.Rule, b.Target, a, ok, b.Since)
		}
	}
	for _, tr := range l.Recent {
		if tr.At.After(restarted) {
			t.Errorf("transition after the restart: %+v", tr)
		}
	}
	// A new alert's call is the next one the webhook gets: nothing was
	// sent for the restored alerts before it.
	proxy.Stop()
	poll.Until(t, "webhook gets the PostgreSQL alert", func() bool { return hook.got(calls, "database_unreachable", "postgresql", false) })
	hook.mu.Lock()
	after := hook.calls[calls:]
	hook.mu.Unlock()
	if len(after) != 1 || len(after[0]) != 1 || after[0][0].Labels["target"] != "postgresql" {
		t.Fatalf("webhook calls after the restart: %+v, want only the PostgreSQL alert", after)
	}
	if a := alertsOf(t, h2).Active; len(a) != len(restored)+1 {
		t.Errorf("active at the end: %+v", a)
	}
}
