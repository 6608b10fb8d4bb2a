package alerting

// More than one hub on one NATS. Every hub evaluates the rules and shows
// its alerts, but only the hub holding the notifier lease publishes
// transitions, saves the engine's state and sends webhooks, so a
// transition reaches a receiver once although two hubs see it.
//
// The lease is a key in a KV bucket whose TTL is the lease time: the
// holder renews it with a revision-checked Update every LeaseTTL/4, and a
// hub that stops renewing loses it when the key ages out. The others try
// a Create every second, so a dead holder is replaced within about
// LeaseTTL plus a second. The holder stops notifying on its own once it
// has not renewed for LeaseTTL minus two renewals, before the key can age
// out, so two hubs never both believe they hold it.
//
// No transition is lost or sent twice across a takeover because the
// stream SYSPERF_ALERTS is the record of what to send, and the position
// of the last transition each receiver was sent lives in the state bucket
// (key delivered.<receiver>), advanced with a revision-checked Update
// after each delivery. A new holder first restores the engine state the
// old one saved, then evaluates the newest update again, so what changed
// while nobody held the lease becomes transitions at once; then it sends
// each receiver what follows its position. A transition the old holder
// published but had not saved the state for comes out again with the same
// Nats-Msg-Id (rule, host, target, state, severity, since) and the stream
// drops it as a duplicate. The one window left is a holder killed between
// a receiver's 2xx and the position update: that transition is sent again.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/pkg/alerts"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Where the lease is kept.
const (
	LeaseBucket     = "SYSPERF_ALERT_LEASE"
	leaseKey        = "notifier"
	deliveredPrefix = "delivered."
)

// leaseTry is how often a hub without the lease tries to take it.
const leaseTry = time.Second

// notifying reports whether this hub sends notifications: always when it
// is the only hub, else while it holds the lease.
func (s *Service) notifying() bool { return s.leaseKV == nil || s.holding.Load() }

// holdLease takes, renews and loses the lease until ctx ends, and runs the
// deliveries while it is held.
func (s *Service) holdLease(ctx context.Context) {
	var (
		rev           uint64
		renewed, good time.Time // last renewal, and when holding ends without another
		stop          context.CancelFunc
		wg            sync.WaitGroup
	)
	step := s.cfg.LeaseTTL / 4
	release := func(why string) {
		if stop == nil {
			return
		}
		s.holding.Store(false)
		stop()
		wg.Wait()
		stop = nil
		s.log.Warn("notifier lease lost: this hub stops sending notifications", "reason", why)
	}
	defer func() {
		if stop == nil {
			return
		}
		s.holding.Store(false)
		stop()
		wg.Wait()
		// A hub shutting down hands over at once instead of after the
		// TTL: deleting the key lets the next Create through.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), step)
		defer cancel()
		if err := s.leaseKV.Delete(cctx, leaseKey, jetstream.LastRevision(rev)); err != nil {
			s.log.Warn("release notifier lease", "err", err)
		}
	}()
	t := time.NewTicker(min(leaseTry, step))
	defer t.Stop()
	for {
		now := time.Now()
		switch {
		case stop != nil && now.After(good):
			release("not renewed in time")
		case stop != nil && now.Sub(renewed) >= step:
			cctx, cancel := context.WithTimeout(ctx, step)
			r, err := s.leaseKV.Update(cctx, leaseKey, []byte(s.cfg.Lease), rev)
			cancel()
			if err != nil {
				s.log.Warn("renew notifier lease", "err", err)
				// The key aged out (and maybe another hub created it): the
				// lease is gone; a plain failure is retried until good ends.
				if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
					release("taken by another hub")
				}
				break
			}
			rev, renewed, good = r, now, now.Add(s.cfg.LeaseTTL-2*step)
		case stop == nil:
			r, ok := s.acquire(ctx)
			if !ok {
				break
			}
			dctx, cancel := context.WithCancel(ctx)
			if err := s.takeOver(dctx); err != nil {
				cancel()
				s.log.Warn("take over notifications", "err", err)
				break
			}
			rev, renewed, good, stop = r, now, now.Add(s.cfg.LeaseTTL-2*step), cancel
			for i := range s.notifier.Len() {
				wg.Go(func() { s.deliverLoop(dctx, i) })
			}
			s.log.Info("notifier lease taken: this hub sends the notifications", "hub", s.cfg.Lease)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// acquire creates the lease key, or takes it over when it still names
// this hub (a restart faster than the TTL), and returns its revision.
func (s *Service) acquire(ctx context.Context) (uint64, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL/4)
	defer cancel()
	rev, err := s.leaseKV.Create(ctx, leaseKey, []byte(s.cfg.Lease))
	if err == nil {
		return rev, true
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		s.log.Debug("take notifier lease", "err", err)
		return 0, false
	}
	e, err := s.leaseKV.Get(ctx, leaseKey)
	if err != nil || string(e.Value()) != s.cfg.Lease {
		return 0, false
	}
	if rev, err = s.leaseKV.Update(ctx, leaseKey, []byte(s.cfg.Lease), e.Revision()); err != nil {
		return 0, false
	}
	return rev, true
}

// takeOver makes this hub the notifier: it resumes the engine state the
// previous holder saved, makes sure every receiver has a position, and
// evaluates the newest update again, all under evalMu so no evaluation
// runs on a half-restored state.
func (s *Service) takeOver(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	s.evalMu.Lock()
	defer s.evalMu.Unlock()
	if _, err := s.restoreState(cctx, "saved alert state unreadable, keeping this hub's"); err != nil {
		return err
	}
	for _, u := range s.cfg.Webhooks {
		if err := s.ensurePosition(cctx, deliveredKey(u)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	// Alerts the previous holder sent are not re-sent at once.
	s.lastResend = time.Time{}
	s.mu.Unlock()
	s.holding.Store(true)
	if s.lastUpdate != nil {
		s.evaluate(s.lastNow, s.lastUpdate)
	}
	return nil
}

// ensurePosition starts a receiver that has none at the stream's end: the
// transitions before this hub's first lease were someone else's to send.
func (s *Service) ensurePosition(ctx context.Context, key string) error {
	if _, err := s.kv.Get(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("kv %s: get %s: %w", StateBucket, key, err)
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", metrics.StreamAlerts, err)
	}
	if _, err := s.kv.Create(ctx, key, []byte(strconv.FormatUint(info.State.LastSeq, 10))); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("kv %s: create %s: %w", StateBucket, key, err)
	}
	return nil
}

// deliveredKey names a receiver's position by a hash of its URL, which
// may hold a password and so is not written anywhere itself. Every hub
// must list the same webhooks.
func deliveredKey(url string) string {
	sum := sha256.Sum256([]byte(url))
	return deliveredPrefix + hex.EncodeToString(sum[:8])
}

// deliverLoop sends the i-th receiver every firing and resolved
// transition after its position until ctx ends (the lease is lost).
func (s *Service) deliverLoop(ctx context.Context, i int) {
	for {
		err := s.deliverFrom(ctx, i)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("webhook delivery from the stream", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(leaseTry):
		}
	}
}

func (s *Service) deliverFrom(ctx context.Context, i int) error {
	key := deliveredKey(s.cfg.Webhooks[i])
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	entry, err := s.kv.Get(cctx, key)
	cancel()
	if err != nil {
		return fmt.Errorf("kv %s: get %s: %w", StateBucket, key, err)
	}
	pos, err := strconv.ParseUint(string(entry.Value()), 10, 64)
	if err != nil {
		return fmt.Errorf("kv %s: %s holds %q: %w", StateBucket, key, entry.Value(), err)
	}
	rev := entry.Revision()
	cctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
	cons, err := s.js.OrderedConsumer(cctx, metrics.StreamAlerts, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{metrics.AlertSubject(alerts.StateFiring), metrics.AlertSubject(alerts.StateResolved)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: pos + 1,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("stream %s: consumer: %w", metrics.StreamAlerts, err)
	}
	for ctx.Err() == nil {
		m, err := cons.Next(jetstream.FetchMaxWait(leaseTry))
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stream %s: next: %w", metrics.StreamAlerts, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("stream %s: %w", metrics.StreamAlerts, err)
		}
		var tr alerts.Transition
		if err := json.Unmarshal(m.Data(), &tr); err != nil {
			s.log.Warn("unreadable alert transition skipped", "seq", meta.Sequence.Stream, "err", err)
		} else {
			at := tr.At
			if at.IsZero() {
				at = meta.Timestamp
			}
			if err := s.notifier.Deliver(ctx, i, s.notes(tr, at)); err != nil && ctx.Err() != nil {
				// Cut short by the lease's end: not delivered, the next
				// holder sends it.
				return err
			}
		}
		// Recorded even when the lease ends meanwhile: what was sent must
		// not be sent again by the next holder (the revision still fences
		// off a position another hub moved).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		rev, err = s.kv.Update(cctx, key, []byte(strconv.FormatUint(meta.Sequence.Stream, 10)), rev)
		cancel()
		if err != nil {
			return fmt.Errorf("kv %s: update %s: %w", StateBucket, key, err)
		}
	}
	return ctx.Err()
}

// msgID identifies a transition for the stream's de-duplication: the same
// alert changing the same way from the same start is the same transition,
// whichever hub saw it.
func msgID(tr alerts.Transition) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s|%d", tr.Rule, tr.Host, tr.Target, tr.From, tr.State, tr.Severity, tr.Since.UnixNano())
}
