package hub

import (
	"context"

	"github.com/sysperf/sysperf/webui"
)

// assemble builds the plugs the settings ask for and the caller did not
// set. Each component adds its few lines here; it runs once NATS and the
// stream are up (h.nc, h.js), before ingest and the HTTP server start.
func (h *Hub) assemble(_ context.Context) error {
	if h.cfg.UI == nil {
		h.cfg.UI = webui.Handler()
	}
	return nil
}
