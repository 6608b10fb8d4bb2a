package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/sysperf/sysperf/internal/alerting"
	"github.com/sysperf/sysperf/internal/history"
	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/webui"
)

// prepare builds the plugs the settings ask for and the caller did not
// set, as far as they need nothing running: it reads the rules file and
// checks every URL and DSN, so a bad setting is the first and only thing
// start-up reports. Each component adds its few lines here or, when it
// needs JetStream, in assemble.
func (h *Hub) prepare() error {
	if h.plugs.UI == nil {
		h.plugs.UI = webui.Handler()
	}
	if h.plugs.Latency == nil {
		// Keep the longest window the dashboard offers (60m), or the
		// configured one if longer, plus a margin for the base snapshot.
		h.plugs.Latency = latency.New(latency.Config{Retain: max(60*time.Minute, h.cfg.LatencyWindow) + 5*time.Minute})
	}
	if h.plugs.Evaluator == nil {
		rules, err := alerting.RulesFromFile(h.cfg.Rules)
		if err != nil {
			return err
		}
		// Hubs sharing an external NATS take turns at notifying, told
		// apart by their consumer names (unique per hub); the embedded
		// NATS has one hub.
		lease := ""
		if h.cfg.NATSURL != "" {
			lease = h.cfg.Consumer
		}
		if h.alerts, err = alerting.New(alerting.Config{Rules: rules, Webhooks: h.cfg.Webhooks, GeneratorURL: dashboardURL(h.cfg.HTTP, h.cfg.HTTPTLSCert != ""), Replicas: h.cfg.Replicas, Lease: lease}, h.log); err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		h.plugs.Evaluator = h.alerts
		if h.plugs.Alerts == nil {
			h.plugs.Alerts = h.alerts
		}
	}
	// PostgreSQL, Redis, containers, Prometheus and /metrics.
	return h.assembleSources()
}

// assemble finishes the plugs that keep their state in JetStream; it runs
// once NATS and the stream are up (h.nc, h.js), before ingest and the
// HTTP server start.
func (h *Hub) assemble(ctx context.Context) error {
	if h.plugs.History == nil {
		// Rollups and the hub's own readings come back from JetStream
		// here; the samples are replayed by ingest from ReplayStart.
		p, err := history.Open(ctx, h.js, history.New(), history.PersistConfig{Retention: h.cfg.HistoryRetention, Replicas: h.cfg.Replicas}, h.log)
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
		h.plugs.History = p
		h.bg = append(h.bg, p.Run)
	}
	if h.alerts != nil {
		if err := h.alerts.Persist(ctx, h.js); err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		h.bg = append(h.bg, h.alerts.Run)
	}
	return nil
}

// maxReplay caps how far back the samples are replayed after a long
// outage of the hub, so start-up stays quick; the long windows then miss
// what lies before.
const maxReplay = 6 * time.Hour

// replay is how much of the samples stream ingest replays: the configured
// span, or more when the history's newest sealed minute is older (the hub
// was down longer), so the long windows have no hole. Zero stays zero.
func (h *Hub) replay(configured time.Duration) time.Duration {
	rs, ok := h.plugs.History.(interface{ ReplayStart(time.Time) time.Time })
	if !ok || configured <= 0 {
		return configured
	}
	need := time.Since(rs.ReplayStart(time.Now()))
	return min(max(configured, need), max(configured, maxReplay))
}
