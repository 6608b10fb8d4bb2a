package sources

import "sync"

// health is a source's last answer for /metrics (sysperf_source_up). It has
// a lock of its own because a poll holds the source's lock across its
// network calls, and a scrape must not wait for a slow database.
type health struct {
	mu     sync.Mutex
	up     bool
	reason string
}

func (h *health) set(up bool, reason string) {
	h.mu.Lock()
	h.up, h.reason = up, reason
	h.mu.Unlock()
}

// Up says whether the last poll reached the server, and if not why.
func (h *health) Up() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up, h.reason
}
