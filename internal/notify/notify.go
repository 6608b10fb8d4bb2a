// Package notify sends alert transitions to webhook receivers in the body
// of Alertmanager's API v2 `POST /api/v2/alerts` (a JSON array of
// postable alerts), so an existing Alertmanager takes them unchanged and
// any other receiver reads a documented format.
//
// Each receiver has its own bounded queue and sender goroutine: a slow or
// dead receiver delays only itself, and Notify never blocks the alert
// evaluation that calls it. A full queue drops its oldest batch and counts
// it; a failed POST (network error, 5xx, 429) is retried with exponential
// back-off.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysperf/sysperf/internal/dropq"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Alert is Alertmanager's postableAlert.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// FromAlert turns a sysperf alert, as of at, into a postable alert. A
// resolved alert ends at at; a firing one carries no end, so Alertmanager
// keeps it until it is resolved or not re-sent within its resolve_timeout.
// Labels identify the alert (alertname, severity, host, target, metric);
// empty ones are left out, as Alertmanager treats them as absent anyway.
func FromAlert(a metrics.Alert, at time.Time, generatorURL string) Alert {
	labels := map[string]string{"alertname": a.Rule, "severity": string(a.Severity), "metric": a.Metric}
	if a.Rule == "" {
		labels["alertname"] = a.Metric
	}
	if a.Host != "" {
		labels["host"] = a.Host
	}
	if a.Target != "" {
		labels["target"] = a.Target
	}
	for k, v := range labels {
		if v == "" {
			delete(labels, k)
		}
	}
	out := Alert{
		Labels: labels,
		Annotations: map[string]string{
			"summary":     a.Message,
			"description": fmt.Sprintf("%s: value %g, threshold %g (%s)", a.Message, a.Value, a.Threshold, a.State),
			"value":       fmt.Sprint(a.Value),
			"threshold":   fmt.Sprint(a.Threshold),
		},
		StartsAt:     a.Since,
		GeneratorURL: generatorURL,
	}
	if out.StartsAt.IsZero() {
		out.StartsAt = at
	}
	if a.State == "resolved" || a.State == "inactive" {
		out.EndsAt = at
	}
	return out
}

// Config configures the receivers.
type Config struct {
	// URLs receive every batch, e.g. "http://alertmanager:9093/api/v2/alerts".
	URLs []string
	// Queue bounds the batches waiting per receiver; default 128.
	Queue int
	// Timeout bounds one POST; default 5s.
	Timeout time.Duration
	// Attempts is how often a batch is tried before it is dropped;
	// default 6.
	Attempts int
	// BackoffMin and BackoffMax bound the doubling wait between attempts;
	// default 500ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Client is the HTTP client; default one with Timeout.
	Client *http.Client
}

// Stats are one receiver's counters.
type Stats struct {
	// URL is the receiver's, its password hidden.
	URL string `json:"url"`
	// Sent batches that a receiver accepted.
	Sent uint64 `json:"sent"`
	// Retries of batches after a failed attempt.
	Retries uint64 `json:"retries"`
	// Failed batches given up after every attempt or refused with a 4xx.
	Failed uint64 `json:"failed"`
	// Dropped batches pushed out of a full queue.
	Dropped uint64 `json:"dropped"`
	// Queued batches now waiting.
	Queued int `json:"queued"`
}

// Notifier fans batches out to the receivers.
type Notifier struct {
	receivers []*receiver
	log       *slog.Logger
}

type receiver struct {
	url    string
	shown  string // url without its password
	cfg    Config
	client *http.Client
	log    *slog.Logger

	queue *dropq.Queue[[]byte]
	wake  chan struct{}

	sent, retries, failed atomic.Uint64
}

// New checks the URLs and returns a notifier; Run starts sending.
func New(cfg Config, log *slog.Logger) (*Notifier, error) {
	if cfg.Queue <= 0 {
		cfg.Queue = 128
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 6
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 500 * time.Millisecond
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(30*time.Second, cfg.BackoffMin)
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	n := &Notifier{log: log.With("component", "notify")}
	for i, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			// url.Parse's error quotes the URL, password and all.
			return nil, fmt.Errorf("webhook #%d: not a URL", i+1)
		}
		shown := redact.URL(raw)
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webhook %q: want an http:// or https:// URL", shown)
		}
		n.receivers = append(n.receivers, &receiver{
			url: raw, shown: shown, cfg: cfg, client: client, log: n.log.With("url", shown),
			queue: dropq.New[[]byte](cfg.Queue), wake: make(chan struct{}, 1),
		})
	}
	return n, nil
}

// Run sends until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range n.receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(ctx)
		}()
	}
	wg.Wait()
}

// Notify queues one batch for every receiver. It never blocks.
func (n *Notifier) Notify(alerts []Alert) {
	if len(alerts) == 0 || len(n.receivers) == 0 {
		return
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		n.log.Error("encode alerts", "err", err)
		return
	}
	for _, r := range n.receivers {
		r.enqueue(body)
	}
}

// Len is the number of receivers.
func (n *Notifier) Len() int { return len(n.receivers) }

// Deliver sends one batch to the i-th receiver now, with the same retries
// and counters as a queued batch, and returns once it is accepted (nil),
// refused or out of attempts (an error), or ctx ended (ctx's error). It is
// for a caller that records what was delivered: a batch cut short by ctx
// was not delivered, one given up on was. An attempt under way when ctx
// ends is finished (within Timeout), so a batch the receiver took is not
// reported undelivered and sent again by whoever resumes.
func (n *Notifier) Deliver(ctx context.Context, i int, alerts []Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		return fmt.Errorf("encode alerts: %w", err)
	}
	return n.receivers[i].deliver(ctx, body, true)
}

// Stats returns each receiver's counters, in configuration order.
func (n *Notifier) Stats() []Stats {
	out := make([]Stats, 0, len(n.receivers))
	for _, r := range n.receivers {
		out = append(out, Stats{
			URL: r.shown, Sent: r.sent.Load(), Retries: r.retries.Load(), Failed: r.failed.Load(),
			Dropped: r.queue.Dropped(), Queued: r.queue.Len(),
		})
	}
	return out
}

func (r *receiver) enqueue(body []byte) {
	r.queue.Push(body)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *receiver) run(ctx context.Context) {
	for {
		body, ok := r.queue.Pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
				continue
			}
		}
		_ = r.deliver(ctx, body, false)
	}
}

// errPermanent marks a refusal that retrying cannot fix.
var errPermanent = errors.New("refused")

// deliver tries one batch until it is accepted (nil), refused or out of
// attempts (the last error), or ctx ends (ctx's error); finish lets an
// attempt under way end on its own.
func (r *receiver) deliver(ctx context.Context, body []byte, finish bool) error {
	wait := r.cfg.BackoffMin
	actx := ctx
	if finish {
		actx = context.WithoutCancel(ctx)
	}
	for attempt := 1; ; attempt++ {
		err := r.post(actx, body)
		if err == nil {
			r.sent.Add(1)
			return nil
		}
		if ctx.Err() != nil {
			r.failed.Add(1)
			return ctx.Err()
		}
		if errors.Is(err, errPermanent) || attempt >= r.cfg.Attempts {
			r.failed.Add(1)
			r.log.Warn("webhook gave up on a batch", "attempts", attempt, "err", err)
			return err
		}
		r.retries.Add(1)
		r.log.Debug("webhook retry", "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			r.failed.Add(1)
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, r.cfg.BackoffMax)
	}
}

func (r *receiver) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, redact.Error(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sysperf-hub")
	resp, err := r.client.Do(req)
	if err != nil {
		// The client's error quotes the URL, query and all.
		return fmt.Errorf("POST: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("POST: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	default:
		return fmt.Errorf("POST: HTTP %d: %s: %w", resp.StatusCode, bytes.TrimSpace(msg), errPermanent)
	}
}
