package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// recorder is a webhook receiver that answers with the statuses it is
// given, then 200, and keeps the bodies it accepted.
type recorder struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	attempts atomic.Int32
	got      chan struct{}
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.attempts.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request shape", http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	if status == http.StatusOK {
		rc.bodies = append(rc.bodies, b)
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
	if status == http.StatusOK {
		rc.got <- struct{}{}
	}
}

func start(t *testing.T, rc *recorder, cfg Config) *Notifier {
	t.Helper()
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	cfg.URLs = []string{srv.URL + "/api/v2/alerts"}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	}
	n, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

func wait(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("receiver got nothing")
	}
}

// waitSent waits until the notifier has counted n accepted batches: the
// receiver sees a body before the sender sees the answer.
func waitSent(t *testing.T, n *Notifier, want uint64) Stats {
	t.Helper()
	poll.Until(t, fmt.Sprintf("%d batches sent", want), func() bool { return n.Stats()[0].Sent >= want })
	return n.Stats()[0]
}

func firing() metrics.Alert {
	return metrics.Alert{
		Severity: "critical", Metric: "gpu_temperature", Value: 88, Threshold: 85,
		Message: "GPU temperature high: 88°C", Host: "gpu01", Target: "gpu0", State: "firing", Since: t0, Rule: "gpu_temperature",
	}
}

func TestBodyShape(t *testing.T) {
	rc := &recorder{got: make(chan struct{}, 10)}
	n := start(t, rc, Config{})
	resolved := firing()
	resolved.State = "resolved"
	n.Notify([]Alert{
		FromAlert(firing(), t0.Add(time.Minute), "http://hub:8321/system"),
		FromAlert(resolved, t0.Add(2*time.Minute), "http://hub:8321/system"),
	})
	wait(t, rc.got)

	var body []map[string]any
	if err := json.Unmarshal(rc.bodies[0], &body); err != nil {
		t.Fatalf("body is not a JSON array: %v: %s", err, rc.bodies[0])
	}
	if len(body) != 2 {
		t.Fatalf("%d alerts", len(body))
	}
	want := map[string]any{"alertname": "gpu_temperature", "severity": "critical", "host": "gpu01", "target": "gpu0", "metric": "gpu_temperature"}
	for i, a := range body {
		labels, _ := a["labels"].(map[string]any)
		for k, v := range want {
			if labels[k] != v {
				t.Errorf("alert %d label %s = %v, want %v", i, k, labels[k], v)
			}
		}
		ann, _ := a["annotations"].(map[string]any)
		if ann["summary"] != "GPU temperature high: 88°C" || ann["description"] == "" {
			t.Errorf("alert %d annotations %v", i, ann)
		}
		if a["startsAt"] != "2026-01-01T12:00:00Z" || a["generatorURL"] != "http://hub:8321/system" {
			t.Errorf("alert %d startsAt %v generatorURL %v", i, a["startsAt"], a["generatorURL"])
		}
		for k := range a {
			switch k {
			case "labels", "annotations", "startsAt", "endsAt", "generatorURL":
			default:
				t.Errorf("alert %d has %q, not a postableAlert field", i, k)
			}
		}
	}
	if _, ok := body[0]["endsAt"]; ok {
		t.Errorf("a firing alert carries endsAt %v", body[0]["endsAt"])
	}
	if body[1]["endsAt"] != "2026-01-01T12:02:00Z" {
		t.Errorf("resolved alert endsAt %v, want its resolution time", body[1]["endsAt"])
	}
}

func TestRetryAfterServerErrors(t *testing.T) {
	rc := &recorder{statuses: []int{500, 503, 429}, got: make(chan struct{}, 10)}
	n := start(t, rc, Config{})
	n.Notify([]Alert{FromAlert(firing(), t0, "")})
	wait(t, rc.got)
	if a := rc.attempts.Load(); a != 4 {
		t.Errorf("%d attempts, want 4", a)
	}
	st := waitSent(t, n, 1)
	if st.Sent != 1 || st.Retries != 3 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestGivesUp(t *testing.T) {
	rc := &recorder{statuses: []int{500, 500, 400}, got: make(chan struct{}, 10)}
	n := start(t, rc, Config{Attempts: 2})
	n.Notify([]Alert{FromAlert(firing(), t0, "")}) // 500, 500: out of attempts
	n.Notify([]Alert{FromAlert(firing(), t0, "")}) // 400: refused, not retried
	n.Notify([]Alert{FromAlert(firing(), t0, "")}) // accepted
	wait(t, rc.got)
	if a := rc.attempts.Load(); a != 4 {
		t.Errorf("%d attempts, want 4", a)
	}
	if st := waitSent(t, n, 1); st.Sent != 1 || st.Failed != 2 || st.Retries != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestFullQueueDropsOldest holds the receiver so batches pile up: Notify
// must return at once and the queue keep the newest.
func TestFullQueueDropsOldest(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []Alert
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		seen = append(seen, body[0].Labels["target"])
		mu.Unlock()
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}))
	defer srv.Close()
	n, err := New(Config{URLs: []string{srv.URL}, Queue: 2}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()

	batch := func(target string) []Alert {
		a := firing()
		a.Target = target
		return []Alert{FromAlert(a, t0, "")}
	}
	n.Notify(batch("first"))
	<-entered // the sender is busy with "first"
	for _, tg := range []string{"a", "b", "c", "d"} {
		n.Notify(batch(tg))
	}
	st := n.Stats()[0]
	if st.Dropped != 2 || st.Queued != 2 {
		t.Fatalf("stats %+v, want 2 dropped and 2 queued", st)
	}
	close(release)
	poll.Until(t, "3 batches sent", func() bool { return n.Stats()[0].Sent >= 3 })
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[0] != "first" || seen[1] != "c" || seen[2] != "d" {
		t.Fatalf("receiver saw %v, want [first c d]", seen)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "alertmanager:9093", "ftp://x/y", "http://", "ftp://am:S3cret@x/y", "http://am:S3cret@x:port/"} {
		_, err := New(Config{URLs: []string{u}}, quiet())
		if err == nil {
			t.Errorf("URL %q accepted", u)
		} else if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	n, err := New(Config{URLs: []string{"https://am:S3cret@alertmanager:9093/api/v2/alerts"}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if s := n.Stats(); len(s) != 1 || s[0].URL != "https://am:xxxxx@alertmanager:9093/api/v2/alerts" {
		t.Errorf("stats %+v, want the URL without its password", s)
	}
}

// Deliver says what became of its batch: accepted after retries (nil),
// refused (an error), or cut short by its context (the context's error,
// so a caller keeping a delivery position leaves the batch to the next).
func TestDeliverReportsTheOutcome(t *testing.T) {
	rc := &recorder{statuses: []int{500, 200, 400}, got: make(chan struct{}, 10)}
	n := start(t, rc, Config{})
	batch := []Alert{FromAlert(firing(), t0, "")}
	if err := n.Deliver(context.Background(), 0, batch); err != nil {
		t.Fatalf("accepted after a retry: %v", err)
	}
	if err := n.Deliver(context.Background(), 0, batch); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("refused: %v, want the 400", err)
	}
	rc.mu.Lock()
	rc.statuses = []int{503, 503, 503, 503, 503}
	rc.mu.Unlock()
	slow := start(t, rc, Config{BackoffMin: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- slow.Deliver(ctx, 0, batch) }()
	poll.Until(t, "a first failed attempt", func() bool { return slow.Stats()[0].Retries == 1 })
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("cut short: %v, want context.Canceled", err)
	}
	if st := n.Stats()[0]; st.Sent != 1 || st.Failed != 1 || st.Retries != 1 {
		t.Fatalf("stats %+v", st)
	}
}
