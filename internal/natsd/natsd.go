// Package natsd runs the hub's embedded nats-server. Only the hub imports
// it: the agent is a NATS client and must not link the server, whose
// process statistics alone cost it a sixth of its CPU.
package natsd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Config configures the hub's embedded nats-server.
type Config struct {
	// Listen is the host:port clients (agents) connect to. Port 0 picks a
	// free port; an empty Listen serves in-process connections only.
	Listen string
	// StoreDir is where JetStream keeps its streams.
	StoreDir string
	// MaxPayload is the largest message the server accepts. It defaults to
	// four times metrics.MaxMessage so that an oversize sample reaches the
	// hub's decoder and is counted there instead of vanishing at the server.
	MaxPayload int32
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

// Server is a running in-process nats-server with JetStream.
type Server struct {
	srv    *server.Server
	listen string
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
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 4 * metrics.MaxMessage
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
	logger := &serverLog{log: log.With("component", "nats-server")}
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
	e := &Server{srv: srv, listen: cfg.Listen}
	if addr, ok := srv.Addr().(*net.TCPAddr); ok && addr != nil {
		e.listen = addr.String()
	}
	log.Info("embedded nats started", "listen", e.listen, "store", cfg.StoreDir)
	return e, nil
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
	opts = append(opts, extra...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("nats in-process connect: %w", err)
	}
	return nc, nil
}

// ClusterPeers is how many JetStream peers this node's meta group has
// heard from, itself included; a cluster places a stream of R replicas
// only once its meta leader counts R.
func (e *Server) ClusterPeers() int { return len(e.srv.JetStreamClusterPeers()) }

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
func (l *serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Tracef(format string, v ...any)  {}
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	l.lastFail = msg
	l.mu.Unlock()
	l.log.Error(msg)
}
