package collect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"

	"github.com/sysperf/sysperf/internal/collect/promtext"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// ScrapeTarget is one Prometheus-text endpoint and which of its series
// feed which role. A series is a selector: a metric family name with
// optional exact label matchers, e.g. hsi_stage_duration_seconds{stage="detect"}.
// Series matching a selector are summed (per bucket for histograms), as
// sum by (le) would.
type ScrapeTarget struct {
	URL        string            `yaml:"url"`
	Histograms map[string]string `yaml:"histograms"`
	Counters   map[string]string `yaml:"counters"`
}

// Validate reports a target whose URL is missing or whose selectors do not
// parse, naming the role.
func (t ScrapeTarget) Validate() error {
	_, err := t.compile()
	return err
}

// compile parses the target's selectors.
func (t ScrapeTarget) compile() (compiledTarget, error) {
	ct := compiledTarget{url: t.URL, name: redact.URL(t.URL)}
	if t.URL == "" {
		return ct, errors.New("scrape target: url is empty")
	}
	var err error
	if ct.histograms, err = parseSelectors(t.Histograms); err != nil {
		return ct, fmt.Errorf("scrape target %s: histograms.%w", ct.name, err)
	}
	if ct.counters, err = parseSelectors(t.Counters); err != nil {
		return ct, fmt.Errorf("scrape target %s: counters.%w", ct.name, err)
	}
	return ct, nil
}

// parseSelectors parses selectors by role; an error starts with the role.
func parseSelectors(byRole map[string]string) (map[string]selector, error) {
	out := make(map[string]selector, len(byRole))
	for role, s := range byRole {
		sel, err := parseSelector(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", role, err)
		}
		out[role] = sel
	}
	return out, nil
}

// DefaultScrapeTargets are the series the issue names: the detector's own
// /metrics, and, when configured, the backend's /api/metrics. The detector
// comes first so its histogram wins; the backend's detect stage fills the
// rtdetr role only when the detector exports none.
func DefaultScrapeTargets(rtdetrURL, backendMetricsURL string) []ScrapeTarget {
	var out []ScrapeTarget
	if rtdetrURL != "" {
		out = append(out, ScrapeTarget{
			URL:        joinURL(rtdetrURL, "/metrics"),
			Histograms: map[string]string{metrics.RoleRTDETR: "rtdetr_inference_latency_seconds"},
			Counters:   map[string]string{metrics.RoleImages: "rtdetr_inference_requests_total"},
		})
	}
	if backendMetricsURL != "" {
		out = append(out, ScrapeTarget{
			URL: backendMetricsURL,
			Histograms: map[string]string{
				metrics.RoleRTDETR:   `hsi_stage_duration_seconds{stage="detect"}`,
				metrics.RoleNemotron: `hsi_stage_duration_seconds{stage="analyze"}`,
				metrics.RolePipeline: `hsi_stage_duration_seconds{stage="batch"}`,
			},
			Counters: map[string]string{metrics.RoleEvents: "hsi_events_created_total"},
		})
	}
	return out
}

// selector picks series of one family by exact label values.
type selector struct {
	Name   string
	Labels map[string]string
}

// parseSelector reads name or name{label="value",...}.
func parseSelector(s string) (selector, error) {
	s = strings.TrimSpace(s)
	name, rest, hasLabels := strings.Cut(s, "{")
	sel := selector{Name: strings.TrimSpace(name)}
	if !promtext.IsMetricName(sel.Name) {
		return selector{}, fmt.Errorf("selector %q: bad metric name %q", s, sel.Name)
	}
	if !hasLabels {
		return sel, nil
	}
	body, ok := strings.CutSuffix(strings.TrimSpace(rest), "}")
	if !ok {
		return selector{}, fmt.Errorf("selector %q: missing '}'", s)
	}
	sel.Labels = map[string]string{}
	for body = strings.TrimSpace(body); body != ""; {
		k, after, ok := strings.Cut(body, "=")
		k = strings.TrimSpace(k)
		after = strings.TrimSpace(after)
		if !ok || !promtext.IsLabelName(k) || !strings.HasPrefix(after, `"`) {
			return selector{}, fmt.Errorf(`selector %q: want label="value"`, s)
		}
		end := strings.Index(after[1:], `"`)
		if end < 0 {
			return selector{}, fmt.Errorf("selector %q: unterminated label value", s)
		}
		sel.Labels[k] = after[1 : 1+end]
		body = strings.TrimSpace(after[2+end:])
		body = strings.TrimSpace(strings.TrimPrefix(body, ","))
	}
	return sel, nil
}

func (sel selector) matches(s promtext.Series) bool {
	for k, v := range sel.Labels {
		if got, ok := s.Label(k); !ok || got != v {
			return false
		}
	}
	return true
}

// Scrape reads the configured Prometheus-text endpoints into
// Sample.Inference: cumulative histograms and counters by role, which the
// hub turns into windowed figures. Targets are read at once, each bounded
// by the agent's context and the client's timeout. A role several targets
// give is taken from the first target (in configuration order) that had
// it. Collect returns the failed targets' errors joined; what the others
// gave is still in the sample.
type Scrape struct {
	targets []compiledTarget
	client  *http.Client
}

type compiledTarget struct {
	url        string
	name       string // url without its password, for messages
	histograms map[string]selector
	counters   map[string]selector
	err        error // a selector that did not parse
}

// NewScrape returns a collector for targets. A selector that does not
// parse makes its target fail every Collect with the reason; call
// ScrapeTarget.Validate at start-up to refuse it there instead.
func NewScrape(targets []ScrapeTarget, client *http.Client) *Scrape {
	sc := &Scrape{client: orDefaultClient(client)}
	for _, t := range targets {
		ct, err := t.compile()
		ct.err = err
		sc.targets = append(sc.targets, ct)
	}
	return sc
}

// Name implements Collector.
func (sc *Scrape) Name() string { return metrics.CollectorInference }

type scrapeResult struct {
	inf metrics.Inference
	err error
}

// Collect implements Collector.
func (sc *Scrape) Collect(ctx context.Context, s *metrics.Sample) error {
	if s == nil {
		return errors.New("inference: nil sample")
	}
	ctx, cancel := finishBefore(ctx)
	defer cancel()
	res := make([]scrapeResult, len(sc.targets))
	var wg sync.WaitGroup
	for i, t := range sc.targets {
		wg.Go(func() {
			inf, err := sc.scrapeOne(ctx, t)
			res[i] = scrapeResult{inf: inf, err: err}
		})
	}
	wg.Wait()

	var out metrics.Inference
	var errs []error
	for _, r := range res {
		if r.err != nil {
			errs = append(errs, r.err)
		}
		for role, h := range r.inf.Histograms {
			if _, taken := out.Histograms[role]; !taken {
				if out.Histograms == nil {
					out.Histograms = map[string]metrics.Histogram{}
				}
				out.Histograms[role] = h
			}
		}
		for role, v := range r.inf.Counters {
			if _, taken := out.Counters[role]; !taken {
				if out.Counters == nil {
					out.Counters = map[string]float64{}
				}
				out.Counters[role] = v
			}
		}
	}
	if out.Histograms != nil || out.Counters != nil {
		s.Inference = &out
	}
	return errors.Join(errs...)
}

func (sc *Scrape) scrapeOne(ctx context.Context, t compiledTarget) (metrics.Inference, error) {
	if t.err != nil {
		return metrics.Inference{}, t.err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return metrics.Inference{}, fmt.Errorf("scrape %s: %w", t.name, redact.Error(err))
	}
	// Ask for the classic text format: it is the one promtext reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	code, body, err := doLimited(sc.client, req, maxMetricsBody)
	if err != nil {
		return metrics.Inference{}, fmt.Errorf("scrape %s: %s", t.name, reasonOf(err))
	}
	if code != http.StatusOK {
		return metrics.Inference{}, fmt.Errorf("scrape %s: %s", t.name, httpReason(code))
	}
	families, err := promtext.Parse(body)
	if err != nil {
		return metrics.Inference{}, fmt.Errorf("scrape %s: parse: %w", t.name, err)
	}
	return extractInference(families, t.histograms, t.counters)
}

// extractInference picks the configured series out of parsed families. A
// series the endpoint does not export is simply absent from the result.
func extractInference(families map[string]*promtext.Family, hists, counters map[string]selector) (metrics.Inference, error) {
	var inf metrics.Inference
	var errs []error
	for role, sel := range hists {
		mf := families[sel.Name]
		if mf == nil {
			continue
		}
		if mf.Type != promtext.Histogram {
			errs = append(errs, fmt.Errorf("%s: is a %s, not a histogram", sel.Name, mf.Type))
			continue
		}
		h, ok, err := sumHistograms(mf, sel)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sel.Name, err))
			continue
		}
		if ok {
			if inf.Histograms == nil {
				inf.Histograms = map[string]metrics.Histogram{}
			}
			inf.Histograms[role] = h
		}
	}
	for role, sel := range counters {
		v, ok := sumValues(first(families, []string{sel.Name}), sel, false)
		if ok {
			if inf.Counters == nil {
				inf.Counters = map[string]float64{}
			}
			inf.Counters[role] = v
		}
	}
	return inf, errors.Join(errs...)
}

func sumHistograms(mf *promtext.Family, sel selector) (metrics.Histogram, bool, error) {
	var out metrics.Histogram
	found := false
	for _, s := range mf.Series {
		if !sel.matches(s) || s.Hist == nil {
			continue
		}
		h := toHistogram(s.Hist)
		if math.IsInf(h.Sum, 0) || math.IsNaN(h.Sum) || math.IsInf(h.Count, 0) || math.IsNaN(h.Count) {
			return metrics.Histogram{}, false, fmt.Errorf("count %v, sum %v: not finite", h.Count, h.Sum)
		}
		if !found {
			out, found = h, true
			continue
		}
		if len(h.Buckets) != len(out.Buckets) {
			return metrics.Histogram{}, false, errors.New("matching series have different buckets")
		}
		for i := range h.Buckets {
			if h.Buckets[i].UpperBound != out.Buckets[i].UpperBound {
				return metrics.Histogram{}, false, errors.New("matching series have different buckets")
			}
			out.Buckets[i].Count += h.Buckets[i].Count
		}
		out.Count += h.Count
		out.Sum += h.Sum
	}
	return out, found, nil
}

// toHistogram converts a parsed histogram to the wire form: the finite
// buckets, sorted by bound as promtext gives them, and the count, which is
// the +Inf bucket's.
func toHistogram(h *promtext.Hist) metrics.Histogram {
	out := metrics.Histogram{Count: h.Count, Sum: h.Sum}
	for _, b := range h.Buckets {
		if !math.IsInf(b.UpperBound, +1) {
			out.Buckets = append(out.Buckets, metrics.Bucket{UpperBound: b.UpperBound, Count: b.Count})
		}
	}
	return out
}

// sampleValue is the value of a counter, gauge or untyped series. ok is
// false for histograms and for NaN or ±Inf: exporters write NaN for "no
// value yet" (llama.cpp's rates before the first request), and JSON, which
// the hub and --once speak, has no infinity.
func sampleValue(s promtext.Series) (float64, bool) {
	if s.Hist != nil {
		return 0, false
	}
	return s.Value, !math.IsNaN(s.Value) && !math.IsInf(s.Value, 0)
}
