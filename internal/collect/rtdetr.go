package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path"
	"strings"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// RTDETR reads the RT-DETRv2 detector's GET /health into
// Sample.Models["rtdetr"].
//
// A detector that cannot be read is still a model entry: status
// "unreachable" with the reason (connection refused, timeout, bad JSON,
// HTTP code). That is a reading, not a collector failure, so Collect
// returns nil and the hub shows status and reason; it returns an error only
// when it was given no sample to fill.
type RTDETR struct {
	name   string // the key in Sample.Models
	url    string
	client *http.Client
}

// NewRTDETR returns a collector for the detector at baseURL (e.g.
// "http://127.0.0.1:8090"). A nil client gets one with a timeout of its
// own; the agent's context bounds each request as well.
func NewRTDETR(baseURL string, client *http.Client) *RTDETR {
	return &RTDETR{name: metrics.RoleRTDETR, url: joinURL(baseURL, "/health"), client: orDefaultClient(client)}
}

// Name implements Collector.
func (r *RTDETR) Name() string { return r.name }

// rtdetrMapped reports the health fields that land in Model's own fields;
// every other field the detector sends is kept in Model.Extra.
func rtdetrMapped(k string) bool {
	switch k {
	case "status", "device", "model_name", "vram_used_gb":
		return true
	}
	return false
}

// Collect implements Collector.
func (r *RTDETR) Collect(ctx context.Context, s *metrics.Sample) error {
	if s == nil {
		return fmt.Errorf("rtdetr: nil sample")
	}
	ctx, cancel := finishBefore(ctx)
	defer cancel()
	m := r.read(ctx)
	m.Kind = metrics.KindRTDETR
	setModel(s, r.name, m)
	return nil
}

func (r *RTDETR) read(ctx context.Context) metrics.Model {
	code, body, err := httpGet(ctx, r.client, r.url, maxJSONBody)
	if err != nil {
		return metrics.Model{Status: metrics.StatusUnreachable, Reason: reasonOf(err)}
	}
	m, parsed := parseRTDETRHealth(body)
	switch {
	case code == http.StatusOK && parsed:
		return m
	case code == http.StatusOK:
		return metrics.Model{Status: metrics.StatusUnreachable, Reason: "bad JSON"}
	case parsed && m.Status != metrics.StatusHealthy:
		// A health endpoint that answers 503 with its own verdict
		// ("degraded", "loading") is reachable and means what it says.
		if m.Reason == "" {
			m.Reason = httpReason(code)
		}
		return m
	default:
		return metrics.Model{Status: metrics.StatusUnreachable, Reason: httpReason(code)}
	}
}

// parseRTDETRHealth maps the detector's health JSON. ok is false when the
// body is not a JSON object.
func parseRTDETRHealth(body []byte) (m metrics.Model, ok bool) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return metrics.Model{}, false
	}
	status, _ := raw["status"].(string)
	loaded, hasLoaded := raw["model_loaded"].(bool)
	m.Status = normalizeStatus(status)
	switch {
	case status == "" && hasLoaded && !loaded:
		m.Status = metrics.StatusDegraded
	case status == "":
		m.Status = metrics.StatusHealthy
	case m.Status == "":
		m.Status = metrics.StatusUnhealthy
		m.Reason = fmt.Sprintf("status %q", status)
	}
	if hasLoaded && !loaded && m.Status == metrics.StatusHealthy {
		m.Status = metrics.StatusDegraded
	}
	if m.Status == metrics.StatusDegraded && m.Reason == "" && hasLoaded && !loaded {
		m.Reason = "no model loaded"
	}
	if d, ok := raw["device"].(string); ok {
		m.Device = d
	}
	if name, ok := raw["model_name"].(string); ok && name != "" {
		m.Model = modelFileName(name)
	}
	if gb, ok := raw["vram_used_gb"].(float64); ok && gb >= 0 {
		b := uint64(math.Round(gb * (1 << 30)))
		m.MemUsed = &b
	}
	for k, v := range raw {
		if rtdetrMapped(k) {
			continue
		}
		if m.Extra == nil {
			m.Extra = make(map[string]any)
		}
		m.Extra[k] = v
	}
	return m, true
}

// normalizeStatus maps the words model servers use onto the one status
// vocabulary; "" means the word is unknown.
func normalizeStatus(s string) metrics.Status {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "healthy", "ok", "ready", "up":
		return metrics.StatusHealthy
	case "degraded", "warning":
		return metrics.StatusDegraded
	case "loading", "loading model", "starting", "initializing":
		return metrics.StatusLoading
	case "unhealthy", "error", "down", "failed":
		return metrics.StatusUnhealthy
	case "unreachable":
		return metrics.StatusUnreachable
	}
	return ""
}

// setModel puts a model server's reading into s, beside the others'.
func setModel(s *metrics.Sample, role string, m metrics.Model) {
	if s.Models == nil {
		s.Models = make(map[string]metrics.Model)
	}
	s.Models[role] = m
}

// modelFileName is the file name of a model path a server reports, which
// may be a Windows path ("C:\\models\\x.gguf") or a Unix one.
func modelFileName(p string) string {
	return path.Base(strings.ReplaceAll(p, "\\", "/"))
}
