// Package lograte holds back repeats of a log line: one line per key and
// interval gets through, and the next one that does says how many were
// held back. A flood (garbage at line rate, a slow consumer dropping
// thousands of messages a second, a stranger failing to authenticate in a
// loop) then costs a line per interval, not a line per event.
package lograte

import (
	"sync"
	"time"
)

// maxKeys bounds the keys a Limiter remembers: keys are meant to be few
// (kinds of events, not their details); a flood of distinct ones starts
// over rather than grow without end.
const maxKeys = 1000

// Limiter lets one event per key through every Every. The zero value
// lets every event through; it is safe for concurrent use.
type Limiter struct {
	Every time.Duration

	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

// Allow reports whether an event of key at now may be logged and, when it
// may, how many of key's events were held back since the last one that
// was.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil || len(l.last) > maxKeys {
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	if t, seen := l.last[key]; seen && now.Sub(t) < l.Every {
		l.held[key]++
		return false, 0
	}
	held = l.held[key]
	l.last[key], l.held[key] = now, 0
	return true, held
}
