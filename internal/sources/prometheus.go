package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sysperf/sysperf/internal/hub/source"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// PrometheusOptions tunes the Prometheus source; zero values are defaults.
type PrometheusOptions struct {
	// Timeout bounds each request (default 2 s); the poll's deadline bounds
	// them all.
	Timeout time.Duration
	// Recheck is how long an availability answer is trusted (default 1 min).
	Recheck time.Duration
	// RateWindow is the range of rate() in the latency queries (default 5m).
	RateWindow string
	// Stages maps the inference roles to hsi_stage_duration_seconds'
	// stage label; defaults: rtdetr=detect, nemotron=analyze,
	// pipeline=batch, as the backend exports them.
	Stages map[string]string
}

// Prometheus fills, from a site's Prometheus server, what no direct source
// did: GPUs of hosts without an agent (DCGM exporter or the backend's
// hsi_gpu_* series) and the inference figures (histogram_quantile over
// hsi_stage_duration_seconds). It is a fallback: its patch runs after the
// direct sources and only fills nil or empty fields, and when the server
// is down or slow it returns a patch that changes nothing.
type Prometheus struct {
	base   string
	opts   PrometheusOptions
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	up        bool
	reason    string
	checkedAt time.Time
}

// NewPrometheus checks the URL; the server itself is checked on the first
// poll, which the hub runs at start.
func NewPrometheus(rawURL string, opts PrometheusOptions) (*Prometheus, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus-url %q: not an http(s) URL", redact.URL(rawURL))
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Recheck <= 0 {
		opts.Recheck = time.Minute
	}
	if opts.RateWindow == "" {
		opts.RateWindow = "5m"
	}
	if opts.Stages == nil {
		opts.Stages = map[string]string{metrics.RoleRTDETR: "detect", metrics.RoleNemotron: "analyze", metrics.RolePipeline: "batch"}
	}
	for role, stage := range opts.Stages {
		if strings.ContainsAny(stage, `"\`) {
			return nil, fmt.Errorf("prometheus stage for %s: %q has a quote", role, stage)
		}
	}
	return &Prometheus{
		base:   strings.TrimSuffix(rawURL, "/"),
		opts:   opts,
		client: &http.Client{Timeout: opts.Timeout},
		now:    time.Now,
	}, nil
}

// Name is what the source is called in logs and /metrics; it fills
// several sections.
func (p *Prometheus) Name() string { return "prometheus" }

// Fallback tells the hub to apply this source's patch last.
func (p *Prometheus) Fallback() bool { return true }

// Up says whether the server answered its last check, and if not why.
func (p *Prometheus) Up() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up, p.reason
}

// Poll checks availability when the cached answer is older than Recheck,
// then, when up, runs the instant queries in parallel. A server that is
// down, or queries it rejects, put the reason in the update's
// errors["prometheus"] and change nothing else; an answer without failures
// sets no such entry, so the next update after a recovery has none.
func (p *Prometheus) Poll(ctx context.Context) source.Reading {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultPollTimeout)
		defer cancel()
	}
	if !p.available(ctx) {
		return p.down()
	}
	gpus, gerr := p.gpus(ctx)
	inf, ierr := p.inference(ctx)
	err := errors.Join(gerr, ierr)
	if err != nil && isTransport(err) {
		// The server went away between checks: trust nothing from it and
		// stop asking until the next check.
		p.setState(false, p.failure(netReason(err)))
		return p.down()
	}
	failed := p.queryFailures(err)
	return source.Reading{
		Section: p.Name(), Reason: failed, Up: true,
		Fill: func(u *metrics.Update) map[string]bool {
			filled := map[string]bool{}
			if fillGPUs(u, gpus) {
				filled[metrics.SectionGPU] = true
			}
			if took, had := fillInference(u, inf); took {
				filled[metrics.SectionInference] = !had
			}
			return filled
		},
	}
}

// down is the patch of a server that did not answer: its reason, and
// nothing else, since a fallback never blanks what direct sources filled.
func (p *Prometheus) down() source.Reading {
	up, reason := p.Up()
	return source.Reading{Section: p.Name(), Reason: reason, Up: up}
}

// failure names the server, since a wrong --prometheus-url is the likely
// cause of a failure that persists.
func (p *Prometheus) failure(why string) string {
	return "prometheus " + redact.URL(p.base) + ": " + why
}

// queryFailures sums up the queries the server rejected (a proxy in front
// of it, a server too old for a function): the first reason and how many
// more failed, so one bad setting does not fill the dashboard with eight
// near-identical queries. Empty when none failed.
func (p *Prometheus) queryFailures(err error) string {
	if err == nil {
		return ""
	}
	lines := strings.Split(err.Error(), "\n")
	first := p.failure(strings.TrimPrefix(lines[0], "prometheus "))
	if len(lines) == 1 {
		return first
	}
	return fmt.Sprintf("%s (and %d more queries failed)", first, len(lines)-1)
}

func (p *Prometheus) setState(up bool, reason string) {
	p.mu.Lock()
	p.up, p.reason, p.checkedAt = up, reason, p.now()
	p.mu.Unlock()
}

func (p *Prometheus) available(ctx context.Context) bool {
	p.mu.Lock()
	fresh := !p.checkedAt.IsZero() && p.now().Sub(p.checkedAt) < p.opts.Recheck
	up := p.up
	p.mu.Unlock()
	if fresh {
		return up
	}
	err := p.check(ctx)
	if err != nil {
		p.setState(false, err.Error())
		return false
	}
	p.setState(true, "")
	return true
}

// check asks the server's readiness endpoint; a server that predates it
// (or a proxy that hides it) is asked its build info instead.
func (p *Prometheus) check(ctx context.Context) error {
	code, err := p.get(ctx, "/-/ready", nil)
	if err == nil && code == http.StatusOK {
		return nil
	}
	if err != nil {
		return errors.New(p.failure(netReason(err)))
	}
	var bi struct {
		Status string `json:"status"`
	}
	code2, err := p.get(ctx, "/api/v1/status/buildinfo", &bi)
	if err == nil && code2 == http.StatusOK && bi.Status == "success" {
		return nil
	}
	return errors.New(p.failure(fmt.Sprintf("not ready (HTTP %d from /-/ready)", code)))
}

// get fetches base+path and decodes JSON into v when v is non-nil.
func (p *Prometheus) get(ctx context.Context, path string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.endpoint(path), nil)
	if err != nil {
		return 0, redact.Error(err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		// The client's error quotes the URL, query and all.
		return 0, redact.Error(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if v != nil && len(body) > 0 {
		if err := json.Unmarshal(body, v); err != nil {
			return resp.StatusCode, fmt.Errorf("bad JSON from %s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// endpoint is the URL of an API path (with its own query) below the
// configured base, whose query (an access token a proxy wants) is kept:
// http://h/prom?token=t and /api/v1/query?query=up make
// http://h/prom/api/v1/query?query=up&token=t.
func (p *Prometheus) endpoint(path string) string {
	base, err := url.Parse(p.base)
	rel, rerr := url.Parse(path)
	if err != nil || rerr != nil {
		return p.base + path
	}
	u := base.JoinPath(rel.Path)
	if q := rel.RawQuery; q != "" && u.RawQuery != "" {
		u.RawQuery = q + "&" + u.RawQuery
	} else if q != "" {
		u.RawQuery = q
	}
	return u.String()
}

// sampleValue is one series of an instant vector.
type sampleValue struct {
	Labels map[string]string
	Value  float64
}

// transportError marks a failure to reach the server, as opposed to a
// query the server rejected.
type transportError struct{ err error }

func (e transportError) Error() string { return e.err.Error() }
func (e transportError) Unwrap() error { return e.err }

func isTransport(err error) bool {
	var te transportError
	return errors.As(err, &te)
}

// query runs an instant query and returns its vector; NaN and infinite
// values (histogram_quantile over no traffic) are left out.
func (p *Prometheus) query(ctx context.Context, q string) ([]sampleValue, error) {
	var resp struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	code, err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(q), &resp)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
			return nil, transportError{fmt.Errorf("prometheus query %s: %w", q, err)}
		}
		return nil, fmt.Errorf("prometheus query %s: %w", q, err)
	}
	if code != http.StatusOK || resp.Status != "success" {
		return nil, fmt.Errorf("prometheus query %s: HTTP %d %s %s", q, code, resp.ErrorType, resp.Error)
	}
	if resp.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus query %s: result type %q, want vector", q, resp.Data.ResultType)
	}
	out := make([]sampleValue, 0, len(resp.Data.Result))
	for _, r := range resp.Data.Result {
		s, ok := r.Value[1].(string)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		out = append(out, sampleValue{r.Metric, v})
	}
	return out, nil
}
