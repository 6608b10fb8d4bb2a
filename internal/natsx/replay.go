package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// OrderedConsumers is the part of jetstream.JetStream that Replay uses.
type OrderedConsumers interface {
	OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error)
}

// fetchWait bounds each fetch of a replay, so a stream that stops
// delivering ends it with what came.
const fetchWait = 5 * time.Second

// Replay hands the messages of stream that cfg selects to fn, in stream
// order, and returns how many there were. It reads what the stream held
// when it began and returns once it has it all, so the components that
// rebuild their state from a stream at start share one way to do it.
func Replay(ctx context.Context, js OrderedConsumers, stream string, cfg jetstream.OrderedConsumerConfig, fn func(subject string, data []byte)) (int, error) {
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return 0, fmt.Errorf("ordered consumer: %w", err)
	}
	info := cons.CachedInfo()
	if info == nil {
		return 0, errors.New("ordered consumer: no info")
	}
	pending := int(info.NumPending)
	n := 0
	for n < pending {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		batch, err := cons.Fetch(min(pending-n, 1000), jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return n, fmt.Errorf("fetch after %d of %d: %w", n, pending, err)
		}
		got := 0
		for msg := range batch.Messages() {
			fn(msg.Subject(), msg.Data())
			got++
		}
		n += got
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return n, fmt.Errorf("fetch after %d of %d: %w", n, pending, err)
		}
		if got == 0 {
			// Messages may have aged out since the count was taken.
			break
		}
	}
	return n, nil
}
