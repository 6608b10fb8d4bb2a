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

// record is one queued sample as the ledger keeps it. The disk backlog
// also notes where it is on disk; its data is then nil while it is only
// there.
type record struct {
	entry
	size int      // the sample's bytes, which the bound counts
	seg  *segment // nil: kept in memory only
	off  int64
	n    int64 // bytes on disk, header included
}

// ledger is the bookkeeping both backlogs share: the queued samples
// oldest first, their bytes, the bounds by age and bytes that drop the
// oldest, and the drop counts. mu guards it; every method but drained,
// len and stats expects its caller to hold mu, since a backlog changes the
// ledger and its own state (files) in one step.
type ledger struct {
	maxAge   time.Duration
	maxBytes int
	// removed, when set, is told of each record that leaves the ledger,
	// sent or dropped, after it has left.
	removed func(record)

	mu      sync.Mutex
	items   []record // oldest first
	bytes   int
	dropped uint64 // since start
	// droppedNow counts drops since the backlog was last empty, so the
	// agent logs the first drop of an outage and the total at its end.
	droppedNow uint64
}

// put appends r without applying the bounds.
func (l *ledger) put(r record) {
	l.items = append(l.items, r)
	l.bytes += r.size
}

// cut forgets the records from i on, which load had put but cannot
// serve; they count as neither sent nor dropped.
func (l *ledger) cut(i int) {
	for _, r := range l.items[i:] {
		l.bytes -= r.size
	}
	clear(l.items[i:])
	l.items = l.items[:i]
}

// add appends r and drops the oldest beyond the bounds: a recent sample is
// worth more to the live view and the history alike. first reports whether
// these are the first drops since the ledger was last empty.
func (l *ledger) add(r record, now time.Time) (dropped int, first bool) {
	before := l.droppedNow
	l.put(r)
	l.fit()
	l.expire(now)
	dropped = int(l.droppedNow - before)
	return dropped, dropped > 0 && before == 0
}

// fit drops the oldest until the bytes are within the bound.
func (l *ledger) fit() {
	for len(l.items) > 0 && l.bytes > l.maxBytes {
		l.drop()
	}
}

// expire drops the samples older than the bound.
func (l *ledger) expire(now time.Time) {
	for len(l.items) > 0 && now.Sub(l.items[0].ts) > l.maxAge {
		l.drop()
	}
}

// drop removes the oldest sample and counts it as dropped.
func (l *ledger) drop() {
	l.remove()
	l.dropped++
	l.droppedNow++
}

// take removes the oldest sample, sent, if it is still id: it may have
// been dropped (and another become the oldest) while it was being
// published.
func (l *ledger) take(id string) bool {
	if len(l.items) == 0 || l.items[0].id != id {
		return false
	}
	l.remove()
	return true
}

func (l *ledger) remove() {
	r := l.items[0]
	l.items[0] = record{}
	l.items = l.items[1:]
	l.bytes -= r.size
	if l.removed != nil {
		l.removed(r)
	}
}

// drained reports, once the backlog is empty, how many samples it dropped
// since it was last empty, and starts counting afresh.
func (l *ledger) drained() (empty bool, dropped uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.items) > 0 {
		return false, 0
	}
	dropped, l.droppedNow = l.droppedNow, 0
	return true, dropped
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}

// stats returns the queued samples, their bytes and the drops since start.
func (l *ledger) stats() (n, bytes int, dropped uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items), l.bytes, l.dropped
}

// backlog is the agent's outbox in memory: every sample goes through it,
// so while NATS is away samples queue up and are published oldest first
// once it is back, within the ledger's bounds.
type backlog struct {
	ledger
}

func newBacklog(maxAge time.Duration, maxBytes int) *backlog {
	return &backlog{ledger{maxAge: maxAge, maxBytes: maxBytes}}
}

// push appends e and drops what no longer fits. first reports whether
// these are the first drops since the backlog was last empty.
func (b *backlog) push(e entry, now time.Time) (dropped int, first bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.add(record{entry: e, size: len(e.data)}, now)
}

// peek returns the oldest sample still young enough to send.
func (b *backlog) peek(now time.Time) (entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	if len(b.items) == 0 {
		return entry{}, false
	}
	return b.items[0].entry, true
}

// pop removes the oldest sample if it is still id.
func (b *backlog) pop(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.take(id)
}

// close does nothing: what is in memory goes with the process.
func (b *backlog) close() error { return nil }
