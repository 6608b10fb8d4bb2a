package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sysperf/sysperf/internal/poll"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// windows is a HistoryReader over fixed ranges that records its calls.
type windows struct {
	mu    sync.Mutex
	calls []string
}

func (w *windows) Window(now time.Time, rng, host string) (metrics.History, error) {
	w.mu.Lock()
	w.calls = append(w.calls, rng+"|"+host)
	w.mu.Unlock()
	res := map[string]int{"5m": 5, "15m": 15, "60m": 60}[rng]
	if rng == "9y" {
		return metrics.History{}, fmt.Errorf("unknown range %q", rng)
	}
	if res == 0 {
		return metrics.History{}, errors.New("unknown range")
	}
	return metrics.History{Range: rng, ResolutionS: res, Points: []metrics.Point{{Timestamp: now.Truncate(time.Second)}}}, nil
}

type alertList struct{}

func (alertList) Active() []metrics.Alert {
	return []metrics.Alert{{Severity: "warning", Metric: "gpu_temperature", Value: 82, Threshold: 80, State: "firing"}}
}
func (alertList) Recent() []metrics.Alert { return nil }

// testToken signs the tests in; start gives it to every server.
const testToken = "test-token-0123456789"

// signedIn is the header that carries testToken.
func signedIn() http.Header { return http.Header{"Authorization": {"Bearer " + testToken}} }

func start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Tokens == nil && !cfg.NoAuth {
		cfg.Tokens = []string{testToken}
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, body := request(t, http.MethodGet, url, nil, func(r *http.Request) { r.Header = signedIn() })
	return resp.StatusCode, resp.Header, body
}

func update(n int) []byte {
	b, _ := json.Marshal(map[string]any{"type": metrics.TypeUpdate, "n": n})
	return b
}

func TestRoutes(t *testing.T) {
	metricsHandler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("sysperf_up 1\n"))
	})
	plain := start(t, Config{})
	withPlugs := start(t, Config{Metrics: metricsHandler, History: &windows{}, Alerts: alertList{},
		UI: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ui:" + r.URL.Path)) })})

	tests := []struct {
		name   string
		srv    *Server
		path   string
		code   int
		header string // Location or Content-Type prefix
		body   string // substring
	}{
		{"healthz before the first update", plain, "/healthz", 503, "text/plain", "starting"},
		{"root redirects", plain, "/", 302, "/system", ""},
		{"placeholder page", plain, "/system", 200, "text/html", "/ws/system"},
		{"performance before first update", plain, "/api/v1/performance", 503, "application/json", `"error":"no update yet`},
		{"history not configured", plain, "/api/v1/history?range=5m", 501, "application/json", "history not configured"},
		{"alerts not configured", plain, "/api/v1/alerts", 200, "application/json", `{"active":[],"recent":[]}`},
		{"metrics not configured", plain, "/metrics", 404, "application/json", "metrics not configured"},
		{"history", withPlugs, "/api/v1/history?range=15m&host=gpu01", 200, "application/json", `"range":"15m","resolution_s":15`},
		{"history default range", withPlugs, "/api/v1/history", 200, "application/json", `"range":"5m"`},
		{"history bad range", withPlugs, "/api/v1/history?range=7y", 400, "application/json", `range \"7y\": unknown range`},
		{"history error naming the range", withPlugs, "/api/v1/history?range=9y", 400, "application/json", `{"error":"unknown range \"9y\""}`},
		{"alerts", withPlugs, "/api/v1/alerts", 200, "application/json", `"active":[{"severity":"warning","metric":"gpu_temperature"`},
		{"metrics handler", withPlugs, "/metrics", 200, "", "sysperf_up 1"},
		{"ui handler takes the rest", withPlugs, "/system/gpu", 200, "", "ui:/system/gpu"},
		{"ui handler takes root", withPlugs, "/", 200, "", "ui:/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := get(t, "http://"+tc.srv.Addr()+tc.path)
			if code != tc.code {
				t.Fatalf("status %d, want %d; body %s", code, tc.code, body)
			}
			if tc.header != "" && !strings.HasPrefix(h.Get("Content-Type"), tc.header) && h.Get("Location") != tc.header {
				t.Fatalf("Content-Type %q / Location %q, want %q", h.Get("Content-Type"), h.Get("Location"), tc.header)
			}
			if !strings.Contains(body, tc.body) {
				t.Fatalf("body %q does not contain %q", body, tc.body)
			}
		})
	}
}

func TestPerformanceServesLatestUpdate(t *testing.T) {
	s := start(t, Config{})
	s.Publish(update(1))
	s.Publish(update(2))
	code, _, body := get(t, "http://"+s.Addr()+"/api/v1/performance")
	if code != 200 || body != string(update(2)) {
		t.Fatalf("got %d %s, want the latest update %s", code, body, update(2))
	}
	if code, _, body := get(t, "http://"+s.Addr()+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz after an update: %d %q", code, body)
	}
}

func TestPortInUseNamesAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Start(Config{Addr: l.Addr().String(), Tokens: []string{testToken}})
	if err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("error %v does not name %s", err, l.Addr())
	}
}

func dial(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/ws/system", &websocket.DialOptions{HTTPHeader: signedIn()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	b := readRaw(t, c)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	return m
}

func TestWebSocketHistoryUpdatesAndSubscribe(t *testing.T) {
	w := &windows{}
	s := start(t, Config{History: w})
	s.Publish(update(1))
	c := dial(t, s)

	m := read(t, c)
	if m["type"] != metrics.TypeHistory || m["range"] != "5m" || m["resolution_s"] != 5.0 {
		t.Fatalf("first message %v, want the 5m performance_history", m)
	}
	if m = read(t, c); m["type"] != metrics.TypeUpdate || m["n"] != 1.0 {
		t.Fatalf("second message %v, want the latest update", m)
	}
	poll.Until(t, "the client to register", func() bool { return s.Clients() == 1 })
	s.Publish(update(2))
	if m = read(t, c); m["n"] != 2.0 {
		t.Fatalf("got %v, want update 2", m)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","range":"15m"}`)); err != nil {
		t.Fatal(err)
	}
	if m = read(t, c); m["type"] != metrics.TypeHistory || m["range"] != "15m" || m["resolution_s"] != 15.0 {
		t.Fatalf("got %v, want the 15m history", m)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","range":"7y"}`)); err != nil {
		t.Fatal(err)
	}
	if m = read(t, c); m["type"] != "error" || !strings.Contains(m["error"].(string), `"7y"`) {
		t.Fatalf("got %v, want an error naming the range", m)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`not json`)); err != nil {
		t.Fatal(err)
	}
	if m = read(t, c); m["type"] != "error" {
		t.Fatalf("got %v, want an error for garbage", m)
	}
	// The connection survives bad client messages.
	s.Publish(update(3))
	if m = read(t, c); m["n"] != 3.0 {
		t.Fatalf("got %v, want update 3", m)
	}
}

func TestWebSocketWithoutHistoryStartsWithUpdates(t *testing.T) {
	s := start(t, Config{})
	c := dial(t, s)
	poll.Until(t, "the client to register", func() bool { return s.Clients() == 1 })
	s.Publish(update(7))
	if m := read(t, c); m["type"] != metrics.TypeUpdate || m["n"] != 7.0 {
		t.Fatalf("got %v, want update 7 first", m)
	}
}

func TestSlowClientIsDroppedFastClientKeepsReceiving(t *testing.T) {
	s := start(t, Config{QueueLen: 4, WriteTimeout: 5 * time.Second})
	slow := dial(t, s) // never reads until it is dropped
	slow.SetReadLimit(1 << 20)
	fast := dial(t, s)
	fast.SetReadLimit(1 << 20)
	poll.Until(t, "both clients to register", func() bool { return s.Clients() == 2 })

	// Big updates fill the slow client's socket buffers, then its queue.
	pad := strings.Repeat("x", 64<<10)
	var n int
	for n = 1; s.Dropped() == 0; n++ {
		if n > 5000 {
			t.Fatal("slow client never dropped")
		}
		b, _ := json.Marshal(map[string]any{"type": metrics.TypeUpdate, "n": n, "pad": pad})
		s.Publish(b)
		// Paced by the fast client: it must get every update in order.
		if m := read(t, fast); m["n"] != float64(n) {
			t.Fatalf("fast client got update %v, want %d", m["n"], n)
		}
	}
	if got := s.Clients(); got != 1 {
		t.Fatalf("%d clients after the drop, want 1", got)
	}
	for i := range 3 {
		s.Publish(update(10000 + i))
		if m := read(t, fast); m["n"] != float64(10000+i) {
			t.Fatalf("fast client got %v after the drop", m)
		}
	}
	// The slow client, once it reads, finds its stream cut.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, _, err = slow.Read(ctx)
	}
	if ctx.Err() != nil {
		t.Fatalf("slow client still open: %v", err)
	}
	t.Logf("slow client dropped after %d updates: %v", n-1, err)
}

func TestShutdownClosesWebSockets(t *testing.T) {
	s, err := Start(Config{Addr: "127.0.0.1:0", Tokens: []string{testToken}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	poll.Until(t, "the client to register", func() bool { return s.Clients() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("read after shutdown: %v, want close status going away", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}
