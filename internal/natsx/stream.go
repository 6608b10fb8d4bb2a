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
	// Duplicates is the de-duplication window on Nats-Msg-Id; default
	// DefaultDuplicates, never more than MaxAge.
	Duplicates time.Duration
	// Replicas for a clustered external NATS; default 1.
	Replicas int
	// MaxBytes caps the stream's size, the oldest samples going first;
	// default DefaultMaxBytes, so a flood cannot fill the disk.
	MaxBytes int64
}

// DefaultDuplicates covers what an agent re-sends at once: a publish
// whose ack was lost or late (its timeout is at most 5 s) is retried
// within a second or, if the connection dropped, once the agent has
// reconnected, within a minute or so of a server restart or a brief
// partition. A copy re-sent later (an ack lost just before a long outage)
// is stored twice, and the hub's ingest, which records the host, boot and
// sequence number of what it accepted, counts it once. The server holds
// every id of the window in memory (about 146 bytes a message): 2 minutes
// of 2,000 hosts at 5 s is 48,000 ids, 7 MB, where 2 hours took 420 MB.
const DefaultDuplicates = 2 * time.Minute

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
		cfg.Duplicates = DefaultDuplicates
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
