package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/alerting"
	"github.com/sysperf/sysperf/internal/hub"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/notify"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/server"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// transitionCounter is a webhook that counts each alert it receives by
// alertname, status and startsAt: an alert's firing and its resolution
// each belong there exactly once.
type transitionCounter struct {
	mu     sync.Mutex
	counts map[string]int
	order  []string
}

func (c *transitionCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var batch []notify.Alert
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range batch {
		status := "firing"
		if !a.EndsAt.IsZero() {
			status = "resolved"
		}
		k := a.Labels["alertname"] + " " + status + " " + a.StartsAt.UTC().Format(time.RFC3339Nano)
		c.counts[k]++
		c.order = append(c.order, k)
	}
}

// seen returns the count of the one key of alertname and status, and
// the key; an empty key when there is none, or more than one.
func (c *transitionCounter) seen(alertname, status string) (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var key string
	n := 0
	for k, v := range c.counts {
		if strings.HasPrefix(k, alertname+" "+status+" ") {
			if key != "" {
				return "", -1
			}
			key, n = k, v
		}
	}
	return key, n
}

func (c *transitionCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.order, "\n")
}

// hubProcess is a hub binary running as its own process, so it can be
// SIGKILLed.
type hubProcess struct {
	name, http, log string
	dataDir         string
	cmd             *exec.Cmd
}

func startHubProcess(t *testing.T, bin, name string, args ...string) *hubProcess {
	t.Helper()
	p := &hubProcess{name: name, http: sourcestest.FreeAddr(t), log: filepath.Join(t.TempDir(), name+".log"), dataDir: t.TempDir()}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, append([]string{"--http", p.http, "--nats-consumer", name, "--data-dir", p.dataDir}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start hub %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("hub %s log:\n%s", name, b)
		}
	})
	return p
}

func (p *hubProcess) get(path string, v any) int {
	c := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequest(http.MethodGet, "http://"+p.http+path, nil)
	if err != nil {
		return -1
	}
	// The hub generated its dashboard token in its data directory.
	if toks, err := server.ReadTokens(filepath.Join(p.dataDir, hub.TokenFileName)); err == nil {
		req.Header.Set("Authorization", "Bearer "+toks[0])
	}
	resp, err := c.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) != nil {
		return -2
	}
	return resp.StatusCode
}

// firingIn reports whether the hub's /api/v1/alerts lists the rule firing.
func (p *hubProcess) firingIn(rule string) bool {
	var l alertLists
	if p.get("/api/v1/alerts", &l) != http.StatusOK {
		return false
	}
	_, ok := alertIn(l.Active, rule, "containers", "firing")
	return ok
}

// TestTwoHubsNotifyOnceAcrossAKill runs two hub processes on a real
// three-node NATS cluster (R3 streams and buckets). Both evaluate and
// show the alert; one holds the notifier lease. It is SIGKILLed after the
// alert fired, the alert then resolves, and the other hub sends the
// resolution within 15 s of the kill. Each transition reaches the webhook
// exactly once, the resolution with the firing's startsAt.
func TestTwoHubsNotifyOnceAcrossAKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/hub and runs a NATS cluster")
	}
	const rule = "containers_unhealthy"
	bin := buildHub(t)
	natsURL := strings.Join(natsxtest.Cluster(t, 3), ",")

	var down atomic.Bool
	container := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(container.Close)
	hook := &transitionCounter{counts: map[string]int{}}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)

	cfgFile := filepath.Join(t.TempDir(), "hub.yaml")
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, "containers:\n  - name: frontend\n    health_url: %s/health\n", container.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--config", cfgFile, "--nats-url", natsURL, "--stream-replicas", "3", "--interval", "500ms",
		"--rules", testRules(t, map[string]time.Duration{rule: time.Second}),
		"--webhook", hookSrv.URL, "--docker-host", "none", "--source-timeout", "1s",
	}
	// Started at the same instant, as a service manager does: they create
	// the same streams and buckets at once (TestTwoHubsStartTogether).
	hubs := map[string]*hubProcess{}
	for _, h := range startHubsTogether(t, bin, []string{"hub-a", "hub-b"}, args...) {
		hubs[h.name] = h
	}

	js := natsxtest.Connect(t, natsURL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lease jetstream.KeyValue
	poll.Until(t, "the lease bucket", func() bool {
		var err error
		lease, err = js.KeyValue(ctx, alerting.LeaseBucket)
		return err == nil
	})
	holder := func() string {
		e, err := lease.Get(ctx, "notifier")
		if err != nil {
			return ""
		}
		return string(e.Value())
	}
	poll.Until(t, "a lease holder", func() bool { return hubs[holder()] != nil })

	down.Store(true)
	poll.Until(t, "the firing alert at the webhook", func() bool {
		_, n := hook.seen(rule, "firing")
		return n == 1
	})
	// Both hubs evaluate and serve the alert, whichever notifies.
	for _, h := range hubs {
		poll.Until(t, h.name+" showing the alert firing", func() bool { return h.firingIn(rule) })
	}

	first := hubs[holder()]
	if first == nil {
		t.Fatalf("no lease holder after the alert fired; webhook got:\n%s", hook)
	}
	var other *hubProcess
	for _, h := range hubs {
		if h != first {
			other = h
		}
	}
	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	killed := time.Now()
	_ = first.cmd.Wait()
	down.Store(false)

	poll.UntilWithin(t, 15*time.Second, "the resolution sent by the other hub within 15s of the kill", func() bool {
		_, n := hook.seen(rule, "resolved")
		return n >= 1
	})
	t.Logf("resolution arrived %s after the kill", time.Since(killed).Round(10*time.Millisecond))
	if h := holder(); h != other.name {
		t.Fatalf("lease held by %q, want %s", h, other.name)
	}

	// The survivor's delivery position has passed the resolution in the
	// stream, so nothing it still owes could arrive later.
	st, err := js.Stream(ctx, metrics.StreamAlerts)
	if err != nil {
		t.Fatal(err)
	}
	last, err := st.GetLastMsgForSubject(ctx, metrics.AlertSubject("resolved"))
	if err != nil {
		t.Fatal(err)
	}
	state, err := js.KeyValue(ctx, alerting.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the delivery position at the resolution", func() bool {
		keys, err := state.ListKeys(ctx)
		if err != nil {
			return false
		}
		for k := range keys.Keys() {
			if !strings.HasPrefix(k, "delivered.") {
				continue
			}
			e, err := state.Get(ctx, k)
			if err != nil {
				return false
			}
			pos, _ := strconv.ParseUint(string(e.Value()), 10, 64)
			return pos >= last.Sequence
		}
		return false
	})

	fk, fn := hook.seen(rule, "firing")
	rk, rn := hook.seen(rule, "resolved")
	if fn != 1 || rn != 1 {
		t.Fatalf("firing sent %d times, resolved %d times, want once each; webhook got:\n%s", fn, rn, hook)
	}
	if strings.TrimPrefix(fk, rule+" firing ") != strings.TrimPrefix(rk, rule+" resolved ") {
		t.Fatalf("resolution %q does not carry the firing's startsAt %q", rk, fk)
	}
}
