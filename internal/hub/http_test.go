package hub

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/server"
	"github.com/sysperf/sysperf/internal/server/servertest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// authed is a GET of url with token as its bearer (none when empty).
func authed(url, token string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		panic(err) // the tests' own URLs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// readToken is the first token of a token file.
func readToken(t testing.TB, path string) string {
	t.Helper()
	toks, err := server.ReadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	return toks[0]
}

// tokenFile writes a token file of one fresh token.
func tokenFile(t testing.TB) (path, token string) {
	t.Helper()
	token = "hub-test-token-" + rand.Text()
	path = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, token
}

// With no token file the hub generates one in its data directory (0600),
// keeps it across restarts, logs where it is and never what it is.
func TestHubGeneratesItsToken(t *testing.T) {
	cfg := testConfig(t)
	log, logs := logtest.New(slog.LevelDebug)
	h, err := Start(context.Background(), cfg, Plugs{}, log)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, TokenFileName)
	if h.TokenFile() != path {
		t.Fatalf("token file %q, want %q", h.TokenFile(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %s, want 0600", fi.Mode().Perm())
	}
	tok := readToken(t, path)
	base := "http://" + h.HTTPAddr()
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong-token-0123456789", http.StatusUnauthorized}, {tok, http.StatusOK}} {
		resp, err := http.DefaultClient.Do(authed(base+"/api/v1/alerts", tc.token))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /api/v1/alerts with token %q: %s, want %d", tc.token, resp.Status, tc.want)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("the log does not say where the token is:\n%s", logs)
	}
	if strings.Contains(logs.String(), tok) {
		t.Errorf("the token is in the log:\n%s", logs)
	}

	h2 := startHub(t, cfg)
	if got := readToken(t, h2.TokenFile()); got != tok {
		t.Errorf("token after restart differs: a restart must not sign every browser out")
	}
}

// Authentication off is refused unless the hub listens on loopback only.
func TestHubAuthOffOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:8321"} {
		cfg := testConfig(t)
		cfg.HTTP, cfg.HTTPAuth = addr, false
		_, err := Start(context.Background(), cfg, Plugs{}, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "http-auth=false: refused") {
			t.Errorf("auth off on %s: %v, want it refused", addr, err)
		}
	}
	cfg := testConfig(t)
	cfg.HTTPAuth = false
	h := startHub(t, cfg)
	if h.TokenFile() != "" {
		t.Errorf("token file %q with auth off", h.TokenFile())
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, TokenFileName)); err == nil {
		t.Error("a token was generated with auth off")
	}
	code, body := fetch("http://"+h.HTTPAddr()+"/api/v1/alerts", "")
	if code != http.StatusOK {
		t.Errorf("auth off on loopback: /api/v1/alerts %d %q, want 200", code, body)
	}
}

// With a certificate the hub speaks HTTPS only, and the health check (on
// loopback, with a certificate for another name) still works.
func TestHubServesTLS(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTPTLSCert, cfg.HTTPTLSKey = servertest.SelfSigned(t, "hub.example")
	h := startHub(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	poll.Until(t, "the healthcheck to pass over TLS", func() bool {
		return server.Check(ctx, h.HTTPAddr(), cfg.HTTPTLSCert) == nil
	})
	if err := server.Check(ctx, h.HTTPAddr(), ""); err == nil {
		t.Error("plain HTTP answered on a TLS listener")
	}
	other, _ := servertest.SelfSigned(t, "hub.example")
	if err := server.Check(ctx, h.HTTPAddr(), other); err == nil || !strings.Contains(err.Error(), "not the one in") {
		t.Errorf("healthcheck pinned to another certificate: %v, want refused", err)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(authed("https://"+h.HTTPAddr()+"/api/v1/alerts", readToken(t, h.TokenFile())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v1/alerts over TLS: %s", resp.Status)
	}
	// Over TLS the session cookie is Secure.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = c.Get("https://" + h.HTTPAddr() + "/login?token=" + readToken(t, h.TokenFile()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly {
		t.Errorf("sign-in over TLS: %s, cookies %v, want one Secure HttpOnly cookie", resp.Status, cs)
	}
}

// Past --ws-max-clients an upgrade is a 503, counted on /metrics.
func TestHubCapsWebSocketClients(t *testing.T) {
	cfg := testConfig(t)
	cfg.WSMaxClients = 1
	h := startHub(t, cfg)
	performance(t, h, func(metrics.Update) bool { return true })
	tok := readToken(t, h.TokenFile())
	hdr := http.Header{"Authorization": {"Bearer " + tok}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws://" + h.HTTPAddr() + "/ws/system"
	first, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer first.CloseNow()
	_, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second client past --ws-max-clients=1: %v, want 503", err)
	}
	if h.ClientsRefused() != 1 {
		t.Errorf("ClientsRefused() = %d, want 1", h.ClientsRefused())
	}
	code, body := fetch("http://"+h.HTTPAddr()+"/metrics", tok)
	if code != http.StatusOK || !strings.Contains(body, "sysperf_websocket_refused_clients_total 1\n") {
		t.Errorf("/metrics: %d, want sysperf_websocket_refused_clients_total 1 in:\n%s", code, body)
	}
}

// Rewriting the token file takes effect without a restart: a removed
// token and its sessions are refused, an added one works; a broken file
// keeps the tokens in use.
func TestHubReReadsTheTokenFile(t *testing.T) {
	path, old := tokenFile(t)
	cfg := testConfig(t)
	cfg.HTTPTokenFile = path
	log, logs := logtest.New(slog.LevelDebug)
	h, err := Start(context.Background(), cfg, Plugs{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	base := "http://" + h.HTTPAddr()
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(base + "/login?token=" + old)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) != 1 {
		t.Fatalf("sign-in: %s %v", resp.Status, resp.Cookies())
	}
	session := resp.Cookies()[0]
	withSession := func() int {
		req := authed(base+"/api/v1/alerts", "")
		req.AddCookie(session)
		resp, err := noRedirect.Do(req)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := withSession(); code != http.StatusOK {
		t.Fatalf("with the session: %d", code)
	}

	fresh := "rotated-token-" + rand.Text()
	if err := os.WriteFile(path, []byte(fresh+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the new token to work", func() bool {
		code, _ := fetch(base+"/api/v1/alerts", fresh)
		return code == http.StatusOK
	})
	if code, _ := fetch(base+"/api/v1/alerts", old); code != http.StatusUnauthorized {
		t.Errorf("removed token: %d, want 401", code)
	}
	if code := withSession(); code != http.StatusUnauthorized {
		t.Errorf("session of the removed token: %d, want 401", code)
	}

	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "a WARN about the broken file", func() bool {
		return strings.Contains(logs.String(), "token file changed but cannot be used")
	})
	if code, _ := fetch(base+"/api/v1/alerts", fresh); code != http.StatusOK {
		t.Errorf("after a broken rewrite the token in use: %d, want 200", code)
	}
	if strings.Contains(logs.String(), fresh) || strings.Contains(logs.String(), old) {
		t.Errorf("a token is in the log:\n%s", logs)
	}
}
