// Package collect holds the agent's collectors, one source per file behind
// one interface.
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
