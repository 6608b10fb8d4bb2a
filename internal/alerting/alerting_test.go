package alerting

import (
	"context"
	"encoding/json"
	"github.com/sysperf/sysperf/internal/poll"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/notify"
	"github.com/sysperf/sysperf/pkg/alerts"
	"github.com/sysperf/sysperf/pkg/metrics"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// webhook collects the alerts posted to it.
type webhook struct {
	mu     sync.Mutex
	alerts []notify.Alert
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var batch []notify.Alert
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.alerts = append(w.alerts, batch...)
	w.mu.Unlock()
}

func (w *webhook) waitFor(t *testing.T, pred func(notify.Alert) bool) notify.Alert {
	t.Helper()
	var got notify.Alert
	poll.Until(t, "the alert at the webhook", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, a := range w.alerts {
			if pred(a) {
				got = a
				return true
			}
		}
		return false
	})
	return got
}

func rule() alerts.Rule {
	return alerts.Rule{
		Name: "util", Metric: "gpu_utilization", Target: alerts.KindGPU, Comparison: ">",
		Warning: &alerts.Level{Threshold: 90, For: 10 * time.Second}, Critical: &alerts.Level{Threshold: 98, For: 10 * time.Second},
		Message: "util {{.Value}}%",
	}
}

func gpu(v float64) *metrics.Update {
	idx := 0
	return &metrics.Update{GPUs: []metrics.GPUView{{Host: "h1", Index: &idx, Utilization: &v}}}
}

// running starts a service and returns a stop that waits for Run to end,
// as a hub's Close does.
func running(t *testing.T, js jetstream.JetStream, hook string) (*Service, func()) {
	t.Helper()
	return started(t, js, Config{Rules: []alerts.Rule{rule()}, Webhooks: []string{hook}, GeneratorURL: "http://hub/system"})
}

// started makes a service from cfg on js, runs it, and returns a stop that
// waits for Run to end; the test's cleanup stops it too.
func started(t *testing.T, js jetstream.JetStream, cfg Config) (*Service, func()) {
	t.Helper()
	s, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Persist(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return s, stop
}

func TestLifecycleAcrossRestart(t *testing.T) {
	js := natsxtest.JetStream(t)
	wh := &webhook{}
	srv := httptest.NewServer(wh)
	defer srv.Close()

	s1, stop1 := running(t, js, srv.URL)
	if a := s1.Evaluate(t0, gpu(95)); len(a) != 1 || a[0].State != alerts.StatePending {
		t.Fatalf("active %+v, want one pending", a)
	}
	a := s1.Evaluate(t0.Add(10*time.Second), gpu(95))
	if len(a) != 1 || a[0].State != alerts.StateFiring || a[0].Severity != alerts.SeverityWarning {
		t.Fatalf("active %+v, want one warning firing", a)
	}
	s1.Evaluate(t0.Add(15*time.Second), gpu(99)) // critical starts its for
	got := wh.waitFor(t, func(a notify.Alert) bool { return a.Labels["severity"] == "warning" && a.EndsAt.IsZero() })
	if got.Labels["alertname"] != "util" || got.Labels["host"] != "h1" || got.Labels["target"] != "gpu0" || !got.StartsAt.Equal(t0) {
		t.Fatalf("webhook alert %+v", got)
	}
	stop1()

	// The transitions are in the stream, on their state's subject.
	subjects := map[string]int{}
	cons, err := js.OrderedConsumer(context.Background(), metrics.StreamAlerts, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		subjects[m.Subject()]++
	}
	if subjects["sysperf.v1.alert.pending"] != 1 || subjects["sysperf.v1.alert.firing"] != 1 {
		t.Fatalf("stream holds %v", subjects)
	}

	// A new hub on the same JetStream: firing stays firing, critical's
	// timer keeps its start (t0+15s), the recent list is back.
	s2, _ := running(t, js, srv.URL)
	act := s2.Active()
	if len(act) != 1 || act[0].State != alerts.StateFiring || act[0].Severity != alerts.SeverityWarning || !act[0].Since.Equal(t0) {
		t.Fatalf("restored active %+v", act)
	}
	if r := s2.Recent(); len(r) != 2 || r[0].State != alerts.StateFiring || r[1].State != alerts.StatePending || r[0].At.IsZero() {
		t.Fatalf("restored recent %+v", r)
	}
	if a := s2.Evaluate(t0.Add(24*time.Second), gpu(99)); a[0].Severity != alerts.SeverityWarning {
		t.Fatalf("escalated before critical's for: %+v", a)
	}
	if a := s2.Evaluate(t0.Add(25*time.Second), gpu(99)); a[0].Severity != alerts.SeverityCritical {
		t.Fatalf("not escalated at t0+15s+for: %+v", a)
	}
	// Escalation ends the warning alert for Alertmanager and starts the
	// critical one.
	wh.waitFor(t, func(a notify.Alert) bool { return a.Labels["severity"] == "warning" && !a.EndsAt.IsZero() })
	wh.waitFor(t, func(a notify.Alert) bool { return a.Labels["severity"] == "critical" && a.EndsAt.IsZero() })

	if a := s2.Evaluate(t0.Add(30*time.Second), gpu(10)); len(a) != 0 {
		t.Fatalf("still active %+v", a)
	}
	res := wh.waitFor(t, func(a notify.Alert) bool { return a.Labels["severity"] == "critical" && !a.EndsAt.IsZero() })
	if !res.EndsAt.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("resolved endsAt %v", res.EndsAt)
	}
}

func TestRestartMidPending(t *testing.T) {
	js := natsxtest.JetStream(t)
	s1, stop1 := running(t, js, "http://127.0.0.1:1/unused")
	s1.Evaluate(t0, gpu(95))
	s1.Evaluate(t0.Add(5*time.Second), gpu(95))
	stop1()

	s2, _ := running(t, js, "http://127.0.0.1:1/unused")
	if a := s2.Active(); len(a) != 1 || a[0].State != alerts.StatePending || !a[0].Since.Equal(t0) {
		t.Fatalf("restored %+v, want pending since t0", a)
	}
	if a := s2.Evaluate(t0.Add(10*time.Second), gpu(95)); len(a) != 1 || a[0].State != alerts.StateFiring {
		t.Fatalf("at t0+for: %+v, want firing", a)
	}
}

func TestInMemoryWithoutJetStream(t *testing.T) {
	s, err := New(Config{Rules: []alerts.Rule{rule()}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s.Evaluate(t0, gpu(95))
	s.Evaluate(t0.Add(10*time.Second), gpu(95))
	if r := s.Recent(); len(r) != 2 || r[0].State != alerts.StateFiring {
		t.Fatalf("recent %+v", r)
	}
}

func TestRulesFromFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("rules:\n  - name: gpu_temperature\n    warning: {threshold: 70}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("rules:\n  - name: gpu_power\n    no_data: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := RulesFromFile(good)
	if err != nil || len(rules) != len(alerts.Defaults()) {
		t.Fatalf("good file: %d rules, %v", len(rules), err)
	}
	if _, err := RulesFromFile(bad); err == nil || !strings.Contains(err.Error(), `"gpu_power": no_data`) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := RulesFromFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
	if r, err := RulesFromFile(""); err != nil || len(r) != len(alerts.Defaults()) {
		t.Fatalf("no file: %v", err)
	}
	if _, err := New(Config{Webhooks: []string{"not a url"}}, quiet()); err == nil {
		t.Fatal("bad webhook URL accepted")
	}
}

// TestTransitionLogLevels: at info level the log has firing and resolved,
// not the pending that comes and goes while a figure hovers at a threshold.
func TestTransitionLogLevels(t *testing.T) {
	var buf strings.Builder
	s, err := New(Config{Rules: []alerts.Rule{rule()}}, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []float64{95, 50, 95, 50, 95, 95, 95, 50} {
		s.Evaluate(t0.Add(time.Duration(i)*5*time.Second), gpu(v))
	}
	var got []string
	for _, m := range regexp.MustCompile(`msg="([^"]+)"`).FindAllStringSubmatch(buf.String(), -1) {
		got = append(got, m[1])
	}
	if want := []string{"alert firing", "alert resolved"}; !slices.Equal(got, want) {
		t.Fatalf("info log %q, want only %q", buf.String(), want)
	}
}
