package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Why set-up calls are retried. A clustered NATS (2.15.3) can leave
// unanswered the requests of two equal stream creations that arrive
// together, often both of them (TestRetryingConcurrentCreate: about half
// the rounds; one client alone was always answered). The server proposes
// the second as an equal assignment while the first is in flight
// (server/jetstream_cluster.go, jsClusteredStreamRequest), and applying
// it replaces the first's assignment, taking over its "responded" mark
// (processStreamAssignment), so a reply can fall between them. Two hubs
// started at once on one cluster create the same streams and buckets at
// once, and such a lost answer stopped their start-up with "context
// deadline exceeded". The stream is made all the same, so a retry is
// answered at once. The same retry carries start-up over a meta leader
// election (no answer, "temporarily unavailable", "not leader").

// Retry bounds: the first attempt gets setupAttempt, each next one twice
// as long up to setupAttemptMax, with a doubling pause between them, until
// the caller's context ends. The first is short because an answer lost
// to the race above never comes, while an R3 create on a loaded machine
// takes 0.1-0.6 s; later ones are longer for a slow cluster, and a retry
// of a create that was applied is answered at once anyway.
const (
	setupAttempt    = time.Second
	setupAttemptMax = 4 * time.Second
	setupPauseMin   = 100 * time.Millisecond
	setupPauseMax   = time.Second
)

// Retrying returns js with its set-up calls (creating or updating a
// stream, a key-value bucket or a consumer, deleting a consumer) retried
// while JetStream leaves them unanswered or says it is briefly
// unavailable: each attempt bounded by a few seconds, with a growing pause
// between attempts, until the caller's context ends. The error then says
// how many attempts were made over how long, and the last failure. Every
// other call goes straight to js. Each set-up call is idempotent, so an
// attempt that was applied but not answered does no harm when made again.
func Retrying(js jetstream.JetStream, log *slog.Logger) jetstream.JetStream {
	return &retrying{JetStream: js, log: log.With("component", "nats")}
}

type retrying struct {
	jetstream.JetStream
	log *slog.Logger
}

func (r *retrying) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return retry(ctx, r, "stream "+cfg.Name, func(ctx context.Context) (jetstream.Stream, error) {
		return r.JetStream.CreateOrUpdateStream(ctx, cfg)
	})
}

func (r *retrying) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return retry(ctx, r, "bucket "+cfg.Bucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		return r.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	})
}

func (r *retrying) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return retry(ctx, r, "consumer "+cfg.Durable, func(ctx context.Context) (jetstream.Consumer, error) {
		return r.JetStream.CreateConsumer(ctx, stream, cfg)
	})
}

func (r *retrying) CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return retry(ctx, r, "consumer "+cfg.Durable, func(ctx context.Context) (jetstream.Consumer, error) {
		return r.JetStream.CreateOrUpdateConsumer(ctx, stream, cfg)
	})
}

// DeleteConsumer retried may find the consumer gone, deleted by the
// attempt that went unanswered: ErrConsumerNotFound, which callers that
// delete before they create already take as done.
func (r *retrying) DeleteConsumer(ctx context.Context, stream, consumer string) error {
	_, err := retry(ctx, r, "delete consumer "+consumer, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, r.JetStream.DeleteConsumer(ctx, stream, consumer)
	})
	return err
}

// retry runs call until it succeeds, fails for good, or ctx ends.
func retry[T any](ctx context.Context, r *retrying, what string, call func(context.Context) (T, error)) (T, error) {
	began := time.Now()
	attempt, pause := setupAttempt, setupPauseMin
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, attempt)
		v, err := call(actx)
		cancel()
		if err == nil || !transient(err) {
			if err == nil && n > 1 {
				r.log.Info("jetstream set-up answered after retries", "what", what, "attempts", n, "took", time.Since(began).Round(time.Millisecond))
			}
			return v, err
		}
		if ctx.Err() != nil {
			return v, gaveUp(n, began, err)
		}
		r.log.Warn("jetstream set-up call unanswered, retrying", "what", what, "attempt", n, "err", err, "retry_in", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, gaveUp(n, began, err)
		case <-t.C:
		}
		attempt, pause = min(2*attempt, setupAttemptMax), min(2*pause, setupPauseMax)
	}
}

// gaveUp is the error of a call retried until its caller's deadline; the
// caller names what it was setting up.
func gaveUp(attempts int, began time.Time, last error) error {
	return fmt.Errorf("no answer from JetStream in %d attempts over %s: %w", attempts, time.Since(began).Round(time.Millisecond), last)
}

// JetStream API errors that say the cluster is between leaders or still
// placing peers, which passes.
const (
	errNoPeers      jetstream.ErrorCode = 10005
	errNotAvailable jetstream.ErrorCode = 10008
	errNotLeader    jetstream.ErrorCode = 10009
)

// transient reports whether err may go away on its own: no answer in
// time, nobody listening yet, or the cluster saying it is busy electing.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case errNoPeers, errNotAvailable, errNotLeader:
			return true
		}
	}
	return false
}
