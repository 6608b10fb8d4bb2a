// Package logtest gives tests a log they can read while the code under
// test is still writing to it from its own goroutines (NATS callbacks,
// pollers, senders). It is for tests only: no non-test code imports it.
package logtest

import (
	"bytes"
	"log/slog"
	"sync"
)

// Buffer collects what is written to it. Unlike a bare bytes.Buffer it is
// safe to Write and read at once, which is what a test does when it reads
// a logger's output while a component goroutine still logs.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// New returns a text logger that keeps records at level and above in a new
// Buffer, and that Buffer.
func New(level slog.Leveler) (*slog.Logger, *Buffer) {
	buf := &Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})), buf
}
