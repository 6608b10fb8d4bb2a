// Package natsd runs the hub's embedded nats-server. Only the hub imports
// it: the agent is a NATS client and must not link the server, whose
// process statistics alone cost it a sixth of its CPU.
package natsd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/sysperf/sysperf/internal/lograte"
	"github.com/sysperf/sysperf/internal/natsx"
)

// Config configures the hub's embedded nats-server.
type Config struct {
	// Listen is the host:port clients (agents) connect to. Port 0 picks a
	// free port; an empty Listen serves in-process connections only.
	Listen string
	// StoreDir is where JetStream keeps its streams.
	StoreDir string
	// MaxPayload is the largest message the server accepts; default
	// natsx.MaxMsgSize, the largest sample the hub decodes with room for
	// headers, so a flood of huge messages is refused at the door.
	MaxPayload int32
	// Users may connect with their NKey, each with its own permissions.
	// The server requires authentication: the hub's in-process connection
	// has a key of its own, made at start and never written anywhere.
	Users []User
	// Open turns authentication off. Only stand-ins for an external NATS
	// set it: tests, and the agent-cost tool's private loopback server.
	Open bool
	// TLSCert and TLSKey, when set, make the listener TLS-only.
	TLSCert, TLSKey string
	// MaxStore is the disk JetStream may use; 0: nats-server's default,
	// three quarters of the free space.
	MaxStore int64
	// ReadyTimeout bounds how long start-up waits for the listener and
	// JetStream; default 10s.
	ReadyTimeout time.Duration
	// Name is the server's name; default "sysperf-hub". Each node of a
	// cluster needs its own.
	Name string
	// Cluster, when set, makes the server a node of a JetStream cluster
	// (tests run three on loopback); nil is the hub's lone server.
	Cluster *Cluster
}

// Cluster is a node's place in a cluster.
type Cluster struct {
	// Name is the cluster's name, the same on every node.
	Name string
	// Listen is this node's host:port for routes from the other nodes.
	Listen string
	// Routes are every node's route host:port, this one's included
	// (nats-server skips a route to itself).
	Routes []string
}

// User is a client allowed to connect, by its public NKey. It may publish
// to Publish and subscribe to Subscribe (subject patterns) and nothing
// else.
type User struct {
	Key       string
	Publish   []string
	Subscribe []string
}

// maxClosedClients is how many closed connections the server remembers.
const maxClosedClients = 64

// authTimeout is how long a connection may take to send a valid CONNECT
// (and finish its TLS handshake) before the server closes it.
const authTimeout = 2 * time.Second

// Server is a running in-process nats-server with JetStream.
type Server struct {
	srv    *server.Server
	listen string
	// opts are the options the server started with, the base of every
	// reload; self is the hub's own key (nil when Open).
	opts *server.Options
	self nkeys.KeyPair
	mu   sync.Mutex
}

// Start starts a nats-server with JetStream. A listen address
// already in use, or a store directory JetStream cannot use, fails start-up
// with an error that names it.
func Start(cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats: store dir is empty")
	}
	opts := &server.Options{
		ServerName: "sysperf-hub",
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		MaxPayload: cfg.MaxPayload,
		// The hub handles signals itself and shuts the server down in order.
		NoSigs: true,
		// The server keeps the last closed connections for its monitoring
		// endpoint (10,000 by default, each with its subscriptions), which
		// the hub does not serve: 5.5 MB of a 2,000-host hub's heap after
		// the load tool's fill closed its connections.
		MaxClosedClients: maxClosedClients,
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = natsx.MaxMsgSize
	}
	if cfg.MaxStore > 0 {
		opts.JetStreamMaxStore = cfg.MaxStore
	}
	var self nkeys.KeyPair
	if !cfg.Open {
		var err error
		if self, err = nkeys.CreateUser(); err != nil {
			return nil, fmt.Errorf("embedded nats: hub key: %w", err)
		}
		if opts.Nkeys, err = nkeyUsers(self, cfg.Users); err != nil {
			return nil, err
		}
		opts.AuthTimeout = authTimeout.Seconds()
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey})
		if err != nil {
			return nil, fmt.Errorf("nats-tls-cert/nats-tls-key: %w", err)
		}
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, tc, authTimeout.Seconds()
	}
	if cfg.Name != "" {
		opts.ServerName = cfg.Name
	}
	if c := cfg.Cluster; c != nil {
		host, port, err := splitListen(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port}
		for _, r := range c.Routes {
			opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: r})
		}
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitListen(cfg.Listen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
		if port != server.RANDOM_PORT {
			// nats-server reports a failed listen only through its logger, so
			// check the address first to name it in a plain error.
			l, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return nil, fmt.Errorf("nats listen %s: %w", cfg.Listen, err)
			}
			_ = l.Close()
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	logger := &serverLog{log: log.With("component", "nats-server"), limit: lograte.Limiter{Every: logEvery}}
	srv.SetLoggerV2(logger, false, false, false)

	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	// Start enables JetStream synchronously and reports a failure only
	// through Fatalf; the listener comes up in the background.
	srv.Start()
	if logger.failed() {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats (store %s): %s", cfg.StoreDir, logger.fatal())
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats on %s not ready after %s: %s", cfg.Listen, timeout, logger.fatal())
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: jetstream in %s did not start: %s", cfg.StoreDir, logger.fatal())
	}
	e := &Server{srv: srv, listen: cfg.Listen, opts: opts.Clone(), self: self}
	if addr, ok := srv.Addr().(*net.TCPAddr); ok && addr != nil {
		e.listen = addr.String()
	}
	log.Info("embedded nats started", "listen", e.listen, "store", cfg.StoreDir, "auth", !cfg.Open, "users", len(cfg.Users), "tls", opts.TLS)
	return e, nil
}

// nkeyUsers are the server's users: the hub with every permission, and
// users with theirs.
func nkeyUsers(self nkeys.KeyPair, users []User) ([]*server.NkeyUser, error) {
	pub, err := self.PublicKey()
	if err != nil {
		return nil, err
	}
	out := []*server.NkeyUser{{Nkey: pub}}
	seen := map[string]bool{pub: true}
	for _, u := range users {
		if !nkeys.IsValidPublicUserKey(u.Key) {
			return nil, fmt.Errorf("embedded nats: user key %q is not a user public key", u.Key)
		}
		if seen[u.Key] {
			return nil, fmt.Errorf("embedded nats: user key %s given twice", u.Key)
		}
		seen[u.Key] = true
		out = append(out, &server.NkeyUser{Nkey: u.Key, Permissions: &server.Permissions{
			Publish:   allowOnly(u.Publish),
			Subscribe: allowOnly(u.Subscribe),
		}})
	}
	return out, nil
}

// allowOnly permits subjects and denies the rest; no subjects denies all.
func allowOnly(subjects []string) *server.SubjectPermission {
	if len(subjects) == 0 {
		return &server.SubjectPermission{Deny: []string{">"}}
	}
	return &server.SubjectPermission{Allow: slices.Clone(subjects)}
}

// Connected reports whether a client named name (nats.Name) is connected:
// its CONNECT, which carries the name, has been processed.
func (e *Server) Connected(name string) bool {
	cz, err := e.srv.Connz(&server.ConnzOptions{Limit: 1 << 20})
	if err != nil {
		return false
	}
	for _, c := range cz.Conns {
		if c.Name == name {
			return true
		}
	}
	return false
}

// SetUsers replaces the users without a restart. A client whose key is no
// longer among them is disconnected; the others keep their connection
// under their new permissions.
func (e *Server) SetUsers(users []User) error {
	if e.self == nil {
		return errors.New("embedded nats: authentication is off")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	nk, err := nkeyUsers(e.self, users)
	if err != nil {
		return err
	}
	opts := e.opts.Clone()
	opts.Nkeys = nk
	if err := e.srv.ReloadOptions(opts); err != nil {
		return fmt.Errorf("embedded nats: reload users: %w", err)
	}
	return nil
}

func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("nats listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("nats listen %q: bad port %q", listen, p)
	}
	if port == 0 {
		// For nats-server 0 means its default port 4222, -1 a random one.
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// ClientURL is the nats:// URL agents connect to; empty when the server
// accepts in-process connections only.
func (e *Server) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return "nats://" + e.listen
}

// Connect opens an in-process client connection (no TCP) with the shared
// options plus extra.
func (e *Server) Connect(name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append(natsx.Options(name, log), nats.InProcessServer(e.srv),
		// The client's URL would read as the default nats://127.0.0.1:4222.
		nats.ConnectHandler(func(*nats.Conn) {
			log.Info("nats connected", "component", "nats", "conn", name, "url", "in-process")
		}))
	if e.self != nil {
		pub, err := e.self.PublicKey()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Nkey(pub, e.self.Sign))
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("nats in-process connect: %w", err)
	}
	return nc, nil
}

// Interest reports whether any client (of this server or, through its
// routes, of the cluster) subscribes to subject, so that a publisher can
// skip building what nobody reads.
func (e *Server) Interest(subject string) bool {
	return e.srv.GlobalAccount().SubscriptionInterest(subject)
}

// ClusterPeers is how many JetStream peers this node's meta group has
// heard from, itself included; a cluster places a stream of R replicas
// only once its meta leader counts R.
func (e *Server) ClusterPeers() int { return len(e.srv.JetStreamClusterPeers()) }

// Store is the disk JetStream uses and may use, in bytes.
func (e *Server) Store() (used, limit int64, err error) {
	if !e.srv.JetStreamEnabled() {
		return 0, 0, errors.New("JetStream is disabled (its store failed or is full: see the nats-server errors in the log)")
	}
	v, err := e.srv.Varz(nil)
	if err != nil {
		return 0, 0, fmt.Errorf("embedded nats: %w", err)
	}
	if v.JetStream.Stats == nil || v.JetStream.Config == nil {
		return 0, 0, errors.New("embedded nats: no JetStream statistics")
	}
	return int64(v.JetStream.Stats.Store), v.JetStream.Config.MaxStore, nil
}

// Shutdown stops the server and waits until it has flushed JetStream.
func (e *Server) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// serverLog sends nats-server's log lines to slog. Fatalf must not exit:
// the server calls it for a failed listen or JetStream start, and start-up
// turns that into an error.
type serverLog struct {
	log      *slog.Logger
	mu       sync.Mutex
	lastFail string
	// limit holds back repeats of warnings and errors by kind: a stranger
	// failing to authenticate in a loop must not flood the log.
	limit lograte.Limiter
}

// logEvery is how often one kind of server warning or error is logged;
// the ones held back are counted in the next.
const logEvery = 10 * time.Second

// kind is what a server message is about, without the client address,
// connection id, quoted values and numbers that make each line unique.
func kind(msg string) string {
	if _, rest, ok := strings.Cut(msg, " - cid:"); ok {
		if _, after, ok := strings.Cut(rest, " - "); ok {
			msg = after
		}
	}
	msg, _, _ = strings.Cut(msg, `"`)
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, msg)
}

func (l *serverLog) limited(level slog.Level, format string, v []any) {
	msg := fmt.Sprintf(format, v...)
	if ok, held := l.limit.Allow(kind(msg), time.Now()); ok {
		l.log.Log(context.Background(), level, msg, "suppressed", held)
	}
}

func (l *serverLog) failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastFail != ""
}

func (l *serverLog) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastFail == "" {
		return "no reason given"
	}
	return l.lastFail
}

func (l *serverLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Warnf(format string, v ...any)   { l.limited(slog.LevelWarn, format, v) }
func (l *serverLog) Errorf(format string, v ...any)  { l.limited(slog.LevelError, format, v) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Tracef(format string, v ...any)  {}
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	l.lastFail = msg
	l.mu.Unlock()
	l.log.Error(msg)
}
