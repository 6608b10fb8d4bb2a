package agent

import (
	"sync"
	"time"
)

// entry is one encoded sample waiting to be published.
type entry struct {
	id      string // Nats-Msg-Id
	subject string
	ts      time.Time // the sample's own timestamp, which bounds its age
	data    []byte
}

// backlog is the agent's outbox: every sample goes through it, so while
// NATS is away samples queue up and are published oldest first once it is
// back. It is bounded by the age of the oldest sample and by bytes; when
// full it drops the oldest, since a recent sample is worth more to the
// live view and the history alike.
type backlog struct {
	maxAge   time.Duration
	maxBytes int

	mu      sync.Mutex
	items   []entry // oldest first
	bytes   int
	dropped uint64 // since start
	// droppedNow counts drops since the backlog was last empty, so the
	// agent logs the first drop of an outage and the total at its end.
	droppedNow uint64
}

func newBacklog(maxAge time.Duration, maxBytes int) *backlog {
	return &backlog{maxAge: maxAge, maxBytes: maxBytes}
}

// push appends e and drops what no longer fits. first reports whether
// these are the first drops since the backlog was last empty.
func (b *backlog) push(e entry, now time.Time) (dropped int, first bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	before := b.droppedNow
	b.items = append(b.items, e)
	b.bytes += len(e.data)
	for len(b.items) > 0 && b.bytes > b.maxBytes {
		b.dropHead()
	}
	b.expire(now)
	dropped = int(b.droppedNow - before)
	return dropped, dropped > 0 && before == 0
}

// peek returns the oldest sample still young enough to send.
func (b *backlog) peek(now time.Time) (entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	if len(b.items) == 0 {
		return entry{}, false
	}
	return b.items[0], true
}

// pop removes the oldest sample if it is still id: it may have been
// dropped (and another become the oldest) while it was being published.
func (b *backlog) pop(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.items) == 0 || b.items[0].id != id {
		return
	}
	b.bytes -= len(b.items[0].data)
	b.items[0] = entry{}
	b.items = b.items[1:]
}

// drained reports, once the backlog is empty, how many samples it dropped
// since it was last empty, and starts counting afresh.
func (b *backlog) drained() (empty bool, dropped uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.items) > 0 {
		return false, 0
	}
	dropped, b.droppedNow = b.droppedNow, 0
	return true, dropped
}

// close does nothing: what is in memory goes with the process.
func (b *backlog) close() error { return nil }

func (b *backlog) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items)
}

// stats returns the queued samples, their bytes and the drops since start.
func (b *backlog) stats() (n, bytes int, dropped uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items), b.bytes, b.dropped
}

func (b *backlog) expire(now time.Time) {
	for len(b.items) > 0 && now.Sub(b.items[0].ts) > b.maxAge {
		b.dropHead()
	}
}

func (b *backlog) dropHead() {
	b.bytes -= len(b.items[0].data)
	b.items[0] = entry{}
	b.items = b.items[1:]
	b.dropped++
	b.droppedNow++
}
