package hub

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
	"github.com/sysperf/sysperf/webui"
)

// fetch is one GET with the token as bearer: status and body, or -1 when
// nothing answers.
func fetch(url, token string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(authed(url, token))
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitingHub starts a hub whose external NATS is a closed port, returns
// once the hub has failed three attempts, and hands back Start's result.
func waitingHub(t *testing.T, ctx context.Context) (cfg Config, logs *logtest.Buffer, started <-chan startResult) {
	t.Helper()
	cfg = testConfig(t)
	cfg.HTTP = sourcestest.FreeAddr(t)
	cfg.NATSURL = "nats://" + sourcestest.FreeAddr(t)
	cfg.DataDir = ""
	cfg.HTTPTokenFile, _ = tokenFile(t)
	log, logs := logtest.New(slog.LevelDebug)
	ch := make(chan startResult, 1)
	go func() {
		h, err := Start(ctx, cfg, Plugs{}, log)
		ch <- startResult{h, err}
	}()
	poll.Until(t, "three failed NATS attempts", func() bool {
		return strings.Count(logs.String(), "nats connect attempt failed") >= 3
	})
	return cfg, logs, ch
}

type startResult struct {
	h   *Hub
	err error
}

func wait(t *testing.T, ch <-chan startResult) startResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second): // a hang guard, not a timing
		t.Fatal("Start did not return")
	}
	return startResult{}
}

// An external NATS that is not there yet is waited for: the dashboard and
// /healthz answer meanwhile (503, naming NATS and why), one WARN is
// logged however many attempts fail, and the hub consumes once a real
// NATS server comes up on that address; a later outage makes /healthz
// not ready again until NATS is back.
func TestHubWaitsForExternalNATS(t *testing.T) {
	cfg, logs, started := waitingHub(t, context.Background())
	natsAddr := strings.TrimPrefix(cfg.NATSURL, "nats://")
	base := "http://" + cfg.HTTP
	tok := readToken(t, cfg.HTTPTokenFile)

	// The dashboard is served while NATS is away: the page itself, or (in a
	// checkout whose UI is not built yet) the page saying how to build it.
	uiCode := http.StatusOK
	if !webui.Built() {
		uiCode = http.StatusServiceUnavailable
	}
	during := []struct {
		path string
		code int
		body string
	}{
		{"/healthz", http.StatusServiceUnavailable, "not ready: waiting for NATS at " + cfg.NATSURL + ": connection refused"},
		{"/system", uiCode, "<html"},
		{"/api/v1/history?range=5m", http.StatusServiceUnavailable, "history not ready"},
		{"/ws/system", http.StatusServiceUnavailable, "history not ready"},
		{"/api/v1/performance", http.StatusServiceUnavailable, "no update yet"},
		{"/metrics", http.StatusOK, "sysperf_"},
	}
	for _, tc := range during {
		code, body := fetch(base+tc.path, tok)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("while waiting, GET %s: %d %q, want %d with %q", tc.path, code, body, tc.code, tc.body)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"nats not reachable"); n != 1 {
		t.Errorf("%d WARN lines for %d failed attempts, want 1:\n%s", n, strings.Count(logs.String(), "nats connect attempt failed"), logs)
	}

	dir := t.TempDir()
	ext, err := natsd.Start(natsd.Config{Listen: natsAddr, StoreDir: dir, Open: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NATS on %s: %v", natsAddr, err)
	}
	t.Cleanup(func() { ext.Shutdown() }) // after the hub's Close, which drains through it
	r := wait(t, started)
	if r.err != nil {
		t.Fatalf("Start once NATS is up: %v", r.err)
	}
	h := r.h
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if code, body := fetch(base+"/healthz", tok); code != http.StatusOK {
		t.Fatalf("/healthz once NATS is up: %d %q", code, body)
	}
	publish(t, cfg.NATSURL, &metrics.Sample{Host: "late1", Boot: "b", Seq: 1, TS: time.Now().UnixNano()})
	performance(t, h, hasHost("late1"))
	if !strings.Contains(logs.String(), "nats reachable, waiting over") {
		t.Errorf("no log line ends the wait:\n%s", logs)
	}

	ext.Shutdown()
	poll.Until(t, "/healthz not ready during the outage", func() bool {
		code, body := fetch(base+"/healthz", tok)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "NATS at "+cfg.NATSURL+" unreachable")
	})
	ext, err = natsd.Start(natsd.Config{Listen: natsAddr, StoreDir: dir, Open: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NATS again on %s: %v", natsAddr, err)
	}
	poll.Until(t, "/healthz ready after the outage", func() bool {
		code, _ := fetch(base+"/healthz", tok)
		return code == http.StatusOK
	})
}

// SIGTERM while NATS is waited for: Run returns at once, cleanly, and the
// HTTP port is free again.
func TestHubRunStopsWhileWaitingForNATS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, logs, started := waitingHub(t, ctx)
	cancel()
	r := wait(t, started)
	if r.err == nil || !strings.Contains(r.err.Error(), "gave up waiting: context canceled") {
		t.Fatalf("Start cancelled while waiting: %v", r.err)
	}
	// Run maps that to a clean shutdown.
	if err := Run(ctx, cfg, Plugs{}, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
		t.Fatalf("Run with its context ended: %v, want nil", err)
	}
	l, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		t.Fatalf("HTTP port still held after the cancelled start: %v", err)
	}
	l.Close()
}
