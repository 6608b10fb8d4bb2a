package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// funcCollector is a collector made of a function, for tests.
type funcCollector struct {
	name string
	fn   func(ctx context.Context, s *metrics.Sample) error
}

func (f funcCollector) Name() string                                         { return f.name }
func (f funcCollector) Collect(ctx context.Context, s *metrics.Sample) error { return f.fn(ctx, s) }

func model(name string) funcCollector {
	return funcCollector{name, func(_ context.Context, s *metrics.Sample) error {
		s.Models = map[string]metrics.Model{name: {Status: metrics.StatusHealthy}}
		return nil
	}}
}

// hung is a collector stuck in a call that ignores its context, as a
// wedged NVML call is; release ends it when the test is over.
func hung(t *testing.T, name string) funcCollector {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return funcCollector{name, func(_ context.Context, s *metrics.Sample) error {
		<-release
		s.Models = map[string]metrics.Model{name: {Status: metrics.StatusHealthy}}
		return nil
	}}
}

// setup is what a test starts an agent with: settings and plugs.
type setup struct {
	Config
	Plugs
}

func testConfig(interval time.Duration, cs ...collect.Collector) setup {
	cfg := setup{Config: DefaultConfig()}
	cfg.HostID = "test-host"
	cfg.Interval = interval
	cfg.Collectors = cs
	// In memory, even where the tests run under a unit with a state
	// directory; the tests of the disk backlog set their own.
	cfg.BacklogDir = ""
	return cfg
}

// testWriter sends the agent's log to the test's, shown with -v or on
// failure. nats.go runs its connection callbacks (which log) on a
// goroutine of its own that may outlive Run, and t.Log after the test has
// finished is a data race, so lines from then on are dropped.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, nil))
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func newAgent(t *testing.T, cfg setup) *Agent {
	t.Helper()
	a, err := New(cfg.Config, cfg.Plugs, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func TestGatherMergesAndAbandonsSlowCollector(t *testing.T) {
	var annotated []string
	cfg := testConfig(200*time.Millisecond,
		model("rtdetr"),
		hung(t, "slow"),
		funcCollector{"broken", func(context.Context, *metrics.Sample) error { panic("nil map") }},
		funcCollector{"partial", func(_ context.Context, s *metrics.Sample) error {
			s.Models = map[string]metrics.Model{"nemotron": {Status: metrics.StatusLoading}}
			s.Inference = &metrics.Inference{Counters: map[string]float64{"images": 3}}
			return errors.New("GET /metrics: HTTP 500")
		}},
	)
	cfg.Annotate = func(_ context.Context, s *metrics.Sample) error {
		for k := range s.Models {
			annotated = append(annotated, k)
		}
		return errors.New("/proc/7: no answer in time")
	}
	a := newAgent(t, cfg)
	tick := time.Unix(1_767_268_800, 0)
	s := a.gather(context.Background(), tick)

	if s.TS != tick.UnixNano() || s.Host != "test-host" || s.Boot == "" || s.Interval != int64(200*time.Millisecond) {
		t.Errorf("header = %+v", s)
	}
	if _, ok := s.Models["slow"]; ok {
		t.Error("the hung collector's section was waited for")
	}
	if got := s.Errors["slow"]; got != "timed out after 160ms" {
		t.Errorf("errors[slow] = %q", got)
	}
	if s.Models["rtdetr"].Status != metrics.StatusHealthy || s.Models["nemotron"].Status != metrics.StatusLoading {
		t.Errorf("models not merged: %+v", s.Models)
	}
	if s.Inference == nil || s.Inference.Counters["images"] != 3 {
		t.Errorf("partial collector's section lost with its error: %+v", s.Inference)
	}
	if s.Errors["partial"] != "GET /metrics: HTTP 500" {
		t.Errorf("errors[partial] = %q", s.Errors["partial"])
	}
	if !strings.HasPrefix(s.Errors["broken"], "panic: nil map") {
		t.Errorf("errors[broken] = %q", s.Errors["broken"])
	}
	if got := s.Errors[metrics.CollectorProcs]; got != "/proc/7: no answer in time" {
		t.Errorf("errors[procs] = %q", got)
	}
	if len(annotated) != 2 {
		t.Errorf("Annotate saw models %v, want both merged ones", annotated)
	}
}

// A collector stuck in a call is not called again until that call
// returns: each tick reports it timed out, and no goroutine or call piles
// up behind it. Once it returns, the next tick has its section again.
func TestHungCollectorIsNotCalledAgainUntilItReturns(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	stuck := funcCollector{"stuck", func(_ context.Context, s *metrics.Sample) error {
		if calls.Add(1) == 1 {
			<-release
		}
		s.Models = map[string]metrics.Model{"stuck": {Status: metrics.StatusHealthy}}
		return nil
	}}
	a := newAgent(t, testConfig(100*time.Millisecond, model("rtdetr"), stuck))
	for i := range 3 {
		s := a.gather(context.Background(), time.Now())
		if got := s.Errors["stuck"]; got != "timed out after 80ms" {
			t.Errorf("tick %d: errors[stuck] = %q", i, got)
		}
		if s.Models["rtdetr"].Status != metrics.StatusHealthy {
			t.Errorf("tick %d: the other collector's section is missing: %+v", i, s.Models)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the stuck collector was called %d times in 3 ticks, want 1", n)
	}
	close(release)
	poll.Until(t, "the stuck call to return", func() bool { return !a.workers[1].busy.Load() })
	s := a.gather(context.Background(), time.Now())
	if _, ok := s.Models["stuck"]; !ok || s.Errors["stuck"] != "" {
		t.Errorf("after the call returned: models %v, errors %v", s.Models, s.Errors)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"host id with a dot", func(c *Config) { c.HostID = "gpu01.lab" }, `host-id "gpu01.lab"`},
		{"host id with a wildcard", func(c *Config) { c.HostID = "a>" }, `host-id "a>"`},
		{"interval", func(c *Config) { c.Interval = 0 }, "interval 0s"},
		{"backlog", func(c *Config) { c.Backlog = -time.Second }, "backlog -1s"},
		// Bounds that cannot hold the sample being sent: nothing would
		// ever be published.
		{"backlog shorter than the interval", func(c *Config) { c.Backlog = 0 }, "backlog 0s: must be at least the interval (1s)"},
		{"backlog bytes below one sample", func(c *Config) { c.BacklogMaxBytes = 0 }, "backlog-max-bytes 0: must be at least 1048576"},
	} {
		cfg := testConfig(time.Second)
		tc.edit(&cfg.Config)
		_, err := New(cfg.Config, cfg.Plugs, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.want)
		}
	}
	cfg := testConfig(time.Second)
	cfg.HostID = ""
	a := newAgent(t, cfg)
	if !metrics.ValidToken(a.Host()) {
		t.Errorf("host token from the hostname %q is not valid", a.Host())
	}
	b := newAgent(t, cfg)
	if a.boot == b.boot {
		t.Errorf("two starts share boot id %q", a.boot)
	}
}

// TestOnceRealCollectors runs --once's path with the default collectors on
// this machine: a real host section and, without a GPU, the NVML reason.
func TestOnceRealCollectors(t *testing.T) {
	t.Parallel()
	cfg := setup{Config: DefaultConfig()}
	cfg.HostID = "once"
	a := newAgent(t, cfg)
	s, err := a.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.System == nil || s.System.MemTotal == 0 || s.System.CPUPercent == nil || len(s.System.Disks) != 1 {
		t.Fatalf("host section = %+v", s.System)
	}
	if s.System.NetRxBps == nil {
		t.Error("no network rate although Once reads twice")
	}
	if len(s.GPUs) == 0 {
		if got := s.Errors[metrics.CollectorGPU]; !strings.HasPrefix(got, "NVML unavailable: ") {
			t.Errorf("no GPUs and errors.gpu = %q", got)
		}
	}
	if _, err := metrics.Decode(mustEncode(t, s)); err != nil {
		t.Errorf("the sample does not decode: %v", err)
	}
}

func mustEncode(t *testing.T, s *metrics.Sample) []byte {
	t.Helper()
	b, err := metrics.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// natsServer is an embedded nats-server with JetStream that can be stopped
// and started again on the same port and store.
type natsServer struct {
	t    *testing.T
	port int
	dir  string
	srv  *server.Server
}

func startNATS(t *testing.T, port int, dir string) *natsServer {
	t.Helper()
	n := &natsServer{t: t, port: port, dir: dir}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		n.t.Fatalf("nats-server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("nats-server not ready")
	}
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
}

func (n *natsServer) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// stream creates the samples stream as the hub does.
func (n *natsServer) stream() jetstream.Stream {
	n.t.Helper()
	js := natsxtest.Connect(n.t, n.url())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := natsx.EnsureSamplesStream(ctx, js, natsx.SamplesStream{MaxAge: time.Hour})
	if err != nil {
		n.t.Fatal(err)
	}
	return st
}

type stored struct {
	msgID   string
	subject string
	s       *metrics.Sample
}

// readStream returns every message of the stream in stream order.
func readStream(t *testing.T, st jetstream.Stream) []stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		s, err := metrics.Decode(m.Data)
		if err != nil {
			t.Fatalf("message %d does not decode: %v", seq, err)
		}
		out = append(out, stored{msgID: m.Header.Get(jetstream.MsgIDHeader), subject: m.Subject, s: s})
	}
	return out
}

// runAgent runs a in the background until stop is called or the test
// ends.
func runAgent(t *testing.T, a *Agent) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// checkSequence asserts the stored samples are seq 0..n-1 of one boot, in
// order, each once, on aligned and increasing ticks, with the right ids.
func checkSequence(t *testing.T, msgs []stored, a *Agent) {
	t.Helper()
	iv := a.cfg.Interval.Nanoseconds()
	var prevTS int64
	for i, m := range msgs {
		s := m.s
		if s.Seq != uint64(i) {
			t.Fatalf("message %d has seq %d (gap, duplicate or reorder)", i, s.Seq)
		}
		if s.Boot != a.boot || s.Host != "test-host" {
			t.Errorf("message %d from %s/%s", i, s.Host, s.Boot)
		}
		if want := metrics.MsgID(s, a.msgKey); m.msgID != want {
			t.Errorf("message %d Nats-Msg-Id = %q, want %q", i, m.msgID, want)
		}
		if m.subject != "sysperf.v1.sample.test-host" {
			t.Errorf("message %d on %q", i, m.subject)
		}
		if s.TS%iv != 0 {
			t.Errorf("message %d ts %d not aligned to %v", i, s.TS, a.cfg.Interval)
		}
		if s.TS <= prevTS {
			t.Errorf("message %d ts %d not after %d", i, s.TS, prevTS)
		}
		prevTS = s.TS
	}
}

func TestRunPublishes(t *testing.T) {
	t.Parallel()
	n := startNATS(t, -1, t.TempDir())
	st := n.stream()
	cfg := testConfig(200*time.Millisecond, collect.NewHost(nil), hung(t, "slow"))
	cfg.NATSURL = n.url()
	a := newAgent(t, cfg)
	runAgent(t, a)

	var msgs []stored
	poll.Until(t, "5 samples", func() bool { msgs = readStream(t, st); return len(msgs) >= 5 })
	checkSequence(t, msgs, a)
	for i, m := range msgs {
		if m.s.System == nil || m.s.System.MemTotal == 0 {
			t.Errorf("message %d has no host section", i)
		}
		if m.s.Errors["slow"] != "timed out after 160ms" {
			t.Errorf("message %d errors = %v", i, m.s.Errors)
		}
	}
}

// TestBacklogAcrossOutage stops the NATS server under a running agent and
// starts it again on the same port and store: every sample of the outage
// arrives, in order, once, with the timestamp of its own tick.
func TestBacklogAcrossOutage(t *testing.T) {
	dir := t.TempDir()
	n := startNATS(t, -1, dir)
	n.stream()
	cfg := testConfig(200*time.Millisecond, model("m"))
	cfg.NATSURL = n.url()
	a := newAgent(t, cfg)
	runAgent(t, a)

	poll.Until(t, "samples before the outage", func() bool {
		n, _, _ := a.backlog.stats()
		return a.seq.Load() >= 3 && n == 0
	})
	n.stop()
	down := time.Now()
	poll.Until(t, "samples queued during the outage", func() bool { return a.Pending() >= 6 })
	queued := a.backlog.len()
	up := time.Now()
	n.start()
	st := n.stream() // the same stream, recovered from the store

	var msgs []stored
	poll.Until(t, "the backlog and live samples after it", func() bool {
		msgs = readStream(t, st)
		return a.backlog.len() == 0 && len(msgs) > 0 && msgs[len(msgs)-1].s.TS > up.UnixNano()
	})
	checkSequence(t, msgs, a)
	late := 0
	for _, m := range msgs {
		if ts := time.Unix(0, m.s.TS); ts.After(down) && ts.Before(up) {
			late++
		}
	}
	if late < queued-1 {
		t.Errorf("%d samples stamped within the outage, %d were queued", late, queued)
	}
	if _, _, dropped := a.backlog.stats(); dropped != 0 {
		t.Errorf("%d samples dropped within the bounds", dropped)
	}
}

// TestAgentBeforeServer starts the agent while nothing listens, then the
// server, then the stream: samples wait for both.
func TestAgentBeforeServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	cfg := testConfig(200*time.Millisecond, model("m"))
	cfg.NATSURL = "nats://127.0.0.1:" + strconv.Itoa(port)
	a := newAgent(t, cfg)
	runAgent(t, a)
	poll.Until(t, "samples queued without a server", func() bool { return a.backlog.len() >= 3 })

	n := startNATS(t, port, t.TempDir())
	poll.Until(t, "samples queued without a stream", func() bool { return a.seq.Load() >= 8 })
	st := n.stream()
	var msgs []stored
	poll.Until(t, "the backlog published", func() bool {
		msgs = readStream(t, st)
		return a.backlog.len() == 0 && len(msgs) >= 8
	})
	checkSequence(t, msgs, a)
}

// TestBacklogBoundDropsOldest runs an agent against nothing with a backlog
// of three samples' bytes: the oldest go, the newest stay. The samples are
// padded, as the bound may not be below the largest sample.
func TestBacklogBoundDropsOldest(t *testing.T) {
	t.Parallel()
	pad := strings.Repeat("x", metrics.MaxMessage/3)
	big := funcCollector{"m", func(_ context.Context, s *metrics.Sample) error {
		s.Models = map[string]metrics.Model{"m": {Status: metrics.StatusHealthy, Extra: map[string]any{"pad": pad}}}
		return nil
	}}
	cfg := testConfig(200*time.Millisecond, big)
	cfg.NATSURL = "nats://127.0.0.1:1"
	probe := newAgent(t, cfg)
	one := len(mustEncode(t, probe.gather(context.Background(), time.Unix(1_767_268_800, 0))))
	cfg.BacklogMaxBytes = 3*one + one/2
	a := newAgent(t, cfg)
	runAgent(t, a)
	poll.Until(t, "drops", func() bool { _, _, d := a.backlog.stats(); return d >= 3 })
	mem := a.backlog.(*backlog)
	mem.mu.Lock()
	defer mem.mu.Unlock()
	if len(mem.items) != 3 || mem.bytes > cfg.BacklogMaxBytes {
		t.Fatalf("backlog holds %d samples, %d bytes; bound %d", len(mem.items), mem.bytes, cfg.BacklogMaxBytes)
	}
	// The newest stay: the kept ones are consecutive, and everything
	// queued before them was dropped.
	var seqs []uint64
	for _, e := range mem.items {
		id := metrics.PublicMsgID(e.id)
		n, err := strconv.ParseUint(id[strings.LastIndexByte(id, '/')+1:], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, n)
	}
	if seqs[1] != seqs[0]+1 || seqs[2] != seqs[1]+1 || mem.dropped != seqs[0] {
		t.Errorf("kept seqs %v with %d dropped, want the newest three and all before them dropped", seqs, mem.dropped)
	}
}

// TestOutageLoggedOnceNamingServer runs an agent against a NATS URL where
// nothing listens: one warning, naming that URL, however many samples
// queue up.
func TestOutageLoggedOnceNamingServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	l.Close()

	cfg := testConfig(100*time.Millisecond, model("m"))
	cfg.NATSURL = url
	log, out := logtest.New(slog.LevelInfo)
	a, err := New(cfg.Config, cfg.Plugs, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	runAgent(t, a)
	poll.Until(t, "samples queued without a server", func() bool { return a.backlog.len() >= 5 })

	var warnings []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "publish failed") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], url) {
		t.Fatalf("publish warnings %q, want one naming %s", warnings, url)
	}
}

// TestDiskBacklogAcrossRestart stops NATS under an agent with a backlog
// directory, then stops that agent and starts another on the same
// directory, and only then NATS: every sample of both runs arrives, each
// once, the first run's before the second's.
func TestDiskBacklogAcrossRestart(t *testing.T) {
	n := startNATS(t, -1, t.TempDir())
	n.stream()
	cfg := testConfig(200*time.Millisecond, model("m"))
	cfg.NATSURL = n.url()
	cfg.BacklogDir = t.TempDir()
	first := newAgent(t, cfg)
	stopFirst := runAgent(t, first)
	poll.Until(t, "samples before the outage", func() bool {
		n, _, _ := first.backlog.stats()
		return first.seq.Load() >= 3 && n == 0
	})
	n.stop()
	poll.Until(t, "samples queued during the outage", func() bool { return first.backlog.len() >= 5 })
	stopFirst()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	made := first.seq.Load() // every sample of the first run, sent or queued

	second := newAgent(t, cfg)
	stopSecond := runAgent(t, second)
	poll.Until(t, "the second run's samples queued", func() bool { return second.seq.Load() >= 3 })
	up := time.Now()
	n.start()
	st := n.stream()

	var msgs []stored
	poll.Until(t, "both runs' samples", func() bool {
		msgs = readStream(t, st)
		return second.backlog.len() == 0 && len(msgs) > 0 && msgs[len(msgs)-1].s.TS > up.UnixNano()
	})
	stopSecond()
	msgs = readStream(t, st)
	seen := map[string]int{}
	var next [2]uint64 // the seq expected next from each run
	if first.msgKey == second.msgKey {
		t.Fatal("both runs drew the same de-duplication key")
	}
	for i, m := range msgs {
		seen[m.msgID]++
		run := 0
		switch m.s.Boot {
		case first.boot:
			if next[1] > 0 {
				t.Errorf("message %d: seq %d of the first run after the second run's", i, m.s.Seq)
			}
		case second.boot:
			run = 1
		default:
			t.Fatalf("message %d from boot %q", i, m.s.Boot)
		}
		// A queued sample keeps its own run's id across the restart.
		if want := metrics.MsgID(m.s, [2]*Agent{first, second}[run].msgKey); m.msgID != want {
			t.Errorf("message %d Nats-Msg-Id %q, want %q", i, m.msgID, want)
		}
		if m.s.Seq != next[run] {
			t.Errorf("message %d: run %d seq %d, want %d (lost, repeated or reordered)", i, run+1, m.s.Seq, next[run])
		}
		next[run] = m.s.Seq + 1
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s stored %d times", id, c)
		}
	}
	if next[0] != made {
		t.Errorf("the first run made %d samples, %d arrived", made, next[0])
	}
	if _, _, dropped := second.backlog.stats(); dropped != 0 {
		t.Errorf("%d samples dropped within the bounds", dropped)
	}
}

// BenchmarkGather is one tick's collection as the agent runs it on a box
// without a GPU: the host collector, the GPU collector failing fast as it
// does while NVML is unavailable, and a model collector.
func BenchmarkGather(b *testing.B) {
	noGPU := funcCollector{metrics.CollectorGPU, func(context.Context, *metrics.Sample) error {
		return errors.New("NVML unavailable: ERROR_LIBRARY_NOT_FOUND")
	}}
	cfg := testConfig(5*time.Second, collect.NewHost(nil), noGPU, model("rtdetr"))
	a, err := New(cfg.Config, cfg.Plugs, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Close() })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if s := a.gather(ctx, time.Now()); s.System == nil {
			b.Fatalf("no host section: %v", s.Errors)
		}
	}
}
