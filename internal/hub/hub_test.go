package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/sources"
	"github.com/sysperf/sysperf/pkg/metrics"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.HTTP = "127.0.0.1:0"
	cfg.NATSListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Interval = 100 * time.Millisecond
	return cfg
}

// startHub starts a hub with cfg and, when given, plugs.
func startHub(t *testing.T, cfg Config, plugs ...Plugs) *Hub {
	t.Helper()
	var p Plugs
	if len(plugs) > 0 {
		p = plugs[0]
	}
	h, err := Start(context.Background(), cfg, p, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

func publish(t *testing.T, natsURL string, s *metrics.Sample, opts ...nats.Option) {
	t.Helper()
	js := natsxtest.Connect(t, natsURL, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, metrics.SampleSubject(s.Host), encode(t, s), jetstream.WithMsgID(metrics.MsgID(s, "k"))); err != nil {
		t.Fatal(err)
	}
}

// performance polls /api/v1/performance until cond holds.
func performance(t *testing.T, h *Hub, cond func(metrics.Update) bool) metrics.Update {
	t.Helper()
	var u metrics.Update
	tok := readToken(t, h.TokenFile())
	poll.Until(t, "an update from /api/v1/performance that fits", func() bool {
		resp, err := http.DefaultClient.Do(authed("http://"+h.HTTPAddr()+"/api/v1/performance", tok))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		u = metrics.Update{}
		return resp.StatusCode == 200 && json.Unmarshal(b, &u) == nil && cond(u)
	})
	return u
}

func hasHost(host string) func(metrics.Update) bool {
	return func(u metrics.Update) bool {
		for _, h := range u.Hosts {
			if h.Host == host {
				return true
			}
		}
		return false
	}
}

func TestHubServesSamplesAndPublishesUpdates(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	cfg := testConfig(t)
	h := startHub(t, cfg, Plugs{History: rec, Latency: rec})
	if !strings.HasPrefix(h.NATSURL(), "nats://127.0.0.1:") {
		t.Fatalf("NATSURL %q", h.NATSURL())
	}

	nc, err := h.emb.Connect("test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	updates, err := nc.SubscribeSync(metrics.SubjectUpdate)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	s := &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: 1, TS: time.Now().UnixNano(), System: system()}
	publish(t, h.NATSURL(), s, as(t, "gpu01", enrol(t, h, "gpu01", enroll.Agent))...)
	u := performance(t, h, hasHost("gpu01"))
	eq(t, "host.ram_total_gb", u.Host.RAMTotalGB, 32)
	if l := h.Latest(); l == nil || !hasHost("gpu01")(*l) {
		t.Fatalf("Latest() = %+v", l)
	}
	if u.Sources["host"] != "agent:gpu01" || !u.Hosts[0].Online {
		t.Fatalf("sources %v hosts %+v", u.Sources, u.Hosts)
	}

	if err := nc.Publish(metrics.LatencySubject("gpu01", "pipeline"), []byte(`{"v":1,"ts":1733000000000000000,"ms":3200}`)); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := updates.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no update on %s: %v", metrics.SubjectUpdate, err)
		}
		var got metrics.Update
		if err := json.Unmarshal(msg.Data, &got); err != nil {
			t.Fatal(err)
		}
		if got.Type == metrics.TypeUpdate && hasHost("gpu01")(got) {
			break
		}
	}
	poll.Until(t, "the latency observation counted", func() bool { return h.Stats().Observations > 0 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.added) != 1 || rec.samples != 1 || rec.obs["gpu01/pipeline"] != 1 {
		t.Fatalf("plugs got history %v latency %d obs %v", rec.added, rec.samples, rec.obs)
	}
}

func TestHubReplaysTheStreamOnRestart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h1, err := Start(context.Background(), cfg, Plugs{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Minute)
	creds := as(t, "gpu01", enrol(t, h1, "gpu01", enroll.Agent))
	for i := range 10 {
		publish(t, h1.NATSURL(), &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: uint64(i), TS: base.Add(time.Duration(i) * 5 * time.Second).UnixNano()}, creds...)
	}
	performance(t, h1, hasHost("gpu01"))
	if err := h1.Close(); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{}
	h2 := startHub(t, cfg, Plugs{History: rec})
	// Start returns once the replay is in: the first update has the host.
	u := performance(t, h2, func(metrics.Update) bool { return true })
	if len(u.Hosts) != 1 || u.Hosts[0].Seq != 9 {
		t.Fatalf("first update after restart: hosts %+v", u.Hosts)
	}
	if n := rec.addedLen(); n != 10 {
		t.Fatalf("history got %d replayed samples, want 10", n)
	}
}

func TestHubWithExternalNATS(t *testing.T) {
	ext, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Open: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Shutdown) // after the hub's Close, which drains through it
	cfg := testConfig(t)
	cfg.NATSURL = ext.ClientURL()
	cfg.DataDir = ""
	cfg.HTTPTokenFile, _ = tokenFile(t)
	h := startHub(t, cfg)
	if h.NATSURL() != ext.ClientURL() {
		t.Fatalf("NATSURL %q, want the external %q", h.NATSURL(), ext.ClientURL())
	}
	publish(t, ext.ClientURL(), &metrics.Sample{Host: "ext1", Boot: "b", Seq: 1, TS: time.Now().UnixNano()})
	performance(t, h, hasHost("ext1"))
}

func TestHubStartFailuresNameTheCause(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"http port in use", func(c *Config) { c.HTTP = addr }, "http listen " + addr},
		{"nats port in use", func(c *Config) { c.NATSListen = addr }, "nats listen " + addr},
		{"external nats down past nats-wait", func(c *Config) { c.NATSURL, c.NATSWait = "nats://"+closedAddr, 300*time.Millisecond }, "nats connect nats://" + closedAddr + ": not reachable within 300ms (nats-wait): connection refused"},
		{"negative nats-wait", func(c *Config) { c.NATSURL, c.NATSWait = "nats://"+closedAddr, -time.Second }, "nats-wait: must not be negative"},
		{"zero interval", func(c *Config) { c.Interval = 0 }, "interval: must be positive"},
		{"an interval the hub would spin on", func(c *Config) { c.Interval = time.Nanosecond }, "interval: 1ns is below the 100ms minimum"},
		{"negative pool size", func(c *Config) { c.PostgresPoolSize = -1 }, "postgres-pool-size: must not be negative"},
		{"data dir is a file", func(c *Config) { c.DataDir = filepath.Join("/proc/self/status") }, "data-dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.edit(&cfg)
			h, err := Start(context.Background(), cfg, Plugs{}, slog.New(slog.DiscardHandler))
			if err == nil {
				_ = h.Close()
				t.Fatal("start-up succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestDashboardURL(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"127.0.0.1:8321": "http://127.0.0.1:8321/system",
		"0.0.0.0:8321":   "http://127.0.0.1:8321/system",
		"[::]:8321":      "http://127.0.0.1:8321/system",
		"[::1]:9":        "http://[::1]:9/system",
	}
	for in, want := range tests {
		if got := dashboardURL(in, false); got != want {
			t.Errorf("dashboardURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHubResumesAfterExternalNATSRestart(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	ext, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: dir, Open: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	url := ext.ClientURL()
	var ext2 *natsd.Server
	t.Cleanup(func() {
		if ext2 != nil {
			ext2.Shutdown()
		}
	})
	cfg := testConfig(t)
	cfg.NATSURL = url
	h := startHub(t, cfg)
	publish(t, url, &metrics.Sample{Host: "r1", Boot: "b", Seq: 1, TS: time.Now().UnixNano()})
	performance(t, h, hasHost("r1"))

	ext.Shutdown()
	ext2, err = natsd.Start(natsd.Config{Listen: strings.TrimPrefix(url, "nats://"), StoreDir: dir, Open: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, url, &metrics.Sample{Host: "r1", Boot: "b", Seq: 2, TS: time.Now().UnixNano()})
	performance(t, h, func(u metrics.Update) bool { return len(u.Hosts) == 1 && u.Hosts[0].Seq == 2 })
}

// A setting read from a file or parsed from a URL stops start-up before
// anything starts: the error is the only thing the operator sees, not
// NATS coming up and going down around it, and the data directory is
// left untouched.
func TestHubBadSettingsFailBeforeAnythingStarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badRules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(badRules, []byte("rules:\n  - name: gpu_power\n    no_data: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"bad rules file", func(c *Config) { c.Rules = badRules }, "rules " + badRules},
		{"missing rules file", func(c *Config) { c.Rules = filepath.Join(dir, "none.yaml") }, "rules: open"},
		{"bad webhook", func(c *Config) { c.Webhooks = []string{"alertmanager:9093"} }, "webhook"},
		{"bad redis url", func(c *Config) { c.RedisURL = "ftp://redis" }, "redis-url"},
		{"bad postgres dsn", func(c *Config) { c.PostgresDSN = "postgres://h:notaport/db" }, "postgres[0]"},
		{"bad prometheus url", func(c *Config) { c.PrometheusURL = "prometheus:9090" }, "prometheus-url"},
		{"bad container url", func(c *Config) {
			c.Containers = []sources.ContainerTarget{{Name: "api", HealthURL: "/health"}}
		}, "containers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			tc.edit(&cfg)
			log, logged := logtest.New(slog.LevelInfo)
			h, err := Start(context.Background(), cfg, Plugs{}, log)
			if err == nil {
				_ = h.Close()
				t.Fatal("start-up succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if s := logged.String(); s != "" {
				t.Errorf("start-up logged before failing:\n%s", s)
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data-dir touched: %v", err)
			}
		})
	}
}

// On a clustered NATS, --stream-replicas applies to every stream and
// bucket the hub keeps, not only the samples: history and alert state
// must survive the loss of a node as the samples do.
func TestHubReplicatesEveryStreamOnACluster(t *testing.T) {
	urls, _ := startCluster(t, 3)
	cfg := testConfig(t)
	cfg.NATSURL = strings.Join(urls, ",")
	cfg.Replicas = 3
	startHub(t, cfg)

	js := natsxtest.Connect(t, cfg.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	n := 0
	for name := range names.Name() {
		n++
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, r)
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	// Samples, alerts, the alert state bucket and the history's streams.
	if n < 4 {
		t.Fatalf("found %d streams", n)
	}
}

// startCluster runs an n-node JetStream cluster in this process and
// returns its client URLs and servers once its meta leader sees every
// node. The ports are picked up front because every node lists all the
// routes, and a restarted node must be where its clients look.
func startCluster(t *testing.T, n int) ([]string, []*natsserver.Server) {
	c := newTestCluster(t, n)
	return c.urls, c.servers
}

// testCluster is a cluster whose nodes can be restarted on their stores.
type testCluster struct {
	n       int
	urls    []string
	servers []*natsserver.Server
	opts    func(i int) *natsserver.Options
}

func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	routes := make([]*url.URL, n)
	ports, clients, dirs := make([]int, n), make([]int, n), make([]string, n)
	for i := range n {
		ports[i], clients[i], dirs[i] = port(), port(), t.TempDir()
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	c := &testCluster{n: n, opts: func(i int) *natsserver.Options {
		return &natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: clients[i], NoSigs: true,
			JetStream: true, StoreDir: dirs[i],
			Cluster: natsserver.ClusterOpts{Name: "sysperf-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		}
	}}
	// Registered before the hubs a test starts, so it runs after they
	// closed, and once: it stops whichever nodes run then.
	t.Cleanup(c.stop)
	c.start(t)
	for _, s := range c.servers {
		c.urls = append(c.urls, s.ClientURL())
	}
	return c
}

// start starts every node and waits for a meta leader with all of them.
func (c *testCluster) start(t *testing.T) {
	t.Helper()
	c.servers = c.servers[:0]
	for i := range c.n {
		s, err := natsserver.NewServer(c.opts(i))
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		c.servers = append(c.servers, s)
	}
	// A clustered node is ready only once it has peers.
	for _, s := range c.servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready", s.Name())
		}
	}
	// The meta leader places an R3 stream only once it has heard from
	// every peer.
	poll.Until(t, fmt.Sprintf("a JetStream meta leader with all %d peers online", c.n), func() bool {
		return slices.ContainsFunc(c.servers, func(s *natsserver.Server) bool { return len(s.JetStreamClusterPeers()) == c.n })
	})
}

// nanSource reports a Redis hit ratio that is not a number, as a buggy
// plug or exporter might.
func nanSource() SourceSpec {
	return SourceSpec{Name: metrics.SectionRedis, Poll: func(context.Context) Reading {
		return Reading{Up: true, Fill: func(u *metrics.Update) map[string]bool {
			nan := math.NaN()
			u.Databases.Redis = metrics.Redis{Status: metrics.StatusHealthy, HitRatio: &nan}
			return nil
		}}
	}}
}

// seenEvaluator keeps what the alert rules were shown.
type seenEvaluator struct {
	mu   sync.Mutex
	seen []metrics.Redis
}

func (e *seenEvaluator) Evaluate(_ time.Time, u *metrics.Update) []metrics.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, u.Databases.Redis)
	return nil
}

// A NaN from a plug is no data to the alert rules as it is to the
// browser: the rules never see the number.
func TestHubAlertsSeeNoNaN(t *testing.T) {
	t.Parallel()
	ev := &seenEvaluator{}
	cfg := testConfig(t)
	h := startHub(t, cfg, Plugs{Sources: []SourceSpec{nanSource()}, Evaluator: ev})
	performance(t, h, func(u metrics.Update) bool { return u.Databases.Redis.Status == metrics.StatusHealthy })
	ev.mu.Lock()
	defer ev.mu.Unlock()
	polled := 0
	for _, r := range ev.seen {
		if r.Status != metrics.StatusHealthy {
			continue // before the first poll
		}
		polled++
		if r.HitRatio != nil {
			t.Fatalf("the rules saw hit_ratio %v", *r.HitRatio)
		}
	}
	if polled == 0 {
		t.Fatal("the rules never saw the source's reading")
	}
}

// restart shuts every node down and starts them again on their stores.
func (c *testCluster) restart(t *testing.T) {
	t.Helper()
	c.stop()
	c.start(t)
}

func (c *testCluster) stop() {
	for _, s := range c.servers {
		s.Shutdown()
		s.WaitForShutdown()
	}
}
