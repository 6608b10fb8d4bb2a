package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/internal/sources"
	"github.com/sysperf/sysperf/webui"
)

// assemble builds the plugs the settings ask for and the caller did not
// set. Each component adds its few lines here; it runs once NATS and the
// stream are up (h.nc, h.js), before ingest and the HTTP server start.
func (h *Hub) assemble(_ context.Context) error {
	if h.cfg.UI == nil {
		h.cfg.UI = webui.Handler()
	}
	if h.cfg.Latency == nil {
		// Keep the longest window the dashboard offers (60m), or the
		// configured one if longer, plus a margin for the base snapshot.
		h.cfg.Latency = latency.New(latency.Config{Retain: max(60*time.Minute, h.cfg.LatencyWindow) + 5*time.Minute})
	}
	if len(h.cfg.Containers) > 0 {
		c, err := sources.NewContainers(sources.ContainersConfig{Targets: h.cfg.Containers})
		if err != nil {
			return fmt.Errorf("containers: %w", err)
		}
		h.cfg.Sources = append(h.cfg.Sources, c)
	}
	return nil
}
