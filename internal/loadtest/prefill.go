package loadtest

// The prefill: before the live load, the hub is given the past a hub that
// has run for a while holds. Every host publishes Span of samples stamped
// over the past Span, as fast as JetStream acks them (the ingest mode's
// publishers), and the hub consumes them as it would live ones: its
// history windows, its samples stream and every per-host state it keeps
// are then those of a hub that has run for Span, and the figures of the
// live run that follows (RSS above all) are a long-running hub's, not
// those of a hub a minute old.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// backlog is the ingest run that publishes span of each host's samples,
// stamped every interval up to now, the hosts' clocks spread over the
// interval as agents' are.
func backlog(cfg Config, window int, now time.Time, span time.Duration) IngestConfig {
	per := int(span / cfg.Interval)
	ic := IngestConfig{Config: cfg, Window: window, PerHost: per,
		Stamp: func(n int, seq uint64) time.Time {
			return now.Add(-span + time.Duration(seq+1)*cfg.Interval - time.Duration(n)*cfg.Interval/time.Duration(cfg.Hosts))
		}}
	ic.Duration = 30 * time.Minute // bounds the fill
	return ic
}

// PrefillResult holds what a prefill stored and how long it took.
type PrefillResult struct {
	Stored   int64
	Consumed int64
	Dropped  int64 // stamped before the 60m window by the time the hub read them
	Took     time.Duration
	HubCPU   time.Duration
	Passes   int
	// HubRSSMax is the hub's largest resident set during the fill (0:
	// not measured), and Settle how long the hub took to settle after
	// it (see settle).
	HubRSSMax int64
	Settle    time.Duration
	// Errors are publishes that failed (a busy machine's timeouts): their
	// samples are missing from the history, nothing else.
	Errors int64
}

// Prefill fills the hub with span of every host's samples stamped over the
// past span, then with the samples of the time the fill itself took, so
// the live run starts where the history ends (a gap of the last pass's
// few seconds). It returns once the hub has consumed them all.
//
// Each pass publishes as a new boot of every host, without Nats-Msg-Id
// (see IngestConfig.NoMsgID); the live run then starts another boot.
func Prefill(ctx context.Context, cfg Config, window int, span time.Duration, log *slog.Logger) (PrefillResult, error) {
	if cfg.HubPID <= 0 {
		return prefill(ctx, cfg, window, span, log)
	}
	rssMax := peakRSS(cfg.HubPID, 500*time.Millisecond)
	r, err := prefill(ctx, cfg, window, span, log)
	if err == nil {
		r.Settle, err = settle(ctx, cfg.HubPID, settleIdle, settleWindow, settleMax)
		// And until what the embedded NATS server keeps of the blocks the
		// fill wrote has aged out (see settleLeast).
		if left := settleLeast - r.Settle; err == nil && left > 0 {
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-time.After(left):
			}
			r.Settle = settleLeast
		}
	}
	r.HubRSSMax = rssMax()
	return r, err
}

// The hub settles after a fill once its CPU stays under settleIdle of a
// core for a settleWindow, or settleMax has passed, and settleLeast has
// passed: nats-server keeps each file-store block's per-subject state
// for 2 minutes after the block was last used, which for the 4 GB a
// 2,000-host fill writes in two minutes is about 45 MB of the hub's heap
// (2,000 subjects in each of some 500 blocks), where a hub that wrote
// them over an hour holds the last two minutes' 15 blocks.
const (
	settleIdle   = 0.05
	settleWindow = 5 * time.Second
	settleMax    = 3 * time.Minute
	settleLeast  = 2*time.Minute + 10*time.Second
)

// settle waits until the hub is done with what the fill left it: the
// fill packs an hour of samples into a minute or two, and the hub works
// off its consequences after the last sample is consumed (an hour of
// every host's minutes to persist at once, the samples its subscription
// dropped to read back from the stream), which a hub that has run for an
// hour did minute by minute. Measured at once, the live minute would be
// that catching up's, not an hour-in hub's. It returns how long it
// waited: until pid used under idle of a core over a window, or most.
func settle(ctx context.Context, pid int, idle float64, window, most time.Duration) (time.Duration, error) {
	began := time.Now()
	for time.Since(began) < most {
		c0, t0 := procCPU(pid), time.Now()
		select {
		case <-ctx.Done():
			return time.Since(began), ctx.Err()
		case <-time.After(window):
		}
		if (procCPU(pid) - c0).Seconds() < idle*time.Since(t0).Seconds() {
			break
		}
	}
	return time.Since(began), nil
}

func prefill(ctx context.Context, cfg Config, window int, span time.Duration, log *slog.Logger) (PrefillResult, error) {
	var r PrefillResult
	if span < cfg.Interval || window <= 0 {
		return r, errors.New("loadtest: prefill needs a span of at least one interval and a positive window")
	}
	began := time.Now()
	until := began
	for r.Passes < 3 {
		ic := backlog(cfg, window, until, span)
		ic.NoMsgID = true
		got, err := Ingest(ctx, ic, log)
		r.Passes++
		r.Stored += got.Stored
		r.Consumed += got.Consumed
		r.Dropped += got.Dropped
		r.HubCPU += got.HubCPU
		if err != nil {
			return r, err
		}
		r.Errors += got.Errors
		if !got.Complete {
			return r, fmt.Errorf("loadtest: prefill: the hub handled %d of %d samples", got.Consumed+got.Dropped, got.Stored)
		}
		// The next pass fills what passed during this one; a pass of
		// less than an interval leaves nothing worth filling.
		span = time.Since(until)
		until = time.Now()
		if span < 2*cfg.Interval {
			break
		}
	}
	r.Took = time.Since(began)
	return r, nil
}

// Report writes the prefill's figures.
func (r PrefillResult) Report(w io.Writer, cfg Config, span time.Duration) {
	fmt.Fprintf(w, "prefill: %s of %d hosts' samples, %d stored (%d of them already too old, %d publishes failed), consumed in %s (%d passes, hub CPU %s)\n",
		span, cfg.Hosts, r.Stored, r.Dropped, r.Errors, r.Took.Round(time.Second), r.Passes, r.HubCPU.Round(time.Second))
	if r.HubRSSMax > 0 {
		fmt.Fprintf(w, "prefill: hub RSS max %.1f MiB, settled %s after\n", float64(r.HubRSSMax)/(1<<20), r.Settle.Round(time.Second))
	}
}
