// Package collect holds the agent's collectors, one source per file behind
// one interface: what an agent reads on its own GPU host (NVML, the
// system, its local model servers) into a metrics.Sample. What the hub
// reads itself (databases, containers) is package sources.
package collect

import (
	"context"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Collector reads one source into a sample. It fills only its own section
// and must return within ctx's deadline; the agent records a returned
// error in s.Errors under Name and carries on with the other collectors.
type Collector interface {
	Name() string
	Collect(ctx context.Context, s *metrics.Sample) error
}
