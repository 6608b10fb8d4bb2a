package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

func fp(v float64) *float64 { return &v }

// site is an update of hosts, each with gpus GPUs and both models, as the
// hub merges it: hosts and GPUs by name, the first host's GPU, host and
// models in the seed's sections, and a firing alert on the last host.
func site(ts time.Time, gpus int, hosts ...string) *metrics.Update {
	u := &metrics.Update{
		Type: metrics.TypeUpdate, Timestamp: ts, Containers: []metrics.Container{}, Alerts: []metrics.Alert{},
		GPUs: []metrics.GPUView{}, Hosts: []metrics.HostStatus{},
		Sources: map[string]string{}, Stale: map[string]bool{}, Errors: map[string]string{},
	}
	for hi, h := range hosts {
		sys := metrics.HostView{CPUPercent: fp(float64(10 + hi)), RAMUsedGB: fp(100), RAMTotalGB: fp(512)}
		models := map[string]metrics.ModelView{
			"rtdetr":   {Status: "healthy", Host: h, Model: "rtdetr-l"},
			"nemotron": {Status: "healthy", Host: h, Model: "nemotron-nano"},
		}
		u.Hosts = append(u.Hosts, metrics.HostStatus{Host: h, Online: true, LastSeen: ts, System: sys, GPUCount: gpus, Models: models})
		for g := range gpus {
			name := "NVIDIA H200"
			u.GPUs = append(u.GPUs, metrics.GPUView{Host: h, Index: &g, UUID: fmt.Sprintf("GPU-%s-%d", h, g), Name: &name,
				Utilization: fp(float64(10 * g)), VRAMUsedGB: fp(40), VRAMTotalGB: fp(141), Temperature: fp(float64(50 + g)),
				PowerWatts: fp(300), PowerLimitWatts: fp(700)})
		}
		if hi == 0 {
			u.GPU, u.Host = u.GPUs[0], sys
			u.AIModels.RTDETR, u.AIModels.Nemotron = models["rtdetr"], models["nemotron"]
			for _, sec := range []string{metrics.SectionGPU, metrics.SectionHost, metrics.SectionRTDETR, metrics.SectionNemotron} {
				u.Sources[sec], u.Stale[sec] = "agent:"+h, false
			}
		}
	}
	u.Alerts = append(u.Alerts, metrics.Alert{Severity: "critical", Metric: "gpu_temperature", Host: hosts[len(hosts)-1], State: "firing"})
	return u
}

func publishSite(t *testing.T, s *Server, u *metrics.Update) []byte {
	t.Helper()
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	s.PublishUpdate(u, b)
	return b
}

func dialQuery(t *testing.T, s *Server, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/ws/system?"+query,
		&websocket.DialOptions{HTTPHeader: signedIn(), CompressionMode: websocket.CompressionNoContextTakeover})
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, resp, err
}

func readRaw(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func readUpdate(t *testing.T, c *websocket.Conn) metrics.Update {
	t.Helper()
	var u metrics.Update
	if b := readRaw(t, c); json.Unmarshal(b, &u) != nil || u.Type != metrics.TypeUpdate {
		t.Fatalf("got %s, want a performance_update", b)
	}
	return u
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// onlyHost checks that u is host's view: its GPUs, its host status alone,
// its models, and no other host's alert.
func onlyHost(t *testing.T, u metrics.Update, host string, gpus int) {
	t.Helper()
	if len(u.GPUs) != gpus {
		t.Fatalf("host view of %s has %d GPUs, want %d", host, len(u.GPUs), gpus)
	}
	for _, g := range u.GPUs {
		if g.Host != host {
			t.Fatalf("host view of %s holds a GPU of %s", host, g.Host)
		}
	}
	if u.GPU.Host != host || len(u.Hosts) != 1 || u.Hosts[0].Host != host || u.AIModels.RTDETR.Host != host ||
		u.AIModels.Nemotron.Host != host || u.Sources[metrics.SectionGPU] != "agent:"+host {
		t.Fatalf("host view of %s: gpu %s hosts %+v models %s/%s sources %v", host, u.GPU.Host, u.Hosts,
			u.AIModels.RTDETR.Host, u.AIModels.Nemotron.Host, u.Sources)
	}
	for _, a := range u.Alerts {
		if a.Host != "" && a.Host != host {
			t.Fatalf("host view of %s holds an alert of %s", host, a.Host)
		}
	}
}

func TestWebSocketViews(t *testing.T) {
	s := start(t, Config{})
	ts := time.Now().UTC().Truncate(time.Second)
	publishSite(t, s, site(ts, 8, "gpu01", "gpu02", "gpu03"))

	c, _, err := dialQuery(t, s, "view=host&host=gpu02")
	if err != nil {
		t.Fatal(err)
	}
	onlyHost(t, readUpdate(t, c), "gpu02", 8)
	poll.Until(t, "the client to register", func() bool { return s.Clients() == 1 })
	publishSite(t, s, site(ts.Add(time.Second), 8, "gpu01", "gpu02", "gpu03"))
	u := readUpdate(t, c)
	onlyHost(t, u, "gpu02", 8)
	if !u.Timestamp.Equal(ts.Add(time.Second)) {
		t.Fatalf("timestamp %v, want the new tick's", u.Timestamp)
	}

	// Switch to the fleet view: its newest message comes at once.
	send(t, c, `{"type":"subscribe","view":"fleet"}`)
	var f metrics.FleetUpdate
	if b := readRaw(t, c); json.Unmarshal(b, &f) != nil || f.Type != metrics.TypeFleet || len(f.Hosts) != 3 ||
		f.Hosts[1].Host != "gpu02" || f.Hosts[1].GPUs != 8 || f.Totals.GPUs != 24 || f.Totals.Critical != 1 || f.Hosts[2].Critical != 1 {
		t.Fatalf("fleet view %s", b)
	}

	// An unknown host is an error naming it and the known ones; the
	// connection stays up, on the view it had.
	send(t, c, `{"type":"subscribe","view":"host","host":"nope"}`)
	m := read(t, c)
	if m["type"] != "error" || !strings.Contains(m["error"].(string), `unknown host "nope" (known hosts: gpu01, gpu02, gpu03)`) {
		t.Fatalf("got %v, want an error naming the host", m)
	}
	publishSite(t, s, site(ts.Add(2*time.Second), 8, "gpu01", "gpu02", "gpu03"))
	if m := read(t, c); m["type"] != metrics.TypeFleet {
		t.Fatalf("after the refused subscribe got %v, want the fleet view", m)
	}

	// Back to a host by the subscribe message.
	send(t, c, `{"type":"subscribe","view":"host","host":"gpu03"}`)
	onlyHost(t, readUpdate(t, c), "gpu03", 8)
}

func TestWebSocketViewQueryRefused(t *testing.T) {
	s := start(t, Config{})
	publishSite(t, s, site(time.Now(), 1, "gpu01"))
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"view=host&host=nope", http.StatusNotFound},
		{"view=bogus", http.StatusBadRequest},
		{"view=host", http.StatusBadRequest},
		{"view=fleet&host=gpu01", http.StatusBadRequest},
	} {
		_, resp, err := dialQuery(t, s, tc.query)
		if err == nil || resp == nil || resp.StatusCode != tc.code {
			t.Fatalf("%s: err %v resp %v, want %d", tc.query, err, resp, tc.code)
		}
	}
}

// TestViewsEncodedOncePerTick: clients of one view get the same bytes,
// each view is encoded once a tick whatever its clients, and views nobody
// watches are not built.
func TestViewsEncodedOncePerTick(t *testing.T) {
	s := start(t, Config{})
	ts := time.Now().UTC()
	publishSite(t, s, site(ts, 8, "gpu01", "gpu02", "gpu03"))
	var hostClients, fleetClients []*websocket.Conn
	for range 3 {
		c, _, err := dialQuery(t, s, "view=host&host=gpu01")
		if err != nil {
			t.Fatal(err)
		}
		readRaw(t, c)
		hostClients = append(hostClients, c)
	}
	for range 2 {
		c, _, err := dialQuery(t, s, "view=fleet")
		if err != nil {
			t.Fatal(err)
		}
		readRaw(t, c)
		fleetClients = append(fleetClients, c)
	}
	all, _, err := dialQuery(t, s, "")
	if err != nil {
		t.Fatal(err)
	}
	readRaw(t, all)
	poll.Until(t, "the clients to register", func() bool { return s.Clients() == 6 })

	before := s.Encodes()
	full := publishSite(t, s, site(ts.Add(time.Second), 8, "gpu01", "gpu02", "gpu03"))
	if got := s.Encodes() - before; got != 2 {
		t.Fatalf("%d views encoded for the tick, want 2 (gpu01's and the fleet's)", got)
	}
	for _, group := range [][]*websocket.Conn{hostClients, fleetClients} {
		first := readRaw(t, group[0])
		for _, c := range group[1:] {
			if b := readRaw(t, c); !bytes.Equal(b, first) {
				t.Fatalf("clients of one view got different bytes:\n%s\n%s", first, b)
			}
		}
	}
	if b := readRaw(t, all); !bytes.Equal(b, full) {
		t.Fatal("the client with no view did not get the full update's bytes")
	}
	// REST reads the views the tick built: no encoding more.
	if code, _, _ := get(t, "http://"+s.Addr()+"/api/v1/hosts"); code != 200 || s.Encodes()-before != 2 {
		t.Fatalf("hosts %d, encodes %d", code, s.Encodes()-before)
	}
}

// TestNoSubscribeOneHostIsTheSeedFeed: one host and no subscribe, the
// feed is the full update, byte for byte as the hub encodes it.
func TestNoSubscribeOneHostIsTheSeedFeed(t *testing.T) {
	s := start(t, Config{})
	want := publishSite(t, s, site(time.Now().UTC(), 2, "gpu01"))
	c := dial(t, s)
	if b := readRaw(t, c); !bytes.Equal(b, want) {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	poll.Until(t, "the client to register", func() bool { return s.Clients() == 1 })
	u := site(time.Now().UTC().Add(time.Second), 2, "gpu01")
	want, _ = json.Marshal(u)
	s.PublishUpdate(u, want)
	if b := readRaw(t, c); !bytes.Equal(b, want) {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}

func TestRESTViews(t *testing.T) {
	s := start(t, Config{})
	if code, _, body := get(t, "http://"+s.Addr()+"/api/v1/hosts"); code != http.StatusServiceUnavailable {
		t.Fatalf("hosts before the first update: %d %s", code, body)
	}
	publishSite(t, s, site(time.Now().UTC(), 8, "gpu01", "gpu02", "gpu03"))

	code, _, body := get(t, "http://"+s.Addr()+"/api/v1/hosts")
	var f metrics.FleetUpdate
	if code != 200 || json.Unmarshal([]byte(body), &f) != nil || len(f.Hosts) != 3 || f.Totals.Hosts != 3 || f.Totals.Online != 3 {
		t.Fatalf("hosts: %d %s", code, body)
	}
	code, _, body = get(t, "http://"+s.Addr()+"/api/v1/performance?host=gpu03")
	var u metrics.Update
	if code != 200 || json.Unmarshal([]byte(body), &u) != nil {
		t.Fatalf("performance?host=gpu03: %d %s", code, body)
	}
	onlyHost(t, u, "gpu03", 8)
	code, _, body = get(t, "http://"+s.Addr()+"/api/v1/performance?host=nope")
	if code != http.StatusNotFound || !strings.Contains(body, `unknown host \"nope\" (known hosts: gpu01, gpu02, gpu03)`) {
		t.Fatalf("performance?host=nope: %d %s", code, body)
	}
}

// TestViewHistory: a host view's history is that host's, at the range
// asked for; the fleet view has none yet, and says so when asked.
func TestViewHistory(t *testing.T) {
	w := &windows{}
	s := start(t, Config{History: w})
	publishSite(t, s, site(time.Now().UTC(), 2, "gpu01", "gpu02"))
	c, resp, err := dialQuery(t, s, "view=host&host=gpu02&range=15m")
	if err != nil {
		t.Fatal(err)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") || !strings.Contains(ext, "server_no_context_takeover") {
		t.Fatalf("extensions %q, want permessage-deflate without context takeover", ext)
	}
	if m := read(t, c); m["type"] != metrics.TypeHistory || m["range"] != "15m" {
		t.Fatalf("first message %v, want the 15m history", m)
	}
	onlyHost(t, readUpdate(t, c), "gpu02", 2)
	send(t, c, `{"type":"subscribe","host":"gpu01","range":"60m"}`)
	if m := read(t, c); m["type"] != metrics.TypeHistory || m["range"] != "60m" {
		t.Fatalf("got %v, want the 60m history", m)
	}
	onlyHost(t, readUpdate(t, c), "gpu01", 2)
	send(t, c, `{"type":"subscribe","range":"5m"}`)
	if m := read(t, c); m["type"] != metrics.TypeHistory || m["range"] != "5m" {
		t.Fatalf("got %v, want the 5m history", m)
	}
	w.mu.Lock()
	calls := strings.Join(w.calls, " ")
	w.mu.Unlock()
	if calls != "15m|gpu02 60m|gpu01 5m|gpu01" {
		t.Fatalf("history windows asked: %s", calls)
	}

	send(t, c, `{"type":"subscribe","view":"fleet","range":"15m"}`)
	if m := read(t, c); m["type"] != metrics.TypeFleet {
		t.Fatalf("got %v, want the fleet view and no history", m)
	}
	send(t, c, `{"type":"subscribe","range":"15m"}`)
	if m := read(t, c); m["type"] != "error" || !strings.Contains(m["error"].(string), "fleet view has no history") {
		t.Fatalf("got %v, want an error", m)
	}
}

// An update published without its JSON (the hub leaves a fleet's to be
// encoded when asked for) reaches the default feed and
// GET /api/v1/performance as the update's JSON, encoded once.
func TestWholeUpdateEncodedOnDemand(t *testing.T) {
	s := start(t, Config{})
	u := site(time.Now().UTC(), 2, "gpu01", "gpu02")
	want, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	s.PublishUpdate(u, nil)
	c := dial(t, s)
	if b := readRaw(t, c); !bytes.Equal(b, want) {
		t.Fatalf("feed got %s\nwant %s", b, want)
	}
	if code, _, body := get(t, "http://"+s.Addr()+"/api/v1/performance"); code != http.StatusOK || body != string(want) {
		t.Fatalf("performance: %d %s\nwant %s", code, body, want)
	}
}

// fleetWindows is a history reader that has the fleet view's history too.
type fleetWindows struct{ windows }

func (w *fleetWindows) FleetWindow(now time.Time, rng string) (metrics.History, error) {
	return w.Window(now, rng, "<fleet>")
}

// TestFleetHistory: a reader with FleetWindow gives the fleet view its
// history on connect and on a range switch, before the fleet view.
func TestFleetHistory(t *testing.T) {
	w := &fleetWindows{}
	s := start(t, Config{History: w})
	publishSite(t, s, site(time.Now().UTC(), 2, "gpu01", "gpu02"))
	c, _, err := dialQuery(t, s, "view=fleet&range=15m")
	if err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m["type"] != metrics.TypeHistory || m["range"] != "15m" {
		t.Fatalf("first message %v, want the fleet's 15m history", m)
	}
	if m := read(t, c); m["type"] != metrics.TypeFleet {
		t.Fatalf("got %v, want the fleet view", m)
	}
	send(t, c, `{"type":"subscribe","range":"60m"}`)
	if m := read(t, c); m["type"] != metrics.TypeHistory || m["range"] != "60m" {
		t.Fatalf("got %v, want the fleet's 60m history", m)
	}
	send(t, c, `{"type":"subscribe","range":"9y"}`)
	if m := read(t, c); m["type"] != "error" {
		t.Fatalf("got %v, want an error for a bad range", m)
	}
	send(t, c, `{"type":"subscribe","host":"gpu01"}`)
	if m := read(t, c); m["type"] != metrics.TypeHistory {
		t.Fatalf("got %v, want gpu01's history", m)
	}
	onlyHost(t, readUpdate(t, c), "gpu01", 2)
	w.mu.Lock()
	calls := strings.Join(w.calls, " ")
	w.mu.Unlock()
	if calls != "15m|<fleet> 60m|<fleet> 9y|<fleet> 5m|gpu01" {
		t.Fatalf("history windows asked: %s", calls)
	}
}

// lockedBuffer is a log sink the server's goroutines may write at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFanOutLogged: at debug level, the next tick logs how many clients
// the last one was queued to and written to, and when, from the update's
// own timestamp (the load test's split of the age).
func TestFanOutLogged(t *testing.T) {
	var out lockedBuffer
	s := start(t, Config{Log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ts := time.Now().UTC().Add(-time.Second)
	publishSite(t, s, site(ts, 2, "gpu01", "gpu02"))
	a, _, err := dialQuery(t, s, "view=host&host=gpu01")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := dialQuery(t, s, "view=fleet")
	if err != nil {
		t.Fatal(err)
	}
	readUpdate(t, a)
	readRaw(t, b)
	publishSite(t, s, site(ts, 2, "gpu01", "gpu02"))
	readUpdate(t, a)
	readRaw(t, b)
	poll.Until(t, "both writes of the tick", func() bool { return s.cur.Load().written.Load() == 2 })
	publishSite(t, s, site(ts.Add(5*time.Second), 2, "gpu01", "gpu02"))
	line := ""
	for l := range strings.Lines(out.String()) {
		if strings.Contains(l, "websocket fan-out") {
			line = l
		}
	}
	if !strings.Contains(line, "clients=2 written=2") || !strings.Contains(line, "last_written_after=1.") {
		t.Fatalf("fan-out log line %q, want 2 clients written about 1 s after the update's timestamp", line)
	}
}
