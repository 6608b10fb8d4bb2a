package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/sysperf/sysperf/internal/collect/promtext"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// series is one figure of a server's exposition: the family names that
// carry it, newest release's first (the first present wins), the label
// values that pick it out of its family, and the factor that turns its
// values into the wire's units. With over, the figure is a ratio: this
// series' value over over's, per label set (labels apart).
type series struct {
	names  []string
	labels map[string]string
	scale  float64 // 0 means 1
	over   *series
}

func (s series) factor() float64 {
	if s.scale == 0 {
		return 1
	}
	return s.scale
}

// kindTable is what one kind of server exports, by figure. Histograms
// are in seconds after scaling; KV is a fraction 0–1 before the ×100.
type kindTable struct {
	health     string            // health path; 200 is healthy
	modelLabel string            // the label naming the served model
	hists      map[string]series // keys metrics.Hist*
	counters   map[string]series // keys metrics.Counter*
	// histSums are counters kept as a histogram's _sum (TGI counts
	// generated tokens per request in a histogram).
	histSums map[string]series
	waiting  series
	running  series
	kv       []series // the first that the exposition has wins
	notes    []string
	// kvNote is shown when no KV-cache figure was found.
	kvNote string
}

// kindTables is the one table of series names per server and release,
// from each server's metrics documentation:
//
//   - vLLM (docs.vllm.ai, "Production Metrics"): v0 and early v1 call the KV
//     gauge vllm:gpu_cache_usage_perc, v0.10 and later
//     vllm:kv_cache_usage_perc; the inter-token histogram was
//     vllm:time_per_output_token_seconds before
//     vllm:inter_token_latency_seconds.
//   - SGLang (docs.sglang.io, "Production Metrics", --enable-metrics):
//     sglang:token_usage is the KV pool in use; older releases name the
//     inter-token histogram sglang:time_per_output_token_seconds.
//   - HF TGI (huggingface.co/docs/text-generation-inference,
//     "Metrics"): no time-to-first-token histogram and no KV gauge.
//   - NVIDIA Triton (user_guide/metrics.md): cumulative microsecond
//     counters rather than latency histograms, except
//     nv_inference_first_response_histogram_ms for decoupled models when
//     histogram latencies are on. A TensorRT-LLM model adds the backend's
//     gauges (tensorrtllm_backend, "Triton Metrics"):
//     nv_trt_llm_request_metrics by request_type (active, waiting, ...)
//     and nv_trt_llm_kv_cache_block_metrics by kv_cache_block_type (max,
//     free, used, tokens_per; newer releases also fraction). The KV-cache
//     use is fraction where exported, else used over max blocks, the ratio
//     Triton's own load-report header gives.
var kindTables = map[string]kindTable{
	metrics.KindVLLM: {
		health:     "/health",
		modelLabel: "model_name",
		hists: map[string]series{
			metrics.HistTTFT:  {names: []string{"vllm:time_to_first_token_seconds"}},
			metrics.HistE2E:   {names: []string{"vllm:e2e_request_latency_seconds"}},
			metrics.HistITL:   {names: []string{"vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"}},
			metrics.HistQueue: {names: []string{"vllm:request_queue_time_seconds"}},
		},
		counters: map[string]series{
			metrics.CounterPromptTokens: {names: []string{"vllm:prompt_tokens_total"}},
			metrics.CounterGenTokens:    {names: []string{"vllm:generation_tokens_total"}},
			metrics.CounterRequests:     {names: []string{"vllm:request_success_total"}},
		},
		waiting: series{names: []string{"vllm:num_requests_waiting"}},
		running: series{names: []string{"vllm:num_requests_running"}},
		kv:      []series{{names: []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"}, scale: 100}},
	},
	metrics.KindSGLang: {
		health:     "/health",
		modelLabel: "model_name",
		hists: map[string]series{
			metrics.HistTTFT:  {names: []string{"sglang:time_to_first_token_seconds"}},
			metrics.HistE2E:   {names: []string{"sglang:e2e_request_latency_seconds"}},
			metrics.HistITL:   {names: []string{"sglang:inter_token_latency_seconds", "sglang:time_per_output_token_seconds"}},
			metrics.HistQueue: {names: []string{"sglang:queue_time_seconds"}},
		},
		counters: map[string]series{
			metrics.CounterPromptTokens: {names: []string{"sglang:prompt_tokens_total"}},
			metrics.CounterGenTokens:    {names: []string{"sglang:generation_tokens_total"}},
			metrics.CounterRequests:     {names: []string{"sglang:num_requests_total"}},
		},
		waiting: series{names: []string{"sglang:num_queue_reqs"}},
		running: series{names: []string{"sglang:num_running_reqs"}},
		kv:      []series{{names: []string{"sglang:token_usage"}, scale: 100}},
	},
	metrics.KindTGI: {
		health: "/health",
		hists: map[string]series{
			metrics.HistE2E:   {names: []string{"tgi_request_duration"}},
			metrics.HistITL:   {names: []string{"tgi_request_mean_time_per_token_duration"}},
			metrics.HistQueue: {names: []string{"tgi_request_queue_duration"}},
		},
		counters: map[string]series{
			metrics.CounterRequests: {names: []string{"tgi_request_success"}},
		},
		histSums: map[string]series{
			metrics.CounterGenTokens:    {names: []string{"tgi_request_generated_tokens"}},
			metrics.CounterPromptTokens: {names: []string{"tgi_request_input_length"}},
		},
		waiting: series{names: []string{"tgi_queue_size"}},
		running: series{names: []string{"tgi_batch_current_size"}},
		notes:   []string{"TGI exports no time-to-first-token histogram"},
		kvNote:  "TGI exports no KV-cache gauge",
	},
	metrics.KindTriton: {
		health:     "/v2/health/ready",
		modelLabel: "model",
		hists: map[string]series{
			metrics.HistTTFT: {names: []string{"nv_inference_first_response_histogram_ms"}, scale: 1e-3},
		},
		counters: map[string]series{
			metrics.CounterRequests:   {names: []string{"nv_inference_request_success"}},
			metrics.CounterInferences: {names: []string{"nv_inference_count"}},
			metrics.CounterLatencySum: {names: []string{"nv_inference_request_duration_us"}, scale: 1e-6},
			metrics.CounterQueueSum:   {names: []string{"nv_inference_queue_duration_us"}, scale: 1e-6},
		},
		waiting: series{names: []string{"nv_inference_pending_request_count"}},
		running: labelled("nv_trt_llm_request_metrics", "request_type", "active"),
		kv: []series{
			withScale(trtKV("fraction"), 100),
			withScale(withOver(trtKV("used"), trtKV("max")), 100),
		},
		notes:  []string{"Triton counts request time, it keeps no latency histogram: average latency only, no p95"},
		kvNote: "Triton exports no KV-cache gauge of its own, only a TensorRT-LLM model's block metrics give one",
	},
}

// labelled is the series of family whose label has value.
func labelled(family, label, value string) series {
	return series{names: []string{family}, labels: map[string]string{label: value}}
}

// trtKV is one of TensorRT-LLM's KV-cache block gauges under Triton.
func trtKV(blockType string) series {
	return labelled("nv_trt_llm_kv_cache_block_metrics", "kv_cache_block_type", blockType)
}

func withScale(s series, scale float64) series { s.scale = scale; return s }

func withOver(s, over series) series { s.over = &over; return s }

// promServer reads a server that speaks Prometheus (vLLM, SGLang, TGI,
// Triton) through its kind's table: its health endpoint for the status
// and its /metrics for the figures, side by side. An unreachable server
// is a model entry with status "unreachable", as for the seed's two; a
// health answer without figures keeps the status and says why in
// Extra["metrics_error"].
type promServer struct {
	spec    ModelSpec
	table   kindTable
	metrics string
	client  *http.Client
}

func newPromServer(spec ModelSpec, client *http.Client) *promServer {
	mu := spec.MetricsURL
	if mu == "" {
		mu = joinURL(spec.URL, "/metrics")
	}
	return &promServer{spec: spec, table: kindTables[spec.Kind], metrics: mu, client: orDefaultClient(client)}
}

// Name implements Collector.
func (p *promServer) Name() string { return p.spec.Name }

// Collect implements Collector.
func (p *promServer) Collect(ctx context.Context, s *metrics.Sample) error {
	if s == nil {
		return fmt.Errorf("%s: nil sample", p.spec.Name)
	}
	ctx, cancel := finishBefore(ctx)
	defer cancel()
	var health, prom, info response
	var wg sync.WaitGroup
	wg.Go(func() {
		health.code, health.body, health.err = httpGet(ctx, p.client, joinURL(p.spec.URL, p.table.health), maxJSONBody)
	})
	wg.Go(func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics, nil)
		if err != nil {
			prom.err = err
			return
		}
		req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
		prom.code, prom.body, prom.err = doLimited(p.client, req, maxMetricsBody)
	})
	if p.spec.Kind == metrics.KindTGI {
		// TGI's labels do not name the model; /info does.
		wg.Go(func() {
			info.code, info.body, info.err = httpGet(ctx, p.client, joinURL(p.spec.URL, "/info"), maxJSONBody)
		})
	}
	wg.Wait()
	setModel(s, p.spec.Name, p.build(health, prom, info))
	return nil
}

func (p *promServer) build(health, prom, info response) metrics.Model {
	m := metrics.Model{Kind: p.spec.Kind}
	figuresErr := p.applyFigures(&m, prom)
	switch {
	case health.err != nil:
		return metrics.Model{Kind: p.spec.Kind, Status: metrics.StatusUnreachable, Reason: reasonOf(health.err)}
	case health.code == http.StatusOK:
		m.Status = metrics.StatusHealthy
	case health.code == http.StatusServiceUnavailable:
		m.Status, m.Reason = metrics.StatusLoading, httpReason(health.code)
	case health.code == http.StatusNotFound && figuresErr == nil:
		// A server without the health path that still serves figures is up.
		m.Status = metrics.StatusHealthy
	default:
		m.Status, m.Reason = metrics.StatusUnhealthy, httpReason(health.code)
	}
	if figuresErr != nil && m.Status != metrics.StatusLoading {
		m.Extra = map[string]any{"metrics_error": figuresErr.Error()}
	}
	if info.err == nil && info.code == http.StatusOK {
		var body struct {
			ModelID string `json:"model_id"`
		}
		if json.Unmarshal(info.body, &body) == nil && body.ModelID != "" {
			m.Model = body.ModelID
		}
	}
	m.Notes = append(m.Notes, p.table.notes...)
	if m.KVCache == nil && p.table.kvNote != "" {
		m.Notes = append(m.Notes, p.table.kvNote)
	}
	return m
}

// applyFigures parses the exposition and fills m from the kind's table.
func (p *promServer) applyFigures(m *metrics.Model, prom response) error {
	if prom.err != nil {
		return fmt.Errorf("metrics: %s", reasonOf(prom.err))
	}
	if prom.code != http.StatusOK {
		return fmt.Errorf("metrics: %s", httpReason(prom.code))
	}
	families, err := promtext.Parse(prom.body)
	if err != nil {
		return fmt.Errorf("metrics: parse: %w", err)
	}
	sel := selector{}
	if p.spec.Model != "" && p.table.modelLabel != "" {
		sel.Labels = map[string]string{p.table.modelLabel: p.spec.Model}
	}
	t := p.table
	var errs []string
	for key, sr := range t.hists {
		mf := first(families, sr.names)
		if mf == nil {
			continue
		}
		if mf.Type != promtext.Histogram {
			errs = append(errs, fmt.Sprintf("%s is not a histogram", mf.Name))
			continue
		}
		h, ok, err := sumHistograms(mf, sr.with(sel))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", mf.Name, err))
			continue
		}
		if !ok {
			continue
		}
		if f := sr.factor(); f != 1 {
			h.Sum *= f
			for i := range h.Buckets {
				h.Buckets[i].UpperBound *= f
			}
		}
		if m.Histograms == nil {
			m.Histograms = map[string]metrics.Histogram{}
		}
		m.Histograms[key] = h
	}
	for key, sr := range t.counters {
		if v, ok := sr.value(families, sel, false); ok {
			setCounter(m, key, v)
		}
	}
	for key, sr := range t.histSums {
		mf := first(families, sr.names)
		if mf == nil || mf.Type != promtext.Histogram {
			continue
		}
		if h, ok, err := sumHistograms(mf, sr.with(sel)); err == nil && ok {
			setCounter(m, key, h.Sum*sr.factor())
		}
	}
	if v, ok := t.waiting.value(families, sel, false); ok {
		m.Waiting = &v
	}
	if v, ok := t.running.value(families, sel, false); ok {
		m.Running = &v
	}
	// The fullest engine is what limits admission, so several KV series
	// (data-parallel engines, TP ranks, Triton models) give their largest.
	for _, sr := range t.kv {
		if v, ok := sr.value(families, sel, true); ok {
			m.KVCache = &v
			break
		}
	}
	if t.modelLabel != "" && m.Model == "" {
		m.Model = servedModels(families, t, sel)
	}
	if len(errs) > 0 {
		return fmt.Errorf("metrics: %s", strings.Join(errs, "; "))
	}
	return nil
}

func setCounter(m *metrics.Model, key string, v float64) {
	if m.Counters == nil {
		m.Counters = map[string]float64{}
	}
	m.Counters[key] = v
}

// first returns the first of names the exposition has. A counter is filed
// under its name as written, and exporters differ on the _total suffix,
// so a name is also looked up with it removed or added.
func first(families map[string]*promtext.Family, names []string) *promtext.Family {
	for _, n := range names {
		if mf := families[n]; mf != nil {
			return mf
		}
		other, ok := strings.CutSuffix(n, "_total")
		if !ok {
			other = n + "_total"
		}
		if mf := families[other]; mf != nil {
			return mf
		}
	}
	return nil
}

// with adds the series' own labels to sel.
func (sr series) with(sel selector) selector {
	if len(sr.labels) == 0 {
		return sel
	}
	out := selector{Name: sel.Name, Labels: maps.Clone(sr.labels)}
	maps.Copy(out.Labels, sel.Labels)
	return out
}

// value is the series' figure in the wire's units: its matching values
// summed (or, with takeMax, their largest), or for a ratio the largest
// ratio over the label sets both sides have.
func (sr series) value(families map[string]*promtext.Family, sel selector, takeMax bool) (float64, bool) {
	var v float64
	var ok bool
	if sr.over == nil {
		v, ok = sumValues(first(families, sr.names), sr.with(sel), takeMax)
	} else {
		v, ok = sr.ratio(families, sel)
	}
	return v * sr.factor(), ok
}

func (sr series) ratio(families map[string]*promtext.Family, sel selector) (float64, bool) {
	den := map[string]float64{}
	sr.over.each(families, sel, func(key string, v float64) { den[key] = v })
	out, found := 0.0, false
	sr.each(families, sel, func(key string, v float64) {
		if d, ok := den[key]; ok && d > 0 && (!found || v/d > out) {
			out, found = v/d, true
		}
	})
	return out, found
}

// each calls f with every finite value of the series that sel matches,
// keyed by its labels other than the series' own.
func (sr series) each(families map[string]*promtext.Family, sel selector, f func(key string, v float64)) {
	mf := first(families, sr.names)
	if mf == nil {
		return
	}
	sel = sr.with(sel)
	for _, s := range mf.Series {
		v, ok := sampleValue(s)
		if !ok || !sel.matches(s) {
			continue
		}
		rest := slices.DeleteFunc(slices.Clone(s.Labels), func(l promtext.Label) bool { _, own := sr.labels[l.Name]; return own })
		f(labelSuffix(rest), v)
	}
}

// sumValues adds up (or, with takeMax, takes the largest of) the matching
// series of a counter or gauge.
func sumValues(mf *promtext.Family, sel selector, takeMax bool) (float64, bool) {
	if mf == nil {
		return 0, false
	}
	out, found := 0.0, false
	for _, s := range mf.Series {
		if !sel.matches(s) {
			continue
		}
		v, ok := sampleValue(s)
		if !ok {
			continue
		}
		switch {
		case !found:
			out = v
		case takeMax:
			out = max(out, v)
		default:
			out += v
		}
		found = true
	}
	return out, found
}

// servedModels lists the model label's values over the table's series,
// for the card's "model" line.
func servedModels(families map[string]*promtext.Family, t kindTable, sel selector) string {
	var names []string
	var all []series
	for _, sr := range t.hists {
		all = append(all, sr)
	}
	for _, sr := range t.counters {
		all = append(all, sr)
	}
	all = append(all, t.waiting, t.running)
	all = append(all, t.kv...)
	for _, sr := range all {
		mf := first(families, sr.names)
		if mf == nil {
			continue
		}
		for _, s := range mf.Series {
			if !sr.with(sel).matches(s) {
				continue
			}
			if v, _ := s.Label(t.modelLabel); v != "" && !slices.Contains(names, v) {
				names = append(names, v)
			}
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
