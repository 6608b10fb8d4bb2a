// Package dropq is the bounded queue the hub puts between a producer that
// must never wait (the update loop, the alert evaluation) and a consumer
// that may be slow or stalled (a JetStream publish, a webhook). When the
// queue is full the oldest item goes, so what is kept is the newest, and
// every item lost that way is counted for the hub's stats.
package dropq

import (
	"sync"
	"sync/atomic"
)

// Queue is a first-in first-out queue of at most a fixed number of items,
// safe for concurrent use. The zero value is not usable; call New.
type Queue[T any] struct {
	limit   int
	mu      sync.Mutex
	items   []T
	dropped atomic.Uint64
}

// New returns an empty queue that holds at most limit items; a limit below
// one is taken as one.
func New[T any](limit int) *Queue[T] {
	return &Queue[T]{limit: max(limit, 1)}
}

// Push appends items in order, dropping the oldest one for each that finds
// the queue full. It never blocks on the consumer.
func (q *Queue[T]) Push(items ...T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range items {
		if len(q.items) >= q.limit {
			q.removeFirst()
			q.dropped.Add(1)
		}
		q.items = append(q.items, it)
	}
}

// Pop removes and returns the oldest item; ok is false when the queue is
// empty.
func (q *Queue[T]) Pop() (item T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return item, false
	}
	item = q.items[0]
	q.removeFirst()
	return item, true
}

// Drain removes and returns every item, oldest first (nil when empty).
func (q *Queue[T]) Drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

// Len is the number of items waiting.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Dropped is how many items Push has pushed out of a full queue.
func (q *Queue[T]) Dropped() uint64 { return q.dropped.Load() }

// removeFirst forgets the first item, clearing its slot so that what it
// references can be freed before the backing array is reallocated.
func (q *Queue[T]) removeFirst() {
	var zero T
	q.items[0] = zero
	q.items = q.items[1:]
}
