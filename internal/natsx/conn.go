package natsx

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"

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
			log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
				return
			}
			log.Info("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(_ *nats.Conn) {
			log.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("nats async error", "subject", sub.Subject, "err", err)
				return
			}
			log.Warn("nats async error", "err", err)
		}),
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
		return nil, fmt.Errorf("nats connect %s: %w", redact.URL(rawURL), err)
	}
	return nc, nil
}
