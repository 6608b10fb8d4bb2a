package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sysperf/sysperf/internal/poll"
)

// request sends one request without following redirects; edit adds the
// credential under test.
func request(t *testing.T, method, url string, body io.Reader, edit func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func withHeader(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// plugged is a server with every plug, so that every route answers 200
// when signed in.
func plugged(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("sysperf_up 1\n")) })
	cfg.History = &windows{}
	cfg.Alerts = alertList{}
	cfg.Rules = engine(t, "")
	cfg.UI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ui:" + r.URL.Path)) })
	s := start(t, cfg)
	s.Publish(update(1))
	return s
}

// Every endpoint but /healthz and /login answers 401 without a token, the
// WebSocket upgrade included, and 200 with it as a bearer header or as
// the session cookie.
func TestEveryEndpointNeedsTheToken(t *testing.T) {
	s := plugged(t, Config{})
	base := "http://" + s.Addr()
	cookie := (&http.Cookie{Name: s.cookie, Value: sessionValue(testToken)}).String()
	paths := []string{"/", "/system", "/system/gpu", "/assets/index.js", "/favicon.svg", "/api/v1/performance",
		"/api/v1/history?range=5m", "/api/v1/alerts", "/api/v1/rules"}
	creds := []struct {
		name string
		edit func(*http.Request)
		want int
	}{
		{"none", nil, http.StatusUnauthorized},
		{"wrong bearer", withHeader("Authorization", "Bearer wrong-token-0123456789"), http.StatusUnauthorized},
		{"token as cookie value", withHeader("Cookie", s.cookie+"="+testToken), http.StatusUnauthorized},
		{"basic scheme", withHeader("Authorization", "Basic "+testToken), http.StatusUnauthorized},
		{"bearer", withHeader("Authorization", "Bearer "+testToken), http.StatusOK},
		{"bearer, any case", withHeader("Authorization", "bearer "+testToken), http.StatusOK},
		{"cookie", withHeader("Cookie", cookie), http.StatusOK},
	}
	for _, p := range paths {
		for _, c := range creds {
			resp, body := request(t, http.MethodGet, base+p, nil, c.edit)
			if resp.StatusCode != c.want {
				t.Errorf("GET %s with %s: %d %q, want %d", p, c.name, resp.StatusCode, body, c.want)
			}
			if c.want == http.StatusUnauthorized && !strings.Contains(body, "sign in") {
				t.Errorf("GET %s with %s: 401 body %q does not say how to sign in", p, c.name, body)
			}
		}
	}

	// /metrics takes a bearer token only: Prometheus sends no cookie.
	for _, c := range creds {
		want := c.want
		if c.name == "cookie" {
			want = http.StatusUnauthorized
		}
		resp, body := request(t, http.MethodGet, base+"/metrics", nil, c.edit)
		if resp.StatusCode != want {
			t.Errorf("GET /metrics with %s: %d %q, want %d", c.name, resp.StatusCode, body, want)
		}
	}

	// The WebSocket upgrade.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range creds {
		h := http.Header{}
		if c.edit != nil {
			req, _ := http.NewRequest(http.MethodGet, base, nil)
			c.edit(req)
			h = req.Header
		}
		conn, resp, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/ws/system", &websocket.DialOptions{HTTPHeader: h})
		if c.want == http.StatusOK {
			if err != nil {
				t.Errorf("/ws/system with %s: %v", c.name, err)
				continue
			}
			if _, _, err := conn.Read(ctx); err != nil {
				t.Errorf("/ws/system with %s: read: %v", c.name, err)
			}
			_ = conn.CloseNow()
			continue
		}
		if err == nil {
			_ = conn.CloseNow()
			t.Errorf("/ws/system with %s: upgraded, want 401", c.name)
		} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/ws/system with %s: %v, want 401", c.name, err)
		}
	}

	// /healthz and the login page need nothing.
	for _, p := range []string{"/healthz", "/login"} {
		if resp, body := request(t, http.MethodGet, base+p, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d %q, want 200", p, resp.StatusCode, body)
		}
	}
}

// A browser without a session that navigates to a page gets the login
// form (with 401); an API client gets JSON.
func TestUnauthorizedBrowserGetsTheLoginForm(t *testing.T) {
	s := plugged(t, Config{})
	resp, body := request(t, http.MethodGet, "http://"+s.Addr()+"/system", nil, withHeader("Accept", "text/html,application/xhtml+xml"))
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `<form method="post" action="/login">`) {
		t.Errorf("browser without a session: %d %q, want 401 with the login form", resp.StatusCode, body)
	}
	resp, body = request(t, http.MethodGet, "http://"+s.Addr()+"/api/v1/alerts", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/json" ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("API client without a token: %d %v %q", resp.StatusCode, resp.Header, body)
	}
}

// The login flow: the form, a wrong token (401 saying so), the right one
// (an HttpOnly, SameSite=Strict cookie and a redirect to /system), which
// then opens the dashboard and the feed; and the sign-in link.
func TestLoginFlow(t *testing.T) {
	s := plugged(t, Config{})
	base := "http://" + s.Addr()

	resp, body := request(t, http.MethodGet, base+"/login", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Fatalf("GET /login: %d %q", resp.StatusCode, body)
	}
	if strings.Contains(body, "<script") {
		t.Error("the login page has a script; the CSP allows none inline")
	}

	post := func(tok string) (*http.Response, string) {
		return request(t, http.MethodPost, base+"/login", strings.NewReader(url.Values{"token": {tok}}.Encode()), func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", base)
		})
	}
	resp, body = post("wrong-token-0123456789")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not valid") || len(resp.Cookies()) != 0 {
		t.Errorf("POST /login with a wrong token: %d %v %q, want 401 saying so and no cookie", resp.StatusCode, resp.Cookies(), body)
	}
	resp, _ = post(testToken)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/system" {
		t.Fatalf("POST /login with the token: %d to %q, want 303 to /system", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v, want one", cookies)
	}
	c := cookies[0]
	_, port, _ := net.SplitHostPort(s.Addr())
	if c.Name != "sysperf_session_"+port || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" {
		t.Errorf("cookie %+v, want HttpOnly, SameSite=Strict, not Secure without TLS, path /", c)
	}
	if strings.Contains(c.Value, testToken) {
		t.Error("the cookie carries the token itself")
	}
	withCookie := withHeader("Cookie", c.String())
	if resp, body := request(t, http.MethodGet, base+"/system", nil, withCookie); resp.StatusCode != http.StatusOK || body != "ui:/system" {
		t.Errorf("GET /system with the cookie: %d %q", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/ws/system", &websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {c.String()}}})
	if err != nil {
		t.Fatalf("/ws/system with the cookie: %v", err)
	}
	_ = conn.CloseNow()

	// A form posted from another site, or a sandboxed frame, is refused;
	// the hub's own form posts with Origin "null" (no-referrer) and
	// Sec-Fetch-Site same-origin.
	for _, tc := range []struct {
		origin, site string
		want         int
	}{
		{"https://evil.example", "", http.StatusForbidden},
		{"http://evil.example:" + strings.Split(s.Addr(), ":")[1], "cross-site", http.StatusForbidden},
		{"null", "cross-site", http.StatusForbidden},
		{"null", "same-site", http.StatusForbidden},
		{"", "cross-site", http.StatusForbidden},
		{"null", "same-origin", http.StatusSeeOther},
		{base, "same-origin", http.StatusSeeOther},
	} {
		resp, _ = request(t, http.MethodPost, base+"/login", strings.NewReader("token="+testToken), func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.site != "" {
				r.Header.Set("Sec-Fetch-Site", tc.site)
			}
		})
		if resp.StatusCode != tc.want || (tc.want == http.StatusForbidden) != (len(resp.Cookies()) == 0) {
			t.Errorf("POST /login, Origin %q, Sec-Fetch-Site %q: %d %v, want %d", tc.origin, tc.site, resp.StatusCode, resp.Cookies(), tc.want)
		}
	}

	// The sign-in link.
	resp, body = request(t, http.MethodGet, base+"/login?token=nope-nope-nope-nope", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "not valid") {
		t.Errorf("sign-in link with a wrong token: %d %q", resp.StatusCode, body)
	}
	resp, _ = request(t, http.MethodGet, base+"/login?token="+testToken, nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/system" ||
		len(resp.Cookies()) != 1 || resp.Cookies()[0].Value != c.Value {
		t.Errorf("sign-in link: %d to %q with %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("sign-in link answer has Referrer-Policy %q, want no-referrer (the token is in its URL)", got)
	}
}

// A Host not on the allow-list is refused (DNS rebinding), also with a
// valid token.
func TestForeignHostRefused(t *testing.T) {
	s := plugged(t, Config{AllowedHosts: []string{"GPUhub.example."}})
	base := "http://" + s.Addr()
	_, port, _ := net.SplitHostPort(s.Addr())
	for host, want := range map[string]int{
		"localhost:" + port:       http.StatusOK,
		"127.0.0.1:" + port:       http.StatusOK,
		"[::1]:" + port:           http.StatusOK,
		"gpuhub.example:" + port:  http.StatusOK,
		"gpuhub.example":          http.StatusOK,
		"evil.example:" + port:    http.StatusMisdirectedRequest,
		"localhost.evil.example":  http.StatusMisdirectedRequest,
		"10.1.2.3:" + port:        http.StatusMisdirectedRequest, // listening on 127.0.0.1 only
		"gpuhub.example.evil.com": http.StatusMisdirectedRequest,
	} {
		for _, p := range []string{"/api/v1/performance", "/healthz", "/login"} {
			resp, body := request(t, http.MethodGet, base+p, nil, func(r *http.Request) {
				r.Host = host
				r.Header.Set("Authorization", "Bearer "+testToken)
			})
			if resp.StatusCode != want {
				t.Errorf("GET %s with Host %s: %d %q, want %d", p, host, resp.StatusCode, body, want)
			}
			if want != http.StatusOK && !strings.Contains(body, "--http-allowed-hosts") {
				t.Errorf("GET %s with Host %s: %q does not say how to allow it", p, host, body)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/ws/system", &websocket.DialOptions{
		Host:       "rebind.evil.example:" + port,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}, "Origin": {"http://rebind.evil.example:" + port}},
	})
	if err == nil || resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("WebSocket from a rebinding page: %v, want 421", err)
	}

	// Listening on every interface admits any IP literal, never a name.
	all := start(t, Config{Addr: "0.0.0.0:0"})
	_, port, _ = net.SplitHostPort(all.Addr())
	for host, want := range map[string]int{"10.1.2.3:" + port: http.StatusOK, "[fe80::1]:" + port: http.StatusOK, "evil.example:" + port: http.StatusMisdirectedRequest} {
		resp, _ := request(t, http.MethodGet, "http://127.0.0.1:"+port+"/login", nil, func(r *http.Request) { r.Host = host })
		if resp.StatusCode != want {
			t.Errorf("listening on 0.0.0.0, Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// The security headers are on every answer: pages, API, errors, refusals.
func TestSecurityHeaders(t *testing.T) {
	s := plugged(t, Config{})
	base := "http://" + s.Addr()
	bearer := withHeader("Authorization", "Bearer "+testToken)
	for _, tc := range []struct {
		path string
		edit func(*http.Request)
		code int
	}{
		{"/system", bearer, 200},
		{"/api/v1/performance", bearer, 200},
		{"/healthz", nil, 200},
		{"/login", nil, 200},
		{"/system", nil, 401},
		{"/api/v1/history?range=7y", bearer, 400},
		{"/system", func(r *http.Request) { r.Host = "evil.example" }, 421},
	} {
		resp, _ := request(t, http.MethodGet, base+tc.path, nil, tc.edit)
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self';", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s (%d): CSP %q lacks %q", tc.path, tc.code, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-") {
			t.Errorf("GET %s: CSP %q allows inline script, style or eval", tc.path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s (%d): headers %v", tc.path, tc.code, h)
		}
	}
}

// /metrics with its own token: Prometheus's token opens /metrics and
// nothing else, and the dashboard token no longer opens /metrics.
func TestMetricsToken(t *testing.T) {
	const scrape = "prometheus-token-0123456789"
	s := plugged(t, Config{MetricsTokens: []string{scrape}})
	base := "http://" + s.Addr()
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/metrics", scrape, 200},
		{"/metrics", testToken, 401},
		{"/api/v1/performance", scrape, 401},
		{"/api/v1/performance", testToken, 200},
	} {
		resp, body := request(t, http.MethodGet, base+tc.path, nil, withHeader("Authorization", "Bearer "+tc.token))
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s with %s: %d %q, want %d", tc.path, tc.token, resp.StatusCode, body, tc.want)
		}
	}
}

// Several tokens in the file are all valid; a token too short is refused
// naming the line but not the token.
func TestReadTokens(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("# rotated on Monday\nfirst-token-0123456789\n\n  second-token-0123456789  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toks, err := ReadTokens(good)
	if err != nil || len(toks) != 2 || toks[0] != "first-token-0123456789" || toks[1] != "second-token-0123456789" {
		t.Fatalf("ReadTokens: %q, %v", toks, err)
	}
	s := plugged(t, Config{Tokens: toks})
	for _, tok := range toks {
		if resp, _ := request(t, http.MethodGet, "http://"+s.Addr()+"/api/v1/alerts", nil, withHeader("Authorization", "Bearer "+tok)); resp.StatusCode != 200 {
			t.Errorf("token %q: %d", tok, resp.StatusCode)
		}
	}

	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("ok-token-0123456789\nhunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadTokens(short)
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("short token: %v, want an error naming line 2 and not the token", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokens(empty); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Errorf("empty file: %v", err)
	}

	gen := filepath.Join(dir, "sub", "http.token")
	toks, created, err := EnsureTokenFile(gen)
	if err != nil || !created || len(toks) != 1 || len(toks[0]) < 40 {
		t.Fatalf("EnsureTokenFile: %d tokens, created %v, %v", len(toks), created, err)
	}
	again, created, err := EnsureTokenFile(gen)
	if err != nil || created || len(again) != 1 || again[0] != toks[0] {
		t.Errorf("EnsureTokenFile again: created %v, same %v, %v", created, len(again) == 1 && again[0] == toks[0], err)
	}
}

// Turning authentication off is refused unless the listen address is
// loopback only; a server with auth on needs a token.
func TestNoAuthOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		if _, err := Start(Config{Addr: addr, NoAuth: true}); err == nil || !strings.Contains(err.Error(), "http-auth=false: refused") {
			t.Errorf("NoAuth on %s: %v, want refused", addr, err)
		}
	}
	if _, err := Start(Config{Addr: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Errorf("auth on without a token: %v", err)
	}
	s := start(t, Config{NoAuth: true})
	s.Publish(update(1))
	if resp, body := request(t, http.MethodGet, "http://"+s.Addr()+"/api/v1/performance", nil, nil); resp.StatusCode != 200 {
		t.Errorf("NoAuth on loopback: %d %q", resp.StatusCode, body)
	}
}

// Past MaxClients a WebSocket upgrade is refused with 503 and counted; a
// place that frees up is taken again.
func TestWebSocketClientCap(t *testing.T) {
	s := start(t, Config{MaxClients: 2})
	s.Publish(update(1))
	a, b := dial(t, s), dial(t, s)
	poll.Until(t, "two clients", func() bool { return s.Clients() == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/ws/system", &websocket.DialOptions{HTTPHeader: signedIn()})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third client: %v, want 503", err)
	}
	if s.Refused() != 1 {
		t.Errorf("Refused() = %d, want 1", s.Refused())
	}
	_ = a.Close(websocket.StatusNormalClosure, "")
	poll.Until(t, "the first client's handler to end", func() bool { return s.ws.Load() == 1 })
	c := dial(t, s)
	if _, _, err := c.Read(ctx); err != nil {
		t.Errorf("client after one left: %v", err)
	}
	if _, _, err := b.Read(ctx); err != nil {
		t.Errorf("the second client lost its feed: %v", err)
	}
}
