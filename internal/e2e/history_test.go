package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/notify"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// The history tests run the hub as its own process, built from cmd/hub,
// so it can be killed with SIGKILL. The agent runs in the test with the
// real loop, backlog and host collector; its GPU is a stub collector (no
// GPU here) whose utilization is the sample's tick number k and whose
// power is k², so every 5 s slot of the history tells exactly which
// samples it holds: a lost sample leaves a slot empty or short, and a
// sample counted twice makes the slot's mean and mean of squares match no
// set of distinct ticks.

// buildHub builds cmd/hub into the test's temporary directory (the
// build cache makes the second build a link).
func buildHub(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hub")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/sysperf/sysperf/cmd/hub")
	cmd.Env = append(os.Environ(), "CGO_CFLAGS=-Wno-deprecated-declarations")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/hub: %v\n%s", err, out)
	}
	return bin
}

// hubProc is a hub running as a child process.
type hubProc struct {
	cmd  *exec.Cmd
	http string
	log  string
	auth http.Header // signs in: the token startHubProc gave it
}

func (h *hubProc) url(path string) string { return "http://" + h.http + path }

// startHubProc runs the hub binary with args and waits for /healthz.
func startHubProc(t *testing.T, bin, httpAddr string, args ...string) *hubProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "hub.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "http.token")
	token := "e2e-token-" + rand.Text()
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--http", httpAddr, "--interval", "1s", "--log-level", "debug", "--http-token-file", tokenFile}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")} // no SYSPERF_* from the caller
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &hubProc{cmd: cmd, http: httpAddr, log: logPath, auth: http.Header{"Authorization": {"Bearer " + token}}}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("hub log (tail):\n%s", b)
		}
	})
	c := &http.Client{Timeout: 2 * time.Second}
	poll.Until(t, "the hub on "+httpAddr+" healthy (its log follows)", func() bool {
		resp, err := c.Get(h.url("/healthz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return h
}

// kill ends the hub with SIGKILL: no shutdown, no flush.
func (h *hubProc) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
}

func (h *hubProc) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, h.url(path), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	req.Header = h.auth
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// tickGPU is the stub GPU: utilization k, power k², temperature as set.
type tickGPU struct {
	ref  time.Time
	temp atomic.Int64
}

func (g *tickGPU) Name() string { return metrics.CollectorGPU }

func (g *tickGPU) Collect(_ context.Context, s *metrics.Sample) error {
	k := float64(time.Unix(0, s.TS).Sub(g.ref) / time.Second)
	k2 := k * k
	temp := float64(g.temp.Load())
	s.GPUs = []metrics.GPU{{Index: 0, UUID: "GPU-e2e-stub", Name: "stub", Util: &k, Power: &k2, Temp: &temp, Processes: []metrics.Process{}}}
	return nil
}

func startTickAgent(t *testing.T, natsURL, host string, gpu *tickGPU, creds ...string) *Agent {
	return StartAgent(t, natsURL, host, time.Second, func(c *AgentSetup) {
		c.Collectors = []collect.Collector{collect.NewHost([]string{"/"}), gpu}
		if len(creds) > 0 {
			c.NATSCreds = creds[0]
		}
	})
}

// distinctTicks reports whether a slot's mean of k and of k² (and its max)
// are those of a set of distinct ticks of the slot starting at tick a.
func distinctTicks(a int, mean, meanSq, mx float64) (int, bool) {
	for mask := 1; mask < 1<<5; mask++ {
		var n, s1, s2, hi float64
		for i := range 5 {
			if mask&(1<<i) != 0 {
				k := float64(a + i)
				n++
				s1 += k
				s2 += k * k
				hi = k
			}
		}
		if math.Abs(s1/n-mean) < 1e-6 && math.Abs(s2/n-meanSq) < 1e-3 && hi == mx {
			return int(n), true
		}
	}
	return 0, false
}

// checkSlots checks /api/v1/history?range=5m&host= for the slots starting
// in [from, to): each filled, holding distinct ticks only. It returns a
// description of the first problem, or "".
func checkSlots(t *testing.T, h *hubProc, host string, ref, from, to time.Time) (string, int) {
	t.Helper()
	var hist metrics.History
	h.getJSON(t, "/api/v1/history?range=5m&host="+host, &hist)
	if hist.Range != "5m" || hist.ResolutionS != 5 || len(hist.Points) != 60 {
		return fmt.Sprintf("history %s/%ds with %d points", hist.Range, hist.ResolutionS, len(hist.Points)), 0
	}
	seen := map[int64]bool{}
	samples := 0
	for _, p := range hist.Points {
		ts := p.Timestamp
		if seen[ts.Unix()] {
			return "two points at " + ts.String(), 0
		}
		seen[ts.Unix()] = true
		if ts.Before(from) || !ts.Before(to) {
			continue
		}
		if p.GPU == nil || p.GPU.Utilization == nil || p.GPU.PowerWatts == nil {
			return "slot " + ts.Format(time.TimeOnly) + " is empty", 0
		}
		a := int(ts.Sub(ref) / time.Second)
		n, ok := distinctTicks(a, *p.GPU.Utilization, *p.GPU.PowerWatts, p.Max["gpu.utilization"])
		if !ok {
			return fmt.Sprintf("slot %s: mean %v, mean of squares %v, max %v fit no set of distinct ticks %d..%d (a sample counted twice?)",
				ts.Format(time.TimeOnly), *p.GPU.Utilization, *p.GPU.PowerWatts, p.Max["gpu.utilization"], a, a+4), 0
		}
		samples += n
	}
	return "", samples
}

// waitSlots polls until every slot in [from, to) is right, because the
// agent's backlog reaches the hub a moment after it reconnects and the
// last slot may still be filling. Each new reason it is not yet right is
// logged, so a timeout says what was wrong.
func waitSlots(t *testing.T, h *hubProc, host string, ref, from, to time.Time) int {
	t.Helper()
	span := from.Format(time.TimeOnly) + " to " + to.Format(time.TimeOnly)
	var n int
	last := ""
	poll.Until(t, "every slot of "+host+" from "+span+" in the history", func() bool {
		var why string
		why, n = checkSlots(t, h, host, ref, from, to)
		if why != "" && why != last {
			t.Logf("history of %s from %s: %s", host, span, why)
		}
		last = why
		return why == ""
	})
	return n
}

// waitFirstSlot waits until the whole slot starting at from is over and
// in the hub's history, so that a hub killed afterwards has a window of
// its own to bring back.
func waitFirstSlot(t *testing.T, h *hubProc, host string, ref, from time.Time) {
	t.Helper()
	end := from.Add(5 * time.Second)
	poll.Until(t, "the slot "+from.Format(time.TimeOnly)+" of "+host+" over and in the history", func() bool {
		if time.Now().Before(end) {
			return false
		}
		why, _ := checkSlots(t, h, host, ref, from, end)
		return why == ""
	})
}

// waitQueued waits until the agent holds n samples for NATS in its
// backlog; n five more than at the outage's start makes the outage last
// a slot's worth of samples.
func waitQueued(t *testing.T, a *Agent, n int) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("%d samples queued by agent %s", n, a.Host()), func() bool { return a.Pending() >= n })
}

// webhookSink is a local Alertmanager stand-in.
type webhookSink struct {
	mu     sync.Mutex
	alerts []notify.Alert
	bad    []string
}

func (w *webhookSink) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var batch []notify.Alert
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // exactly Alertmanager's postableAlert fields
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" || dec.Decode(&batch) != nil {
		w.bad = append(w.bad, r.Method+" "+r.URL.Path+" "+string(b))
		http.Error(rw, "not a postable alerts body", http.StatusBadRequest)
		return
	}
	w.alerts = append(w.alerts, batch...)
}

func (w *webhookSink) find(pred func(notify.Alert) bool) (notify.Alert, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		if pred(a) {
			return a, true
		}
	}
	return notify.Alert{}, false
}

func (w *webhookSink) waitFor(t *testing.T, what string, pred func(notify.Alert) bool) notify.Alert {
	t.Helper()
	var a notify.Alert
	poll.Until(t, "the webhook to receive "+what, func() bool {
		var ok bool
		a, ok = w.find(pred)
		return ok
	})
	return a
}

// wsUpdateWhere reads /ws/system until an update satisfies cond.
func wsUpdateWhere(t *testing.T, h *hubProc, what string, cond func(metrics.Update) bool) metrics.Update {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+h.http+"/ws/system", &websocket.DialOptions{HTTPHeader: h.auth})
	if err != nil {
		t.Fatalf("dial /ws/system: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("no update with %s: %v", what, err)
		}
		var u metrics.Update
		if json.Unmarshal(b, &u) == nil && u.Type == metrics.TypeUpdate && cond(u) {
			return u
		}
	}
}

func findAlert(u metrics.Update, rule string) (metrics.Alert, bool) {
	for _, a := range u.Alerts {
		if a.Rule == rule {
			return a, true
		}
	}
	return metrics.Alert{}, false
}

// TestHistorySurvivesSIGKILL: the hub is killed mid-run and restarted on
// the same data directory; its windows come back from JetStream and the
// agent's backlog of the time it was down lands in its slots. Then an
// alert with a low threshold fires, reaches the WebSocket and a webhook
// with Alertmanager's body, and resolves.
func TestHistorySurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	bin := buildHub(t)
	sink := &webhookSink{}
	whSrv := httptest.NewServer(sink)
	defer whSrv.Close()
	t.Cleanup(func() {
		if t.Failed() {
			sink.mu.Lock()
			defer sink.mu.Unlock()
			t.Logf("webhook got %+v, refused %v", sink.alerts, sink.bad)
		}
	})
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(`rules:
  - name: e2e_gpu_hot
    metric: gpu_temperature
    target: gpu
    comparison: ">"
    warning: {threshold: 70, for: 2s}
    message: "GPU {{.Target}} hot on {{.Host}}: {{.Value}}°C"
`), 0o600); err != nil {
		t.Fatal(err)
	}

	httpAddr, natsAddr, dataDir := sourcestest.FreeAddr(t), sourcestest.FreeAddr(t), t.TempDir()
	args := []string{"--nats-listen", natsAddr, "--data-dir", dataDir, "--rules", rules, "--webhook", whSrv.URL + "/api/v2/alerts"}
	h := startHubProc(t, bin, httpAddr, args...)

	ref := time.Now().Truncate(5 * time.Second).Add(-5 * time.Minute)
	gpu := &tickGPU{ref: ref}
	gpu.temp.Store(40)
	ag := startTickAgent(t, "nats://"+natsAddr, "e2e-kill", gpu, EnrolFile(t, dataDir, "e2e-kill"))
	began := time.Now()
	from := began.Truncate(5 * time.Second).Add(5 * time.Second) // the first slot the agent fills whole

	waitFirstSlot(t, h, "e2e-kill", ref, from)
	h.kill(t)
	killedAt := time.Now()
	waitQueued(t, ag, ag.Pending()+5) // the agent keeps its samples meanwhile
	h = startHubProc(t, bin, httpAddr, args...)
	restarted := time.Now()
	downFor := restarted.Sub(killedAt)

	// Every 5 s slot from the agent's start to the end of the one the hub
	// came back in, across the kill and the time the hub was down.
	to := restarted.Truncate(5 * time.Second).Add(5 * time.Second)
	n := waitSlots(t, h, "e2e-kill", ref, from, to)
	t.Logf("%d samples in %s of slots, hub down %s", n, to.Sub(from), downFor.Round(time.Millisecond))

	// The alert: over 70 °C for 2 s.
	gpu.temp.Store(72)
	u := wsUpdateWhere(t, h, "e2e_gpu_hot firing", func(u metrics.Update) bool {
		a, ok := findAlert(u, "e2e_gpu_hot")
		return ok && a.State == "firing"
	})
	a, _ := findAlert(u, "e2e_gpu_hot")
	if a.Severity != "warning" || a.Metric != "gpu_temperature" || a.Value != 72 || a.Threshold != 70 ||
		a.Host != "e2e-kill" || a.Target != "gpu0" || a.Message != "GPU gpu0 hot on e2e-kill: 72°C" || a.Since.IsZero() {
		t.Errorf("alert on /ws/system: %+v", a)
	}
	fired := sink.waitFor(t, "the firing alert", func(a notify.Alert) bool {
		return a.Labels["alertname"] == "e2e_gpu_hot" && a.EndsAt.IsZero()
	})
	want := map[string]string{"alertname": "e2e_gpu_hot", "severity": "warning", "host": "e2e-kill", "target": "gpu0", "metric": "gpu_temperature"}
	for k, v := range want {
		if fired.Labels[k] != v {
			t.Errorf("webhook label %s = %q, want %q", k, fired.Labels[k], v)
		}
	}
	if fired.Annotations["summary"] != a.Message || fired.StartsAt.IsZero() || fired.GeneratorURL == "" {
		t.Errorf("webhook alert %+v", fired)
	}

	gpu.temp.Store(40)
	wsUpdateWhere(t, h, "e2e_gpu_hot gone", func(u metrics.Update) bool {
		_, ok := findAlert(u, "e2e_gpu_hot")
		return !ok && len(u.GPUs) > 0 && u.GPUs[0].Temperature != nil && *u.GPUs[0].Temperature == 40
	})
	resolved := sink.waitFor(t, "the resolved alert", func(a notify.Alert) bool {
		return a.Labels["alertname"] == "e2e_gpu_hot" && !a.EndsAt.IsZero()
	})
	if !resolved.EndsAt.After(fired.StartsAt) {
		t.Errorf("resolved endsAt %v not after startsAt %v", resolved.EndsAt, fired.StartsAt)
	}
	var body struct {
		Active []metrics.Alert `json:"active"`
		Recent []metrics.Alert `json:"recent"`
	}
	h.getJSON(t, "/api/v1/alerts", &body)
	states := ""
	for _, r := range body.Recent {
		if r.Rule == "e2e_gpu_hot" {
			states += string(r.State) + " "
		}
	}
	if states != "resolved firing pending " {
		t.Errorf("recent transitions of e2e_gpu_hot, newest first: %q", states)
	}
}

// TestHistorySurvivesNATSOutage: the hub uses an external NATS server,
// which is stopped for a while and restarted; the agent's backlog is
// replayed with the original timestamps and fills the slots of the gap.
func TestHistorySurvivesNATSOutage(t *testing.T) {
	t.Parallel()
	bin := buildHub(t)
	natsAddr := sourcestest.FreeAddr(t)
	_, portStr, _ := net.SplitHostPort(natsAddr)
	port, _ := strconv.Atoi(portStr)
	store := t.TempDir()
	startNATS := func() *server.Server {
		srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: store, NoSigs: true})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server not ready")
		}
		return srv
	}
	ns := startNATS()
	defer func() { ns.Shutdown() }()

	h := startHubProc(t, bin, sourcestest.FreeAddr(t), "--nats-url", "nats://"+natsAddr, "--data-dir", t.TempDir())
	ref := time.Now().Truncate(5 * time.Second).Add(-5 * time.Minute)
	gpu := &tickGPU{ref: ref}
	gpu.temp.Store(40)
	ag := startTickAgent(t, "nats://"+natsAddr, "e2e-outage", gpu)
	from := time.Now().Truncate(5 * time.Second).Add(5 * time.Second)

	waitFirstSlot(t, h, "e2e-outage", ref, from)
	ns.Shutdown()
	ns.WaitForShutdown()
	stopped := time.Now()
	waitQueued(t, ag, ag.Pending()+5) // NATS is away: agent and hub both reconnect later
	ns = startNATS()
	restarted := time.Now()

	to := restarted.Truncate(5 * time.Second).Add(5 * time.Second)
	n := waitSlots(t, h, "e2e-outage", ref, from, to)
	t.Logf("%d samples in %s of slots across a %s NATS outage", n, to.Sub(from), restarted.Sub(stopped).Round(time.Millisecond))
}
