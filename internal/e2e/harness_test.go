// Package e2e runs sysperf end to end in one process: a real hub with its
// embedded NATS on random ports, real agents, a real WebSocket client.
// Every engineer adds a <topic>_test.go here using this harness.
package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/sysperf/sysperf/internal/agent"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/hub"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/server"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// wait bounds every wait of the harness; reaching it is a failure, not a
// measurement.
const wait = 30 * time.Second

// testLog logs to the test's output when -v and SYSPERF_E2E_LOG=1, else
// nowhere, so failures stay readable.
func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("SYSPERF_E2E_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	w := &tWriter{t: t}
	// Registered before the component's own Close, so it runs after it.
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter sends log lines to the test until it ends. NATS runs its
// connection callbacks ("nats connection closed") on its own goroutine,
// which may log after Close returned, and a t.Log after the test has
// completed panics.
type tWriter struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// Hub is a hub under test.
type Hub struct {
	*hub.Hub
	Config hub.Config
	// creds are the credentials files the harness enrolled, by kind/name.
	mu    sync.Mutex
	creds map[string]string
}

// hubs are the running hubs by NATS URL, so that StartAgent, Publish and
// PublishSample enrol their host on the hub they reach, as an operator
// would with `hub agent add`.
var hubs sync.Map

// EnrolFile enrols host as an agent in dataDir, as `hub agent add` does,
// and returns its credentials file: for a hub running as a process.
func EnrolFile(t testing.TB, dataDir, host string) string {
	t.Helper()
	b, err := enroll.Open(dataDir).Add(host, enroll.Agent)
	if err != nil {
		t.Fatalf("enrol %s: %v", host, err)
	}
	path := filepath.Join(t.TempDir(), host+".creds")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// natsAuth enrols host as kind on the hub at natsURL (once per hub) and
// returns the connection options with its credential; none for a NATS
// the harness did not start.
func natsAuth(t testing.TB, natsURL, host, kind string) (string, []nats.Option) {
	t.Helper()
	v, ok := hubs.Load(natsURL)
	if !ok || host == "" {
		return "", nil
	}
	h := v.(*Hub)
	h.mu.Lock()
	defer h.mu.Unlock()
	path, ok := h.creds[kind+"/"+host]
	if !ok {
		b, err := enroll.Open(h.Config.DataDir).Add(host, kind)
		if err != nil {
			t.Fatalf("enrol %s %s: %v", kind, host, err)
		}
		path = filepath.Join(h.Config.DataDir, kind+"-"+host+".creds")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := h.ReloadEnrolment(); err != nil {
			t.Fatalf("enrol %s %s: %v", kind, host, err)
		}
		h.creds[kind+"/"+host] = path
	}
	opts, err := natsx.Auth{Creds: path}.Options()
	if err != nil {
		t.Fatal(err)
	}
	return path, append(opts, nats.CustomInboxPrefix(natsx.InboxPrefix(host)))
}

// BaseURL is http://host:port of the hub's HTTP server.
func (h *Hub) BaseURL() string { return "http://" + h.HTTPAddr() }

// Auth is the header that signs in to the hub: its token as a bearer.
func (h *Hub) Auth(t testing.TB) http.Header {
	t.Helper()
	toks, err := server.ReadTokens(h.TokenFile())
	if err != nil {
		t.Fatalf("hub token: %v", err)
	}
	return http.Header{"Authorization": {"Bearer " + toks[0]}}
}

// StartHub starts a hub on random ports with a temporary data directory
// and the given update interval; edit adjusts the config (plugs, sources)
// before start. The hub is closed when the test ends.
func StartHub(t testing.TB, interval time.Duration, edit func(*hub.Config)) *Hub {
	t.Helper()
	cfg := hub.DefaultConfig()
	cfg.HTTP = "127.0.0.1:0"
	cfg.NATSListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Interval = interval
	if edit != nil {
		edit(&cfg)
	}
	return StartHubConfig(t, cfg)
}

// StartHubConfig starts a hub with exactly cfg, e.g. to restart one on
// the data directory of a previous hub.
func StartHubConfig(t testing.TB, cfg hub.Config) *Hub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	h, err := hub.Start(ctx, cfg, hub.Plugs{}, testLog(t).With("side", "hub"))
	if err != nil {
		t.Fatalf("start hub: %v", err)
	}
	e := &Hub{Hub: h, Config: cfg, creds: map[string]string{}}
	hubs.Store(h.NATSURL(), e)
	var once sync.Once
	t.Cleanup(func() {
		hubs.CompareAndDelete(h.NATSURL(), e)
		once.Do(func() {
			if err := h.Close(); err != nil {
				t.Errorf("close hub: %v", err)
			}
		})
	})
	return e
}

// Agent is an agent under test, running until Stop or the test's end.
type Agent struct {
	*agent.Agent
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Stop ends the agent's Run and waits for it.
func (a *Agent) Stop(t testing.TB) {
	t.Helper()
	a.once.Do(func() {
		a.cancel()
		select {
		case err := <-a.done:
			if err != nil {
				t.Errorf("agent %s: %v", a.Host(), err)
			}
		case <-time.After(wait):
			t.Errorf("agent %s did not stop", a.Host())
		}
		_ = a.Close()
	})
}

// AgentSetup is what StartAgent starts an agent with: its settings and
// its plugs (collectors, annotator).
type AgentSetup struct {
	agent.Config
	agent.Plugs
}

// StartAgent runs a real agent (default collectors: host, NVML, and the
// model servers edit configures) publishing to natsURL as hostID.
func StartAgent(t testing.TB, natsURL, hostID string, interval time.Duration, edit func(*AgentSetup)) *Agent {
	t.Helper()
	cfg := AgentSetup{Config: agent.DefaultConfig()}
	cfg.NATSURL = natsURL
	cfg.HostID = hostID
	cfg.Interval = interval
	cfg.NATSCreds, _ = natsAuth(t, natsURL, hostID, enroll.Agent)
	if edit != nil {
		edit(&cfg)
	}
	a, err := agent.New(cfg.Config, cfg.Plugs, testLog(t).With("side", "agent"))
	if err != nil {
		t.Fatalf("new agent %s: %v", hostID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ag := &Agent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ag.done <- a.Run(ctx) }()
	t.Cleanup(func() { ag.Stop(t) })
	// On a hub of the harness, wait until the agent is connected: the next
	// enrolment reloads the server's users, and nats-server (2.15.3) reads
	// a connecting client's options unlocked while it reloads (a data race
	// -race reports), so no reload may overlap an agent's CONNECT.
	if v, ok := hubs.Load(natsURL); ok && cfg.NATSCreds != "" {
		h := v.(*Hub)
		poll.Until(t, "agent "+hostID+" connected to the hub's NATS", func() bool {
			return h.NATSClientConnected("sysperf-agent " + hostID)
		})
	}
	return ag
}

// Publish sends raw bytes on subject through core NATS; the samples
// stream captures sample subjects, so this is how a misbehaving publisher
// looks to the hub.
func Publish(t testing.TB, natsURL, subject string, body []byte) {
	t.Helper()
	host, kind := strings.TrimPrefix(subject, metrics.SampleSubject("")), enroll.Agent
	if h, _, ok := metrics.ParseLatencySubject(subject); ok {
		host, kind = h, enroll.Pipeline
	}
	_, auth := natsAuth(t, natsURL, host, kind)
	nc, err := nats.Connect(natsURL, append(auth, nats.Timeout(5*time.Second))...)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	defer nc.Close()
	if err := nc.Publish(subject, body); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush %s: %v", subject, err)
	}
}

// PublishSample encodes s and publishes it as an agent would, with its
// de-duplication id.
func PublishSample(t testing.TB, natsURL string, s *metrics.Sample) {
	t.Helper()
	b, err := metrics.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	_, auth := natsAuth(t, natsURL, s.Host, enroll.Agent)
	nc, err := nats.Connect(natsURL, append(auth, nats.Timeout(5*time.Second))...)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	defer nc.Close()
	msg := nats.NewMsg(metrics.SampleSubject(s.Host))
	msg.Data = b
	msg.Header.Set(nats.MsgIdHdr, metrics.MsgID(s, "k"))
	if _, err := nc.RequestMsg(msg, 5*time.Second); err != nil {
		t.Fatalf("publish sample: %v", err)
	}
}

// GetJSON fetches path from the hub and decodes it into v, returning the
// status code.
func GetJSON(t testing.TB, h *Hub, path string, v any) int {
	t.Helper()
	code, b := Get(t, h, path, true)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %d %s: %v", path, code, b, err)
		}
	}
	return code
}

// Get fetches path from the hub, with the API token when auth is set, and
// returns the status code and body.
func Get(t testing.TB, h *Hub, path string, auth bool) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, h.BaseURL()+path, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if auth {
		req.Header = h.Auth(t)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// WS is a client of /ws/system.
type WS struct {
	conn *websocket.Conn
}

// DialWS connects to the hub's /ws/system.
func DialWS(t testing.TB, h *Hub) *WS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.BaseURL(), "http")+"/ws/system", &websocket.DialOptions{HTTPHeader: h.Auth(t)})
	if err != nil {
		t.Fatalf("dial /ws/system: %v", err)
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &WS{conn: c}
}

// Next returns the next message's type and body.
func (w *WS) Next(t testing.TB) (string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, b, err := w.conn.Read(ctx)
	if err != nil {
		t.Fatalf("read /ws/system: %v", err)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		t.Fatalf("message is not JSON: %v: %s", err, b)
	}
	return head.Type, b
}

// Send writes v as JSON, e.g. {"type":"subscribe","range":"15m"}.
func (w *WS) Send(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := w.conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("write /ws/system: %v", err)
	}
}

// NextUpdate returns the next performance_update, skipping other
// messages, both as generic JSON (to check names and types) and typed.
func (w *WS) NextUpdate(t testing.TB) (map[string]any, metrics.Update) {
	t.Helper()
	for {
		typ, b := w.Next(t)
		if typ != metrics.TypeUpdate {
			continue
		}
		var raw map[string]any
		var u metrics.Update
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &u); err != nil {
			t.Fatalf("update does not decode as metrics.Update: %v", err)
		}
		return raw, u
	}
}

// UpdateWhere reads updates until cond holds, or fails after the harness
// wait.
func (w *WS) UpdateWhere(t testing.TB, what string, cond func(metrics.Update) bool) (map[string]any, metrics.Update) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		raw, u := w.NextUpdate(t)
		if cond(u) {
			return raw, u
		}
	}
	t.Fatalf("no update with %s within %s", what, wait)
	return nil, metrics.Update{}
}

// HostStatus returns the update's entry for host.
func HostStatus(u metrics.Update, host string) (metrics.HostStatus, bool) {
	for _, h := range u.Hosts {
		if h.Host == host {
			return h, true
		}
	}
	return metrics.HostStatus{}, false
}
