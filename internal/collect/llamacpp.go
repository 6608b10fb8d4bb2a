package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/sysperf/sysperf/internal/collect/promtext"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// LlamaCpp reads a llama.cpp server (Nemotron) into
// Sample.Models["nemotron"]: GET /health for the status, GET /slots for the
// slots (GET /props when slots are disabled with --no-slots), and
// GET /metrics for the llamacpp:* series when the server runs with
// --metrics.
//
// The four requests run at once, so a slow endpoint costs the others
// nothing; each is bounded by the agent's context and the client's
// timeout. As with RTDETR, an unreachable server is a model entry with
// status "unreachable" and its reason, and Collect returns nil. A part that
// failed while the server is otherwise up (bad /slots JSON, a /metrics
// error) leaves its fields nil and says why in Extra["slots_error"] or
// Extra["metrics_error"].
type LlamaCpp struct {
	name   string // the key in Sample.Models
	base   string
	client *http.Client
}

// NewLlamaCpp returns a collector for the llama.cpp server at baseURL
// (e.g. "http://127.0.0.1:8091"). A nil client gets one with a timeout.
func NewLlamaCpp(baseURL string, client *http.Client) *LlamaCpp {
	return &LlamaCpp{name: metrics.RoleNemotron, base: baseURL, client: orDefaultClient(client)}
}

// Name implements Collector.
func (l *LlamaCpp) Name() string { return l.name }

// llamaSlot is the part of one /slots entry we read. IsProcessing is what
// current servers send; State (0 idle, non-zero busy) is older builds'.
type llamaSlot struct {
	ID           *int  `json:"id"`
	NCtx         *int  `json:"n_ctx"`
	IsProcessing *bool `json:"is_processing"`
	State        *int  `json:"state"`
	// NPast is the tokens in the slot's context, which only older builds
	// send; NextToken carries n_decoded (an object, or a list of one per
	// sequence in some builds).
	NPast     *int            `json:"n_past"`
	NextToken json.RawMessage `json:"next_token"`
}

// decoded is the slot's n_decoded, summed over sequences.
func (s llamaSlot) decoded() *int {
	type next struct {
		NDecoded *int `json:"n_decoded"`
	}
	var list []next
	var one next
	switch {
	case len(s.NextToken) == 0:
		return nil
	case json.Unmarshal(s.NextToken, &one) == nil:
		return one.NDecoded
	case json.Unmarshal(s.NextToken, &list) == nil:
		var sum *int
		for _, n := range list {
			if n.NDecoded != nil {
				v := *n.NDecoded
				if sum != nil {
					v += *sum
				}
				sum = &v
			}
		}
		return sum
	}
	return nil
}

type llamaProps struct {
	TotalSlots *int   `json:"total_slots"`
	ModelPath  string `json:"model_path"`
	Settings   *struct {
		NCtx *int `json:"n_ctx"`
	} `json:"default_generation_settings"`
}

// response is one endpoint's answer, or why there was none.
type response struct {
	code int
	body []byte
	err  error
}

// Collect implements Collector.
func (l *LlamaCpp) Collect(ctx context.Context, s *metrics.Sample) error {
	if s == nil {
		return fmt.Errorf("nemotron: nil sample")
	}
	ctx, cancel := finishBefore(ctx)
	defer cancel()
	endpoints := []struct {
		path  string
		limit int64
	}{
		{"/health", maxJSONBody},
		{"/slots", maxJSONBody},
		{"/props", maxJSONBody},
		{"/metrics", maxMetricsBody},
	}
	res := make([]response, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() {
			code, body, err := httpGet(ctx, l.client, joinURL(l.base, ep.path), ep.limit)
			res[i] = response{code: code, body: body, err: err}
		})
	}
	wg.Wait()
	setModel(s, l.name, buildLlamaModel(res[0], res[1], res[2], res[3]))
	return nil
}

func buildLlamaModel(health, slots, props, prom response) metrics.Model {
	m := metrics.Model{Kind: metrics.KindLlamaCpp}
	extra := map[string]any{}

	slotsOK := applySlots(&m, slots, extra)
	propsOK := applyProps(&m, props, !slotsOK)
	if gauges, err := parseLlamaMetrics(prom); err != nil {
		extra["metrics_error"] = err.Error()
	} else if len(gauges) > 0 {
		m.Gauges = gauges
		// Without /slots the busy count is still known: llama.cpp counts
		// one processing request per busy slot.
		if m.SlotsActive == nil {
			if v, ok := gauges["requests_processing"]; ok && v >= 0 {
				n := int(v)
				m.SlotsActive = &n
			}
		}
	}

	applyLlamaFigures(&m, prom)

	m.Status, m.Reason = llamaStatus(health, slotsOK || propsOK)
	if m.Status == metrics.StatusUnreachable {
		// Nothing else is trustworthy when the server cannot be read.
		return metrics.Model{Status: m.Status, Reason: m.Reason, Kind: metrics.KindLlamaCpp}
	}
	if m.Status == metrics.StatusLoading {
		// While loading, /slots and /props answer 503 too; that is not news.
		delete(extra, "slots_error")
	}
	if len(extra) > 0 {
		m.Extra = extra
	}
	return m
}

// llamaStatus reads /health. 200 is healthy; 503 is the model still
// loading (the server answers {"error":{"code":503,"message":"Loading
// model",...}}). A server too old to have /health counts as healthy when
// its slots or props answered.
func llamaStatus(health response, answered bool) (status metrics.Status, reason string) {
	if health.err != nil {
		return metrics.StatusUnreachable, reasonOf(health.err)
	}
	switch health.code {
	case http.StatusOK:
		var body struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(health.body, &body); err != nil {
			return metrics.StatusUnreachable, "bad JSON"
		}
		if st := normalizeStatus(body.Status); st != "" && st != metrics.StatusHealthy {
			return st, fmt.Sprintf("status %q", body.Status)
		}
		return metrics.StatusHealthy, ""
	case http.StatusServiceUnavailable:
		msg := llamaErrorMessage(health.body)
		if msg == "" {
			msg = httpReason(health.code)
		}
		return metrics.StatusLoading, msg
	case http.StatusNotFound:
		if answered {
			return metrics.StatusHealthy, ""
		}
		return metrics.StatusUnreachable, httpReason(health.code)
	}
	if msg := llamaErrorMessage(health.body); msg != "" {
		return metrics.StatusUnhealthy, httpReason(health.code) + ": " + msg
	}
	return metrics.StatusUnreachable, httpReason(health.code)
}

// llamaErrorMessage returns the message of llama.cpp's error body
// {"error":{"code":...,"message":...,"type":...}}, or of an older build's
// {"status":"loading model"}.
func llamaErrorMessage(body []byte) string {
	var e struct {
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
		Status string `json:"status"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	if e.Error != nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return e.Status
}

// applySlots fills the slot fields from /slots and reports whether it
// could. 501 means slots are disabled (--no-slots): /props takes over
// without complaint.
func applySlots(m *metrics.Model, r response, extra map[string]any) bool {
	if r.err != nil {
		extra["slots_error"] = reasonOf(r.err)
		return false
	}
	switch r.code {
	case http.StatusOK:
	case http.StatusNotImplemented:
		return false
	default:
		extra["slots_error"] = httpReason(r.code)
		return false
	}
	var slots []llamaSlot
	if err := json.Unmarshal(r.body, &slots); err != nil {
		extra["slots_error"] = "bad JSON"
		return false
	}
	total, active, nctx := len(slots), 0, 0
	for i, sl := range slots {
		if sl.busy() {
			active++
		}
		if sl.NCtx != nil && *sl.NCtx > nctx {
			nctx = *sl.NCtx
		}
		one := metrics.Slot{ID: i, Busy: sl.busy(), Used: sl.NPast, Decoded: sl.decoded()}
		if sl.ID != nil {
			one.ID = *sl.ID
		}
		if sl.NCtx != nil {
			one.Ctx = *sl.NCtx
		}
		m.Slots = append(m.Slots, one)
	}
	m.SlotsTotal, m.SlotsActive = &total, &active
	if nctx > 0 {
		m.ContextSize = &nctx
	}
	return true
}

func (s llamaSlot) busy() bool {
	if s.IsProcessing != nil {
		return *s.IsProcessing
	}
	return s.State != nil && *s.State != 0
}

// applyProps takes the model name from /props and, when /slots gave
// nothing, the slot count and context size.
func applyProps(m *metrics.Model, r response, fillSlots bool) bool {
	if r.err != nil || r.code != http.StatusOK {
		return false
	}
	var p llamaProps
	if err := json.Unmarshal(r.body, &p); err != nil {
		return false
	}
	if p.ModelPath != "" {
		m.Model = modelFileName(p.ModelPath)
	}
	if fillSlots {
		if p.TotalSlots != nil {
			n := *p.TotalSlots
			m.SlotsTotal = &n
		}
		if p.Settings != nil && p.Settings.NCtx != nil && *p.Settings.NCtx > 0 {
			n := *p.Settings.NCtx
			m.ContextSize = &n
		}
	}
	return true
}

// parseLlamaMetrics reads the llamacpp:* series of a /metrics answer,
// keyed by name without the prefix; a labelled series is keyed
// name{label="value",...}. 404 and 501 (a server started without
// --metrics) mean there are none, which is not an error.
func parseLlamaMetrics(r response) (map[string]float64, error) {
	if r.err != nil {
		return nil, fmt.Errorf("metrics: %s", reasonOf(r.err))
	}
	switch r.code {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusNotImplemented:
		return nil, nil
	default:
		return nil, fmt.Errorf("metrics: %s", httpReason(r.code))
	}
	families, err := promtext.Parse(r.body)
	if err != nil {
		return nil, fmt.Errorf("metrics: parse: %w", err)
	}
	const prefix = "llamacpp:"
	out := map[string]float64{}
	for name, mf := range families {
		short, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		for _, s := range mf.Series {
			if v, ok := sampleValue(s); ok {
				out[short+labelSuffix(s.Labels)] = v
			}
		}
	}
	return out, nil
}

// labelSuffix writes labels, which promtext sorts by name, as
// {name="value",...}.
func labelSuffix(labels []promtext.Label) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", l.Name, l.Value))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Notes on what llama.cpp cannot report, shown on its card.
const (
	noteLlamaLatency = "llama.cpp exports no latency histogram: no p95 or time to first token"
	noteLlamaKV      = "this llama.cpp build exports no KV-cache gauge"
	noteLlamaMetrics = "/metrics is off: start llama-server with --metrics for tokens/s and queue"
)

// applyLlamaFigures maps the llamacpp:* series onto the figures every
// kind shares: token counters (the hub makes them tokens/s), requests
// processing (running) and deferred (queue), and the KV-cache ratio older
// builds export; and says what the server does not report.
func applyLlamaFigures(m *metrics.Model, prom response) {
	m.Notes = append(m.Notes, noteLlamaLatency)
	if prom.err == nil && (prom.code == http.StatusNotFound || prom.code == http.StatusNotImplemented) {
		m.Notes = append(m.Notes, noteLlamaMetrics)
		return
	}
	g := m.Gauges
	if len(g) == 0 {
		return
	}
	for key, series := range map[string]string{
		metrics.CounterPromptTokens: "prompt_tokens_total",
		metrics.CounterGenTokens:    "tokens_predicted_total",
	} {
		if v, ok := g[series]; ok {
			if m.Counters == nil {
				m.Counters = map[string]float64{}
			}
			m.Counters[key] = v
		}
	}
	if v, ok := g["requests_processing"]; ok {
		m.Running = &v
	}
	if v, ok := g["requests_deferred"]; ok {
		m.Waiting = &v
	}
	if v, ok := g["kv_cache_usage_ratio"]; ok {
		pct := v * 100
		m.KVCache = &pct
	} else {
		m.Notes = append(m.Notes, noteLlamaKV)
	}
}
