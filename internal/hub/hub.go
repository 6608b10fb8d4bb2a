// Package hub is sysperf's hub: it ingests agent samples from JetStream,
// merges them with its own sources into the performance update every
// interval, and serves it.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/alerting"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/internal/server"
	"github.com/sysperf/sysperf/internal/size"
	"github.com/sysperf/sysperf/internal/sources"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Config is the hub's settings, what the user set (flags, SYSPERF_* env,
// YAML keys through internal/config); nothing edits it once it is loaded.
// What is plugged in goes apart, in Plugs.
type Config struct {
	HTTP           string        `flag:"http" usage:"dashboard, API and WebSocket listen address"`
	NATSListen     string        `flag:"nats-listen" usage:"embedded NATS listen address for agents (empty: in-process only)"`
	NATSURL        string        `flag:"nats-url" usage:"external NATS server URL(s), comma separated; disables the embedded server"`
	NATSCreds      string        `flag:"nats-creds" usage:"credentials file (NKey seed or user .creds) the hub uses with an external NATS (--nats-url)"`
	NATSCA         string        `flag:"nats-ca" usage:"CA file that verifies an external NATS server's certificate (TLS)"`
	NATSCert       string        `flag:"nats-cert" usage:"client certificate file for an external NATS that asks for one (with --nats-key)"`
	NATSKey        string        `flag:"nats-key" usage:"client certificate key file (with --nats-cert)"`
	NATSTLSCert    string        `flag:"nats-tls-cert" usage:"certificate file: the embedded NATS listener takes TLS only (with --nats-tls-key)"`
	NATSTLSKey     string        `flag:"nats-tls-key" usage:"key file of --nats-tls-cert"`
	NATSMaxStore   size.Bytes    `flag:"nats-max-store" usage:"disk the embedded NATS's JetStream may use, in bytes or with a unit (500GB, 64GiB; 0: three quarters of the free space)"`
	StreamMaxBytes size.Bytes    `flag:"stream-max-bytes" usage:"disk the samples stream may hold, in bytes or with a unit (80GB, 4GiB; 0: 4GiB, at most half the embedded store); the oldest samples go first beyond it"`
	NATSWait       time.Duration `flag:"nats-wait" usage:"how long start-up retries an external NATS that does not answer, with back-off, serving /healthz as not ready meanwhile (0: until it answers)"`
	DataDir        string        `flag:"data-dir" usage:"state directory (JetStream store of the embedded NATS)"`
	Interval       time.Duration `flag:"interval" usage:"how often the performance update is built and sent"`
	Retention      time.Duration `flag:"retention" usage:"how long samples stay in the SYSPERF_SAMPLES stream"`
	Replay         time.Duration `flag:"replay" usage:"how much of the sample stream is replayed into the windows at start"`
	SourceTimeout  time.Duration `flag:"source-timeout" usage:"time limit of one poll of a database, container or Prometheus source"`
	LatencyWindow  time.Duration `flag:"latency-window" usage:"window of the inference latency figures in the live update"`
	Consumer       string        `flag:"nats-consumer" usage:"this hub's name on a shared NATS (its alert lease); unique per hub sharing one NATS. Earlier versions' durable consumer of that name is deleted at start"`
	Replicas       int           `flag:"stream-replicas" usage:"replicas of the hub's JetStream streams on a clustered external NATS"`
	// Alerts and history (internal/alerting, internal/history).
	Rules            string        `flag:"rules" usage:"YAML alert rules file that overrides or adds to the default rules; a bad rule stops start-up"`
	Webhooks         []string      `flag:"webhook" usage:"webhook URLs, comma separated, that receive firing and resolved alerts as Alertmanager's POST /api/v2/alerts body"`
	HistoryRetention time.Duration `flag:"history-retention" usage:"how long the rollups behind the 6h, 24h and 7d history are kept (at least 7d)"`

	// Containers are pinged for health every interval (YAML only).
	Containers []sources.ContainerTarget `flag:"-" yaml:"containers"`
	// The hub's own sources and its /metrics (internal/sources,
	// internal/export): assemble_sources.go.
	SourceSettings
	// Who may use the dashboard and API, and over what (http.go).
	HTTPSettings
}

// Plugs are the hub's parts that can be plugged in instead of the ones
// built from the settings: a field left nil (all of them, for cmd/hub) is
// built by Start (assemble.go, assemble_sources.go); tests set them.
type Plugs struct {
	Sources   []SourceSpec
	Latency   Latency
	History   History
	Evaluator Evaluator
	Alerts    server.AlertLister
	// AlertRules serves GET /api/v1/rules; nil takes the assembled alert
	// service's rules.
	AlertRules server.RuleLister
	Metrics    http.Handler
	UI         http.Handler
}

// DefaultConfig returns the defaults. The data directory is systemd's
// $STATE_DIRECTORY when the hub runs as a unit with StateDirectory=, else
// ./data.
func DefaultConfig() Config {
	dataDir := "data"
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		// systemd lists several directories separated by ':'.
		dataDir, _, _ = strings.Cut(d, ":")
	}
	return Config{
		HTTP:          "127.0.0.1:8321",
		NATSListen:    "127.0.0.1:4321",
		DataDir:       dataDir,
		Interval:      5 * time.Second,
		Retention:     24 * time.Hour,
		Replay:        60 * time.Minute,
		SourceTimeout: 4 * time.Second,
		LatencyWindow: 5 * time.Minute,
		Consumer:      "sysperf-hub",
		Replicas:      1,

		HistoryRetention: 7 * 24 * time.Hour,
		HTTPSettings:     defaultHTTPSettings(),
	}
}

// Validate checks what start-up would trip over, naming the setting.
// MinInterval is the shortest update interval the hub accepts.
const MinInterval = 100 * time.Millisecond

func (c *Config) Validate() error {
	var errs []error
	if c.HTTP == "" {
		errs = append(errs, errors.New("http: listen address is empty"))
	}
	if c.NATSURL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("data-dir: empty, and the embedded NATS needs a store"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", c.Interval}, {"retention", c.Retention}, {"source-timeout", c.SourceTimeout}, {"latency-window", c.LatencyWindow}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", d.name, d.v))
		}
	}
	// Faster than this the hub would only spin: a tick builds, scrubs and
	// sends the whole update, and every source is polled each tick.
	if c.Interval > 0 && c.Interval < MinInterval {
		errs = append(errs, fmt.Errorf("interval: %s is below the %s minimum", c.Interval, MinInterval))
	}
	if c.PostgresPoolSize < 0 {
		errs = append(errs, fmt.Errorf("postgres-pool-size: must not be negative, got %d (0: max_connections)", c.PostgresPoolSize))
	}
	if !metrics.ValidToken(c.Consumer) {
		errs = append(errs, fmt.Errorf("nats-consumer %q: only letters, digits, '-' and '_'", c.Consumer))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("stream-replicas: %d, want 1 to 5", c.Replicas))
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		errs = append(errs, errors.New("nats-tls-cert and nats-tls-key: give both or neither"))
	}
	if c.NATSMaxStore < 0 {
		errs = append(errs, fmt.Errorf("nats-max-store: must not be negative, got %d", c.NATSMaxStore))
	}
	if c.StreamMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("stream-max-bytes: must not be negative, got %d", c.StreamMaxBytes))
	}
	if c.NATSWait < 0 {
		errs = append(errs, fmt.Errorf("nats-wait: must not be negative, got %s (0 waits until NATS answers)", c.NATSWait))
	}
	if c.Replay < 0 {
		errs = append(errs, fmt.Errorf("replay: must not be negative, got %s", c.Replay))
	}
	if c.HistoryRetention != 0 && c.HistoryRetention < 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("history-retention: %s is shorter than the 7d range it keeps", c.HistoryRetention))
	}
	errs = append(errs, c.HTTPSettings.validate(c.HTTP))
	return errors.Join(errs...)
}

// Hub is a running hub.
type Hub struct {
	cfg Config
	// plugs are the caller's, completed by the assembly at start.
	plugs Plugs
	log   *slog.Logger

	emb *natsd.Server
	// lock holds the data directory for this hub alone.
	lock *os.File
	// enrol is the enrolment file of the embedded server's users; enrolRaw
	// its content as last applied.
	enrol    *enroll.Store
	enrolMu  sync.Mutex
	enrolRaw []byte
	nc       *nats.Conn
	js       jetstream.JetStream
	in       *ingest
	live     *live // feeds in: the samples subscription, replay, read-backs
	lat      *nats.Subscription
	srv      *server.Server
	pub      publisher
	// merge keeps each host's converted sample between ticks (loop only).
	merge merger
	// gc times the collector's cycles between ticks (loop only).
	gc *gcPacer

	runners []*runner
	// alerts is the assembled alert service, nil when the caller plugged
	// in an Evaluator; observe times the sources' polls for /metrics, nil
	// when the caller plugged in its own handler.
	alerts  *alerting.Service
	observe func(source string, took time.Duration, up bool)
	// bg are the assembled components' background loops, run from Start
	// until Close.
	bg     []func(context.Context)
	latest atomic.Pointer[metrics.Update]
	// tokenFile holds the dashboard tokens; empty with auth off.
	tokenFile string
	// What /healthz and the server's history see while Start runs on
	// other goroutines: the NATS connection once made, why it is not
	// yet, and the history once replayed.
	conn     atomic.Pointer[nats.Conn]
	natsDown atomic.Pointer[error]
	// ingestDown is why ingest is broken (a stream gone, store full), nil
	// when it works.
	ingestDown atomic.Pointer[error]
	// ingestMu serialises repairs of the streams after start.
	ingestMu sync.Mutex
	history  lateHistory
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// streams watches the hub's streams (watch.go), made on first use.
	streams     *streams
	streamsOnce sync.Once
}

// Start brings the hub up: the HTTP server, NATS (embedded or external),
// the samples stream, ingest with a replay of the stream, the source
// pollers and the update loop. An external NATS that does not answer is
// retried with back-off for cfg.NATSWait (0: until ctx ends) while the
// dashboard is served and /healthz says why the hub is not ready.
// Anything else that fails stops start-up with an error naming it, and
// what was started is shut down again.
func Start(ctx context.Context, cfg Config, plugs Plugs, log *slog.Logger) (_ *Hub, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, plugs: plugs, log: log, pub: publisher{log: log}, gc: newGCPacer()}
	defer func() {
		if err != nil {
			_ = h.Close()
		}
	}()
	if err := h.prepare(); err != nil {
		return nil, err
	}
	if cfg.NATSURL == "" {
		// Before anything binds a port or opens the store.
		if h.lock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}

	// HTTP first: a port in use fails before the NATS store is touched,
	// and the dashboard and /healthz answer while NATS is waited for.
	tokens, metricsTokens, err := h.httpTokens(log)
	if err != nil {
		return nil, err
	}
	if h.srv, err = server.Start(server.Config{
		Addr:    cfg.HTTP,
		UI:      h.plugs.UI,
		Metrics: h.plugs.Metrics,
		History: &h.history,
		Alerts:  h.plugs.Alerts,
		Rules:   h.ruleLister(),
		Health:  h.health,
		Log:     log,

		Tokens:        tokens,
		MetricsTokens: metricsTokens,
		NoAuth:        !cfg.HTTPAuth,
		AllowedHosts:  cfg.HTTPAllowedHosts,
		TLSCert:       cfg.HTTPTLSCert,
		TLSKey:        cfg.HTTPTLSKey,
		MaxClients:    cfg.WSMaxClients,
	}); err != nil {
		return nil, err
	}
	h.bg = append(h.bg, h.watchTokens)
	if h.tokenFile != "" {
		log.Info("dashboard: "+dashboardURL(h.srv.Addr(), h.srv.TLS()), "sign_in_token_file", h.tokenFile)
	} else {
		log.Info("dashboard: " + dashboardURL(h.srv.Addr(), h.srv.TLS()))
	}

	// Who may publish, as the embedded server was told at start; nil with
	// an external NATS.
	var known *enrolledSet
	if cfg.NATSURL == "" {
		store := filepath.Join(cfg.DataDir, "nats")
		if err := os.MkdirAll(store, 0o750); err != nil {
			return nil, fmt.Errorf("data-dir: %w", err)
		}
		h.enrol = enroll.Open(cfg.DataDir)
		var users []natsd.User
		if users, known, h.enrolRaw, err = enrolled(h.enrol); err != nil {
			return nil, err
		}
		if h.emb, err = natsd.Start(natsd.Config{Listen: cfg.NATSListen, StoreDir: store, Users: users, TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey, MaxStore: int64(cfg.NATSMaxStore)}, log); err != nil {
			return nil, err
		}
		h.pub.interest = h.emb.Interest
		h.nc, err = h.emb.Connect("sysperf-hub", log)
	} else {
		auth, aerr := natsx.Auth{Creds: cfg.NATSCreds, CA: cfg.NATSCA, Cert: cfg.NATSCert, Key: cfg.NATSKey}.Options()
		if aerr != nil {
			return nil, aerr
		}
		h.nc, err = natsx.ConnectWait(ctx, cfg.NATSURL, "sysperf-hub", log, cfg.NATSWait, func(err error) {
			if err == nil {
				h.natsDown.Store(nil)
				return
			}
			h.natsDown.Store(&err)
		}, auth...)
	}
	if err != nil {
		return nil, err
	}
	h.conn.Store(h.nc)
	// An asynchronous publish (history's rollups) whose ack never comes
	// fails after a while rather than holding its place for good.
	js, err := jetstream.New(h.nc, jetstream.WithPublishAsyncTimeout(asyncAckWait))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	// Hubs started together on one cluster create the same streams at
	// once, and the cluster leaves some of those requests unanswered: the
	// set-up calls are retried (natsx.Retrying), within setupWait.
	h.js = natsx.Retrying(js, log)
	sctx, cancel := context.WithTimeout(ctx, setupWait)
	defer cancel()
	if _, err := natsx.EnsureSamplesStream(sctx, h.js, h.streamConfig()); err != nil {
		return nil, err
	}

	if err := h.assemble(ctx); err != nil {
		return nil, err
	}

	h.in = newIngest(log.With("component", "ingest"), h.plugs.History, h.plugs.Latency)
	h.in.ahead, h.in.window = cfg.Interval, max(cfg.Replay, cfg.Interval)
	if known != nil {
		h.in.enrolled.Store(known)
	}

	if h.lat, err = h.nc.Subscribe(metrics.SubjectLatency, func(m *nats.Msg) { h.in.observations(m.Subject, m.Data) }); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", metrics.SubjectLatency, err)
	}
	// Live samples come on a subscription, made before the replay so
	// that none falls between the two (live.go); JetStream replays the
	// stream and reads back what the subscription misses.
	h.live = newLive(h.in, h.nc, h.js, log.With("component", "ingest"), h.in.window)
	if err := h.live.subscribe(); err != nil {
		return nil, err
	}
	h.live.start()
	dropLegacyConsumer(sctx, h.js, cfg.Consumer, log)
	// The first update holds the replayed history; a replay that takes
	// too long is not worth refusing to serve for.
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	replayed, caught, err := h.live.replay(rctx, time.Now().Add(-h.replay(cfg.Replay)))
	rcancel()
	if err != nil {
		return nil, err
	}
	if !caught && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	log.Info("samples replayed", "messages", replayed, "complete", caught, "since", cfg.Replay)
	h.history.set(h.plugs.History)

	loopCtx, stop := context.WithCancel(context.Background())
	h.cancel = stop
	for _, run := range h.bg {
		h.wg.Go(func() { run(loopCtx) })
	}
	if h.enrol != nil {
		h.wg.Go(func() { h.watchEnrolment(loopCtx) })
	}
	h.wg.Go(func() { h.watchIngest(loopCtx) })
	for _, src := range h.plugs.Sources {
		r := newRunner(src, cfg.SourceTimeout, log)
		r.observe = h.observe
		h.runners = append(h.runners, r)
		h.wg.Go(func() { r.run(loopCtx, cfg.Interval) })
	}
	h.tick(time.Now())
	h.wg.Go(func() { h.loop(loopCtx) })

	if h.emb != nil && h.emb.ClientURL() != "" {
		log.Info("agents connect to " + h.emb.ClientURL())
	}
	return h, nil
}

// setupWait bounds start-up's JetStream set-up of the samples stream,
// retries included; past it start-up fails, naming the call that went
// unanswered.
const setupWait = time.Minute

// asyncAckWait bounds the wait for an asynchronous publish's ack.
const asyncAckWait = 10 * time.Second

// streamConfig is the samples stream the hub keeps. On the embedded
// server its default size is at most half the store, which JetStream
// reserves for it, so a small disk does not refuse the stream.
func (h *Hub) streamConfig() natsx.SamplesStream {
	maxBytes := int64(h.cfg.StreamMaxBytes)
	if maxBytes == 0 && h.emb != nil {
		if _, limit, err := h.emb.Store(); err == nil && limit > 0 {
			maxBytes = min(natsx.DefaultMaxBytes, limit/2)
		}
	}
	return natsx.SamplesStream{MaxAge: h.cfg.Retention, Replicas: h.cfg.Replicas, MaxBytes: maxBytes}
}

// health is the server's readiness check: NATS connected. The first
// update, which /healthz also waits for, follows the replay.
func (h *Hub) health() error {
	if err := h.natsDown.Load(); err != nil {
		return *err
	}
	if err := h.ingestDown.Load(); err != nil {
		return *err
	}
	nc := h.conn.Load()
	switch {
	case nc == nil:
		return errors.New("connecting to NATS")
	case !nc.IsConnected():
		// nats.go reconnects with back-off on its own; the log has the
		// disconnect and the reconnect.
		return fmt.Errorf("NATS at %s unreachable, reconnecting with back-off", h.natsURLRedacted())
	}
	return nil
}

func (h *Hub) natsURLRedacted() string {
	if h.emb != nil {
		return "the embedded server"
	}
	return redact.URL(h.cfg.NATSURL)
}

// lateHistory is the server's view of the history, which is built once
// NATS is up and complete once the samples are replayed; until then it
// answers notReady, which the server turns into 503s.
type lateHistory struct{ h atomic.Pointer[History] }

func (l *lateHistory) set(h History) { l.h.Store(&h) }

func (l *lateHistory) Window(now time.Time, rng, host string) (metrics.History, error) {
	return l.read(func(h History) (metrics.History, error) { return h.Window(now, rng, host) })
}

func (l *lateHistory) FleetWindow(now time.Time, rng string) (metrics.History, error) {
	return l.read(func(h History) (metrics.History, error) { return h.FleetWindow(now, rng) })
}

// read asks the history once it is set.
func (l *lateHistory) read(ask func(History) (metrics.History, error)) (metrics.History, error) {
	h := l.h.Load()
	if h == nil || *h == nil {
		return metrics.History{}, notReady{}
	}
	return ask(*h)
}

type notReady struct{}

func (notReady) Error() string {
	return "history not ready: the hub is starting (waiting for NATS or replaying the samples)"
}

// Unavailable tells the server to answer 503 rather than 400.
func (notReady) Unavailable() bool { return true }

// ruleLister is the plugged rule list, else the rules the assembled alert
// service evaluates; nil (no rules to show) when neither is there.
func (h *Hub) ruleLister() server.RuleLister {
	switch {
	case h.plugs.AlertRules != nil:
		return h.plugs.AlertRules
	case h.alerts != nil:
		return h.alerts.Engine()
	}
	return nil
}

func dashboardURL(addr string, tls bool) string {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + addr + "/system"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return scheme + net.JoinHostPort(host, port) + "/system"
}

// Run starts the hub and serves until ctx ends, then shuts down. A ctx
// that ends during start-up (SIGTERM while NATS is waited for) is a clean
// shutdown, not a failure.
func Run(ctx context.Context, cfg Config, plugs Plugs, log *slog.Logger) error {
	h, err := Start(ctx, cfg, plugs, log)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		log.Info("shutting down during start-up", "reason", err)
		return nil
	}
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	return h.Close()
}

// HTTPAddr is the address the dashboard and API listen on.
func (h *Hub) HTTPAddr() string { return h.srv.Addr() }

// NATSURL is where agents connect: the embedded server's URL, or the
// external URL the hub was given.
func (h *Hub) NATSURL() string {
	if h.emb != nil {
		return h.emb.ClientURL()
	}
	return h.cfg.NATSURL
}

// Stats returns the ingest counters.
func (h *Hub) Stats() Stats { return h.in.Stats() }

// LiveStats returns the live path's counters: gaps read back, overlaps.
func (h *Hub) LiveStats() LiveStats { return h.live.Stats() }

// dropLegacyConsumer deletes the durable consumer earlier hubs read the
// samples through, named --nats-consumer: left alone, a cluster would
// keep it (and its replicated state) for good. A hub that may not delete
// it says so and goes on.
func dropLegacyConsumer(ctx context.Context, js jetstream.JetStream, name string, log *slog.Logger) {
	err := js.DeleteConsumer(ctx, metrics.StreamSamples, name)
	switch {
	case err == nil:
		log.Info("deleted the durable consumer of earlier versions; samples now come on a subscription", "consumer", name)
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		log.Warn("could not delete the durable consumer of earlier versions", "consumer", name, "err", err)
	}
}

// Clients is the number of connected WebSocket clients.
func (h *Hub) Clients() int { return h.srv.Clients() }

// Latest is the newest update, nil before the first. It must not be
// modified.
func (h *Hub) Latest() *metrics.Update { return h.latest.Load() }

// ClientsDropped is the number of WebSocket clients dropped for being too
// slow to take the updates.
func (h *Hub) ClientsDropped() uint64 { return h.srv.Dropped() }

func (h *Hub) loop(ctx context.Context) {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	// collect fires half an interval after a tick that found a
	// collection due (gcPacer): as far from both ticks as it gets.
	var collect <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.tick(now)
			if h.gc.afterTick() {
				collect = time.After(h.cfg.Interval / 2)
			}
		case <-collect:
			collect = nil
			h.gc.collect()
		}
	}
}

// tick builds, sends and records one update. What the browsers see
// (the merge, the latency windows, the sources, the scrub and the alerts)
// comes first; the history records it once it is published. With
// --log-level=debug each tick logs its steps' durations ("tick phases").
func (h *Hub) tick(now time.Time) {
	ph := h.phases(now)
	u := h.merge.merge(now, h.in.snapshot(now.Add(-h.cfg.Retention)), h.cfg.Interval)
	ph.mark("merge")
	agentGPUs := len(u.GPUs)
	applyLatency(&u, h.plugs.Latency, now, h.cfg.LatencyWindow)
	applyModelWindows(&u, h.plugs.Latency, now, h.cfg.LatencyWindow)
	ph.mark("latency")
	applySources(&u, h.runners, now, h.cfg.Interval, h.log)
	ph.mark("sources")
	// Samples are clean, but plugs compute (a percentile of nothing is
	// NaN); one such number must not make the update unencodable. It goes
	// before the alerts and the history see the update, so to them it is
	// no data, as it is to the browser: a NaN would hold a firing alert
	// and reach its saved state, which JSON cannot encode either.
	if n := scrubUpdate(&u, agentGPUs); n > 0 {
		h.log.Warn("non-finite numbers removed from the update", "count", n)
	}
	ph.mark("scrub")
	if h.plugs.Evaluator != nil {
		if a := h.plugs.Evaluator.Evaluate(now, &u); a != nil {
			u.Alerts = a
		}
	}
	ph.mark("alerts")
	h.latest.Store(&u)
	h.pub.publish(h.srv, h.nc, &u)
	ph.mark("publish")
	// The history comes after the browsers have the update: it needs
	// nothing of the publish, the browsers nothing of it, and its store's
	// lock is shared with the minutes and rollups the persistence folds
	// and encodes for every host in the background (history.Persist's
	// Run), which a tick that records first waited for. From here on the
	// update is only read, by the history and by the server.
	if h.plugs.History != nil {
		h.plugs.History.Record(&u)
	}
	ph.mark("history")
	ph.done()
}

// Close stops the loop and the pollers, drains the samples subscription, closes the
// HTTP server with a deadline and shuts NATS down. It is safe to call
// more than once and on a partly started hub.
func (h *Hub) Close() error {
	h.closeOnce.Do(func() {
		var errs []error
		if h.cancel != nil {
			h.cancel()
		}
		// A source that ignores its context must not hold shutdown hostage.
		stopped := make(chan struct{})
		go func() {
			h.wg.Wait()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			errs = append(errs, errors.New("a source poll did not return within 5s of shutdown"))
		}
		closeSources(h.plugs.Sources)
		if h.live != nil {
			h.live.close()
		}
		if h.lat != nil {
			_ = h.lat.Unsubscribe()
		}
		if h.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			errs = append(errs, h.srv.Shutdown(ctx))
			cancel()
		}
		if h.nc != nil {
			if err := h.nc.Drain(); err != nil {
				h.nc.Close()
			}
			h.waitClosed(5 * time.Second)
		}
		if h.emb != nil {
			h.emb.Shutdown()
		}
		if h.lock != nil {
			_ = h.lock.Close()
		}
		h.closeErr = errors.Join(errs...)
	})
	return h.closeErr
}

func (h *Hub) waitClosed(d time.Duration) {
	deadline := time.Now().Add(d)
	for !h.nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	h.nc.Close()
}
