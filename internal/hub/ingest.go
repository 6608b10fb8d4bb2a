package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Drop causes, the keys of Stats.Dropped and Stats.ObservationsDropped.
const (
	DropTooLarge = "too_large"
	DropVersion  = "version"
	DropInvalid  = "invalid"
	// DropSubject: a sample whose host is not the subject's, so one agent
	// cannot overwrite another host's figures.
	DropSubject = "subject_mismatch"
)

// Stats are the ingest counters the hub exports on /metrics.
type Stats struct {
	// Samples accepted, including Late ones.
	Samples uint64
	// Late samples were older than their host's newest: kept for history
	// and latency, but not shown as the host's current state.
	Late uint64
	// Dropped samples by cause.
	Dropped map[string]uint64
	// Observations accepted from sysperf.v1.latency.*.
	Observations uint64
	// ObservationsDropped latency messages by cause.
	ObservationsDropped map[string]uint64
	// Hosts is the number of hosts the hub knows.
	Hosts int
	// NonFinite counts NaN and ±Inf values removed from accepted samples
	// (JSON cannot carry them); the rest of each sample is kept.
	NonFinite uint64
}

// ingest decodes samples and observations and keeps each host's newest
// sample. It is safe for concurrent use.
type ingest struct {
	log     *slog.Logger
	history History
	latency Latency
	limit   logLimiter

	handled atomic.Uint64

	mu     sync.Mutex
	newest map[string]*metrics.Sample
	stats  Stats
}

func newIngest(log *slog.Logger, history History, latency Latency) *ingest {
	return &ingest{
		log:     log,
		history: history,
		latency: latency,
		limit:   logLimiter{every: 10 * time.Second},
		newest:  map[string]*metrics.Sample{},
		stats:   Stats{Dropped: map[string]uint64{}, ObservationsDropped: map[string]uint64{}},
	}
}

func dropCause(err error) string {
	switch {
	case errors.Is(err, metrics.ErrTooLarge):
		return DropTooLarge
	case errors.Is(err, metrics.ErrVersion):
		return DropVersion
	default:
		return DropInvalid
	}
}

// sample handles one message of the samples stream. It reports whether the
// sample was accepted; a rejected one is counted and logged, never fatal.
func (in *ingest) sample(subject string, data []byte) bool {
	defer in.handled.Add(1)
	s, err := metrics.Decode(data)
	if err == nil && subject != metrics.SampleSubject(s.Host) {
		err = fmt.Errorf("sample of host %q on subject %q", s.Host, subject)
		in.drop(DropSubject, subject, len(data), err)
		return false
	}
	if err != nil {
		in.drop(dropCause(err), subject, len(data), err)
		return false
	}
	fixed := scrub(s)
	in.mu.Lock()
	in.stats.Samples++
	in.stats.NonFinite += uint64(fixed)
	if cur := in.newest[s.Host]; newer(s, cur) {
		in.newest[s.Host] = s
	} else {
		in.stats.Late++
	}
	in.mu.Unlock()
	if in.history != nil {
		in.history.Add(s)
	}
	if in.latency != nil {
		in.latency.AddSample(s)
	}
	return true
}

// newer reports whether s supersedes cur as its host's state. Within one
// agent run the sequence number orders samples, whatever the clock did;
// across runs the timestamp does.
func newer(s, cur *metrics.Sample) bool {
	if cur == nil {
		return true
	}
	if s.Boot == cur.Boot {
		return s.Seq >= cur.Seq
	}
	return s.TS >= cur.TS
}

func (in *ingest) drop(cause, subject string, size int, err error) {
	in.mu.Lock()
	in.stats.Dropped[cause]++
	in.mu.Unlock()
	if ok, suppressed := in.limit.allow("sample/"+cause, time.Now()); ok {
		in.log.Warn("sample dropped", "cause", cause, "subject", subject, "bytes", size, "err", err, "suppressed", suppressed)
	}
}

// observations handles one latency push.
func (in *ingest) observations(subject string, data []byte) {
	host, stage, ok := metrics.ParseLatencySubject(subject)
	var obs []metrics.Observation
	var err error
	cause := DropSubject
	if !ok {
		err = fmt.Errorf("bad latency subject %q", subject)
	} else if obs, err = metrics.DecodeObservations(data); err != nil {
		cause = dropCause(err)
	}
	if err != nil {
		in.mu.Lock()
		in.stats.ObservationsDropped[cause]++
		in.mu.Unlock()
		if ok, suppressed := in.limit.allow("latency/"+cause, time.Now()); ok {
			in.log.Warn("latency observations dropped", "cause", cause, "subject", subject, "bytes", len(data), "err", err, "suppressed", suppressed)
		}
		return
	}
	in.mu.Lock()
	in.stats.Observations += uint64(len(obs))
	in.mu.Unlock()
	if in.latency != nil {
		in.latency.AddObservations(host, stage, obs)
	}
}

// snapshot returns each host's newest sample and forgets hosts silent since
// before forget (their samples have left the stream too). The samples are
// shared and must not be modified.
func (in *ingest) snapshot(forget time.Time) map[string]*metrics.Sample {
	in.mu.Lock()
	defer in.mu.Unlock()
	for h, s := range in.newest {
		if time.Unix(0, s.TS).Before(forget) {
			delete(in.newest, h)
		}
	}
	return maps.Clone(in.newest)
}

// Stats returns a copy of the counters.
func (in *ingest) Stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.stats
	st.Dropped = maps.Clone(in.stats.Dropped)
	st.ObservationsDropped = maps.Clone(in.stats.ObservationsDropped)
	st.Hosts = len(in.newest)
	return st
}

// consume (re)creates the hub's durable consumer so that it starts at
// now-replay, which rebuilds the windows after a restart through the same
// path live samples take, and starts handling messages. It returns the
// number of messages pending at creation, for the caller to wait on.
func (in *ingest) consume(ctx context.Context, js jetstream.JetStream, durable string, replay time.Duration) (jetstream.ConsumeContext, uint64, error) {
	// A durable's start position cannot be updated, and one left from the
	// last run would resume from its ack floor instead of the replay start.
	if err := js.DeleteConsumer(ctx, metrics.StreamSamples, durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, 0, fmt.Errorf("delete consumer %s: %w", durable, err)
	}
	start := time.Now().Add(-replay)
	cons, err := js.CreateConsumer(ctx, metrics.StreamSamples, jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "sysperf hub ingest",
		FilterSubject: metrics.SubjectSamples,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &start,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    5,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("create consumer %s: %w", durable, err)
	}
	pending := cons.CachedInfo().NumPending
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		in.sample(msg.Subject(), msg.Data())
		// A message is acked whatever its fate: a malformed one would only
		// come back.
		if err := msg.Ack(); err != nil {
			if ok, _ := in.limit.allow("ack", time.Now()); ok {
				in.log.Warn("ack sample", "err", err)
			}
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if ok, suppressed := in.limit.allow("consume", time.Now()); ok {
			in.log.Warn("sample consumer", "err", err, "suppressed", suppressed)
		}
	}))
	if err != nil {
		return nil, 0, fmt.Errorf("consume %s: %w", metrics.StreamSamples, err)
	}
	return cc, pending, nil
}

// waitCaughtUp blocks until n messages were handled since start, so the
// first update already holds the replayed history, or until ctx ends.
func (in *ingest) waitCaughtUp(ctx context.Context, n uint64) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for in.handled.Load() < n {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// logLimiter lets one log line per key through every interval and counts
// the ones it held back, so garbage at line rate cannot flood the log.
type logLimiter struct {
	every time.Duration

	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.suppressed = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		l.suppressed[key]++
		return false, 0
	}
	n := l.suppressed[key]
	l.last[key], l.suppressed[key] = now, 0
	return true, n
}
