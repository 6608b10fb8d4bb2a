// Package server is the hub's HTTP face: the dashboard, the REST API, the
// /ws/system feed and /metrics.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// HistoryReader serves the chart windows; hub.History satisfies it.
type HistoryReader interface {
	// Window returns the points of a range; an error means the range or
	// host is not one the reader knows, and is shown to the client. An
	// error with a KnownHosts method (see unknownHost) is an unknown host.
	Window(now time.Time, rng, host string) (metrics.History, error)
}

// unavailable is how a HistoryReader's error says it cannot answer yet
// (the hub is still starting): the endpoint answers 503 and the WebSocket
// is refused, so that a client retries rather than draw empty charts.
type unavailable interface {
	error
	Unavailable() bool
}

func isUnavailable(err error) bool { return says(err, unavailable.Unavailable) }

// says reports whether err, or an error it wraps, is a T and yes says
// so of it.
func says[T error](err error, yes func(T) bool) bool {
	var t T
	return errors.As(err, &t) && yes(t)
}

// unknownHost is how a HistoryReader's error says the host filter names a
// host it has no history of (history.UnknownHostError), without this
// package importing the reader's.
type unknownHost interface {
	error
	KnownHosts() []string
}

// tooLarge is how a HistoryReader's error says the window asked for is
// not served at this fleet's size (history.TooManyHostsError).
type tooLarge interface {
	error
	TooLarge() bool
}

func isTooLarge(err error) bool { return says(err, tooLarge.TooLarge) }

// AlertLister serves GET /api/v1/alerts.
type AlertLister interface {
	// Active returns the alerts now pending or firing.
	Active() []metrics.Alert
	// Recent returns the latest transitions, newest first.
	Recent() []metrics.Alert
}

// Config configures the server. Only Addr is required.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:8321"; port 0 picks one.
	Addr string
	// UI serves every path no other route takes. Nil serves a placeholder
	// page at /system.
	UI http.Handler
	// Metrics serves GET /metrics; nil answers 404.
	Metrics http.Handler
	// History serves /api/v1/history and the WebSocket's history
	// messages; nil answers 501 and sends no history.
	History HistoryReader
	// Alerts serves /api/v1/alerts; nil lists none.
	Alerts AlertLister
	// Rules serves /api/v1/rules; nil answers 501.
	Rules RuleLister
	// Health, when set, says why the hub cannot do its work right now
	// (its NATS is unreachable); /healthz then answers 503 with the
	// reason. Nil errors (or no Health) leave /healthz to the updates.
	Health func() error
	// DefaultRange is the history range sent on connect; default "5m".
	DefaultRange string
	// QueueLen is each WebSocket client's send queue; a client whose queue
	// is full is dropped. Default 16.
	QueueLen int
	// WriteTimeout bounds one WebSocket write; default 10s.
	WriteTimeout time.Duration
	// PingInterval is the WebSocket keep-alive period; default 20s.
	PingInterval time.Duration
	// OriginPatterns are extra origins allowed to open the WebSocket
	// (the page's own origin always is), e.g. a UI dev server.
	OriginPatterns []string
	Log            *slog.Logger

	// Tokens sign in to every endpoint but /healthz and /metrics: as
	// "Authorization: Bearer <token>", or through /login, which sets a
	// session cookie. Start refuses an empty list unless NoAuth.
	Tokens []string
	// MetricsTokens are the bearer tokens /metrics takes; nil: Tokens.
	MetricsTokens []string
	// NoAuth serves everything without a credential; Start refuses it
	// unless Addr is loopback only.
	NoAuth bool
	// AllowedHosts are names, besides localhost, the loopback IPs and
	// Addr's host, that requests may carry as Host.
	AllowedHosts []string
	// TLSCert and TLSKey, PEM files, serve HTTPS (and wss:) instead.
	TLSCert, TLSKey string
	// MaxClients caps the WebSocket clients; past it an upgrade is
	// refused with 503 and counted. Default 256.
	MaxClients int
}

// Server serves HTTP until Shutdown.
type Server struct {
	cfg  Config
	log  *slog.Logger
	http *http.Server
	ln   net.Listener
	done chan error

	// cur is the newest update and its views; encodes counts the views
	// encoded.
	cur     atomic.Pointer[tick]
	encodes atomic.Uint64

	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool

	dropped atomic.Uint64
	wg      sync.WaitGroup

	keys   atomic.Pointer[keys] // nil: NoAuth
	cookie string               // the session cookie's name
	hosts  *hosts
	tls    bool
	// ws counts WebSocket handlers, upgraded or on their way; refused
	// counts upgrades refused for MaxClients.
	ws      atomic.Int64
	refused atomic.Uint64
	// refusalLog and signInLog keep a flood of refused upgrades or wrong
	// tokens to a log line a minute each.
	refusalLog, signInLog rateLog
	wrongTokens           atomic.Uint64
}

// Start listens on cfg.Addr and serves in the background. An address in
// use fails with an error naming it.
func Start(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultRange == "" {
		cfg.DefaultRange = "5m"
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 16
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 20 * time.Second
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 256
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Log.With("component", "http"),
		done:    make(chan error, 1),
		clients: map[*client]struct{}{},
		hosts:   newHosts(cfg.Addr, cfg.AllowedHosts),
	}
	switch {
	case cfg.NoAuth && !Loopback(cfg.Addr):
		return nil, fmt.Errorf("http-auth=false: refused, the hub listens on %s, which other machines can reach; turn authentication off only on a loopback address (127.0.0.1, [::1], localhost)", cfg.Addr)
	case !cfg.NoAuth && len(cfg.Tokens) == 0:
		return nil, errors.New("http: no token to sign in with (--http-token-file)")
	case !cfg.NoAuth:
		s.keys.Store(newKeys(cfg.Tokens, cfg.MetricsTokens))
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("http-tls-cert and http-tls-key: give both or neither")
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("http-tls-cert %s, http-tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		// HTTP/1.1 only: the WebSocket upgrade needs it.
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
		s.tls = true
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", cfg.Addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.ln = ln
	s.cookie = cookieName(ln.Addr().String())
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetTokens replaces the tokens (a token file changed): requests and
// sessions of a token no longer listed are refused from now on.
func (s *Server) SetTokens(tokens, metricsTokens []string) error {
	if s.keys.Load() == nil {
		return errors.New("http: authentication is off")
	}
	if len(tokens) == 0 {
		return errors.New("http: no token")
	}
	s.keys.Store(newKeys(tokens, metricsTokens))
	return nil
}

// TLS reports whether the server speaks HTTPS.
func (s *Server) TLS() bool { return s.tls }

// Handler routes every endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// Healthy means serving updates: until the first one the hub is still
	// starting, and while Health has a reason it is not doing its work.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if s.cfg.Health != nil {
			if err := s.cfg.Health(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
				return
			}
		}
		if s.cur.Load() == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("starting\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /api/v1/performance", s.performance)
	mux.HandleFunc("GET /api/v1/history", s.history)
	mux.HandleFunc("GET /api/v1/hosts", s.hostsView)
	mux.HandleFunc("GET /api/v1/alerts", s.alerts)
	mux.HandleFunc("GET /api/v1/rules", s.rules)
	mux.HandleFunc("/ws/system", s.websocket)
	mux.HandleFunc("/login", s.login)
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", s.cfg.Metrics)
	} else {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "metrics not configured")
		})
	}
	if s.cfg.UI != nil {
		mux.Handle("/", s.cfg.UI)
	} else {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/system", http.StatusFound)
		})
		mux.HandleFunc("GET /system", placeholder)
	}
	return s.guard(mux)
}

// Clients is the number of connected WebSocket clients.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// Dropped is the number of WebSocket clients dropped for being too slow.
func (s *Server) Dropped() uint64 { return s.dropped.Load() }

// Refused is the number of WebSocket upgrades refused for MaxClients.
func (s *Server) Refused() uint64 { return s.refused.Load() }

// Shutdown stops accepting, closes every WebSocket and waits for handlers
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for c := range s.clients {
		c.stop(websocketGoingAway, "server shutting down")
		delete(s.clients, c)
	}
	s.mu.Unlock()
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
		return fmt.Errorf("http shutdown: %w", err)
	}
	ws := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(ws)
	}()
	select {
	case <-ws:
	case <-ctx.Done():
		return fmt.Errorf("http shutdown: websocket clients still closing: %w", ctx.Err())
	}
	return <-s.done
}

func (s *Server) performance(w http.ResponseWriter, r *http.Request) {
	if host := r.URL.Query().Get("host"); host != "" {
		s.serveView(w, hostKey(host))
		return
	}
	s.serveView(w, viewAll)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	if s.cfg.History == nil {
		writeError(w, http.StatusNotImplemented, "history not configured")
		return
	}
	q := r.URL.Query()
	rng := q.Get("range")
	if rng == "" {
		rng = s.cfg.DefaultRange
	}
	// The views' own histories: ?view=fleet is the site's totals, which
	// a script can read at any fleet size (the default view's 60m history
	// at 2,000 hosts is about 500 MB).
	k, err := parseView(q.Get("view"), q.Get("host"), viewAll)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	window := s.windowOf(k)
	if window == nil {
		writeError(w, http.StatusNotImplemented, "no "+string(k)+" history")
		return
	}
	h, err := window(time.Now(), rng)
	var uh unknownHost
	switch {
	case isUnavailable(err):
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case errors.As(err, &uh):
		// The message lists the known hosts, so the client can fix the
		// filter without another call.
		writeError(w, http.StatusNotFound, uh.Error())
		return
	case isTooLarge(err):
		// The request is understood and well formed, and refused for
		// what it would cost; the message names what to ask instead.
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, rangeError(rng, err))
		return
	}
	h.Type = ""
	writeJSON(w, http.StatusOK, h)
}

// rangeError names the range the client asked for, unless the history's
// own error already does.
func rangeError(rng string, err error) string {
	msg := err.Error()
	if strings.Contains(msg, strconv.Quote(rng)) {
		return msg
	}
	return "range " + strconv.Quote(rng) + ": " + msg
}

// AlertsBody is GET /api/v1/alerts.
type AlertsBody struct {
	Active []metrics.Alert `json:"active"`
	Recent []metrics.Alert `json:"recent"`
}

func (s *Server) alerts(w http.ResponseWriter, _ *http.Request) {
	body := AlertsBody{Active: []metrics.Alert{}, Recent: []metrics.Alert{}}
	if s.cfg.Alerts != nil {
		if a := s.cfg.Alerts.Active(); a != nil {
			body.Active = a
		}
		if a := s.cfg.Alerts.Recent(); a != nil {
			body.Recent = a
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// placeholder stands in for the dashboard until a UI handler is given.
func placeholder(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sysperf</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto">
<h1>sysperf</h1>
<p>The hub is running, but this build has no dashboard.
The live feed is at <code>/ws/system</code> and the latest figures at
<a href="/api/v1/performance"><code>/api/v1/performance</code></a>.</p>
</body></html>
`))
}
