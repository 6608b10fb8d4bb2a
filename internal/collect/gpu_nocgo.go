//go:build !cgo

package collect

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// errNoCgo is the GPU section's reason in an agent built without cgo:
// go-nvml loads libnvidia-ml through cgo, so such a build cannot read
// GPUs at all, whatever the machine has.
var errNoCgo = errors.New("built without cgo: NVML unavailable")

// noNVML stands in for the GPU collector in a build without cgo.
type noNVML struct{}

// NewSystemGPU returns the stand-in collector: every collection reports
// the GPU section unavailable with the reason, and fills nothing.
func NewSystemGPU(*slog.Logger) Collector { return noNVML{} }

func (noNVML) Name() string { return metrics.CollectorGPU }

func (noNVML) Collect(context.Context, *metrics.Sample) error { return errNoCgo }
