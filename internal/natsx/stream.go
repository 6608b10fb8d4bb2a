package natsx

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// MaxMsgSize is the largest message the hub's streams and its embedded
// server accept: the largest sample the hub decodes (metrics.MaxMessage)
// plus room for headers. A sample between the two reaches the hub and is
// counted as too large; anything bigger is refused where it arrives.
const MaxMsgSize = metrics.MaxMessage + 16<<10

// SamplesStream configures the SYSPERF_SAMPLES stream.
type SamplesStream struct {
	// MaxAge is how long samples are kept; default 24h.
	MaxAge time.Duration
	// Duplicates is the de-duplication window on Nats-Msg-Id. It must cover
	// an agent's backlog so a replay after an outage does not store a sample
	// twice; default 2h, never more than MaxAge.
	Duplicates time.Duration
	// Replicas for a clustered external NATS; default 1.
	Replicas int
	// MaxBytes caps the stream's size, the oldest samples going first;
	// default DefaultMaxBytes, so a flood cannot fill the disk.
	MaxBytes int64
}

// DefaultMaxBytes bounds the samples stream: 4 GiB holds a day of 5 s
// samples of 8 KiB from about 30 hosts, and is what junk could take of the
// disk at most.
const DefaultMaxBytes = 4 << 30

// EnsureSamplesStream creates the samples stream or updates it to cfg, so
// a changed retention takes effect on the next start.
func EnsureSamplesStream(ctx context.Context, js jetstream.JetStream, cfg SamplesStream) (jetstream.Stream, error) {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = 2 * time.Hour
	}
	cfg.Duplicates = min(cfg.Duplicates, cfg.MaxAge)
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        metrics.StreamSamples,
		Description: "sysperf agent samples",
		Subjects:    []string{metrics.SubjectSamples},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgSize:  MaxMsgSize,
		Duplicates:  cfg.Duplicates,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", metrics.StreamSamples, err)
	}
	return st, nil
}
