// Package natsx holds what the hub and the agent share about NATS as
// clients: connection options, stream set-up and replay. The embedded
// server is the hub's alone (internal/natsd).
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sysperf/sysperf/internal/lograte"
	"github.com/sysperf/sysperf/internal/redact"
)

// Reconnect back-off bounds: quick first retries so a restarted hub is
// picked up at once, capped so a long outage costs little.
const (
	backoffMin = 250 * time.Millisecond
	backoffMax = 10 * time.Second
)

// Options are the connection options the hub and the agent share: a name,
// a connect timeout, reconnecting forever with jittered exponential
// back-off, and a log line on every state change.
func Options(name string, log *slog.Logger) []nats.Option {
	log = log.With("component", "nats", "conn", name)
	return []nats.Option{
		nats.Name(name),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "url", redact.URL(nc.ConnectedUrl()))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
				return
			}
			log.Info("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", redact.URL(nc.ConnectedUrl()))
		}),
		nats.ClosedHandler(func(_ *nats.Conn) {
			log.Info("nats connection closed")
		}),
		nats.ErrorHandler(asyncErrors(log)),
	}
}

// asyncErrorsEvery is how often one kind of asynchronous error is logged.
const asyncErrorsEvery = 10 * time.Second

// asyncErrors logs the connection's asynchronous errors, each kind at most
// once per asyncErrorsEvery with a count of those held back: the client
// reports a subscription's drops each time it falls behind again, which
// a hub catching up with a fleet's backlog did 1,192 times in two minutes.
func asyncErrors(log *slog.Logger) nats.ErrHandler {
	limit := &lograte.Limiter{Every: asyncErrorsEvery}
	return func(_ *nats.Conn, sub *nats.Subscription, err error) {
		ok, held := limit.Allow(err.Error(), time.Now())
		if !ok {
			return
		}
		if sub != nil {
			log.Warn("nats async error", "subject", sub.Subject, "err", err, "suppressed", held)
			return
		}
		log.Warn("nats async error", "err", err, "suppressed", held)
	}
}

// backoff is the reconnect delay after attempts failed attempts: doubling
// from 250ms to 10s, with ±20 % jitter so many agents do not reconnect in
// lock-step after the hub restarts.
func backoff(attempts int) time.Duration {
	d := backoffMin
	for i := 1; i < attempts && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	jitter := time.Duration(rand.Int64N(int64(d)*2/5+1)) - d/5
	return d + jitter
}

// Connect dials an external NATS server with the shared options plus extra.
// The error names the URL with any password removed.
func Connect(rawURL, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append(Options(name, log), extra...)
	nc, err := nats.Connect(rawURL, opts...)
	if err != nil {
		// A URL that does not parse is quoted whole in nats.go's error.
		return nil, fmt.Errorf("nats connect %s: %w", redact.URL(rawURL), redact.Error(err))
	}
	return nc, nil
}

// ConnectWait dials an external NATS server like Connect, retrying with
// the reconnect back-off while the server does not answer, so a hub
// started before its NATS (a compose file, a reboot) waits for it instead
// of exiting. wait bounds the retries (0: until ctx ends). A WARN is
// logged when the server first fails and again only when the reason
// changes, each attempt at debug level; the "nats connected" INFO of
// Options ends the wait. waiting, when not nil, is told the reason before
// each retry and nil once connected, so a health check can say why the
// hub is not ready. ctx's end stops the wait at once, even mid-attempt.
func ConnectWait(ctx context.Context, rawURL, name string, log *slog.Logger, wait time.Duration, waiting func(error), extra ...nats.Option) (*nats.Conn, error) {
	start := time.Now()
	url := redact.URL(rawURL)
	nlog := log.With("component", "nats", "conn", name)
	lastReason := ""
	for attempt := 1; ; attempt++ {
		nc, err := connectCtx(ctx, rawURL, name, log, extra...)
		if err == nil {
			if waiting != nil {
				waiting(nil)
			}
			if attempt > 1 {
				nlog.Info("nats reachable, waiting over", "url", url, "attempts", attempt, "waited", time.Since(start).Round(time.Millisecond))
			}
			return nc, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nats connect %s: gave up waiting: %w", url, ctx.Err())
		}
		delay := backoff(attempt)
		if wait > 0 {
			// The last attempt is made when the wait runs out.
			left := wait - time.Since(start)
			if left <= 0 {
				return nil, fmt.Errorf("nats connect %s: not reachable within %s (nats-wait): %w", url, wait, cause(err))
			}
			delay = min(delay, left)
		}
		if waiting != nil {
			waiting(fmt.Errorf("waiting for NATS at %s: %w", url, cause(err)))
		}
		if reason := cause(err).Error(); reason != lastReason {
			lastReason = reason
			nlog.Warn("nats not reachable, retrying with back-off until it is", "url", url, "err", reason, "nats_wait", waitText(wait))
		}
		nlog.Debug("nats connect attempt failed", "url", url, "attempt", attempt, "retry_in", delay.Round(time.Millisecond), "err", cause(err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("nats connect %s: gave up waiting: %w", url, ctx.Err())
		case <-t.C:
		}
	}
}

// cause is Connect's error without the "nats connect <url>" it adds, which
// ConnectWait's own messages already say. nats.go reports a refused
// connection as "no servers available" (it keeps other dial errors), so
// the reason says refused, what an operator looks for.
func cause(err error) error {
	if errors.Is(err, nats.ErrNoServers) {
		return fmt.Errorf("connection refused (%w)", nats.ErrNoServers)
	}
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

func waitText(wait time.Duration) string {
	if wait <= 0 {
		return "forever"
	}
	return wait.String()
}

// connectCtx is Connect that returns as soon as ctx ends; an attempt still
// dialling then finishes in the background (within its connect timeout)
// and closes what it got.
func connectCtx(ctx context.Context, rawURL, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := Connect(rawURL, name, log, extra...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
