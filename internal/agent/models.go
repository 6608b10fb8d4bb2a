package agent

import (
	"context"

	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// ModelAnnotator attributes GPU processes to the configured models (their
// own container or command first, then model-matchers or the defaults,
// then each kind's usual command line) and then splits each GPU's energy
// between them. New uses it with the default collectors; a program that
// brings its own collectors may use it as Plugs.Annotate.
func ModelAnnotator(cfg Config) func(context.Context, *metrics.Sample) error {
	matchers := cfg.ModelMatchers
	if len(matchers) == 0 {
		matchers = collect.DefaultModelMatchers()
	}
	matchers = append(collect.KindMatchers(cfg.ModelSpecs()), matchers...)
	procs := collect.NewProcs(cfg.ProcRoot, matchers...)
	energy := collect.NewEnergy()
	return func(ctx context.Context, s *metrics.Sample) error {
		err := procs.Annotate(ctx, s)
		energy.Apply(s)
		return err
	}
}
