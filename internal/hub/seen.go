package hub

import (
	"strings"
	"sync"
	"time"
)

// seenBits is how many sequence numbers below a run's newest one its
// record covers: 1,024 (128 bytes), 85 minutes of samples at the default
// 5 s interval. An agent re-sends a sample only while it heads its
// backlog (a publish whose ack was lost, retried after an outage), so a
// duplicate comes right after its first copy in the host's order, and the
// window needs to be nowhere near the backlog's length.
const seenBits = 1024

// seenRuns is how many agent runs (boot ids) are recorded per host: the
// current one and the one before, whose samples a restarted agent's disk
// backlog may still send.
const seenRuns = 2

// seen records the samples ingest accepted by host, boot id and sequence
// number, so one that reaches the hub twice (stored twice in the stream
// after the stream's de-duplication window passed, or replayed at start
// with its copy) is counted once. Its memory is bounded whatever agents
// send: a fixed window per run, two runs per host, and hosts forgotten
// once silent longer than the caller's keep.
// It is safe for concurrent use.
type seen struct {
	mu    sync.Mutex
	hosts map[string]*seenHost
	swept time.Time
}

type seenHost struct {
	// runs[0] is the run last seen.
	runs [seenRuns]seenRun
	last time.Time
}

// seenRun is a bitmap of the sequence numbers in (top-seenBits, top],
// bit seq%seenBits.
type seenRun struct {
	boot string
	top  uint64
	used bool
	bits [seenBits / 64]uint64
}

func newSeen() *seen { return &seen{hosts: map[string]*seenHost{}} }

// repeat records host's sample boot/seq and reports whether it was
// recorded before. A sequence number too far below its run's newest to be
// in the window, or of a run no longer recorded, is unknown and reported
// new: the hub would rather count a sample twice than lose one. Hosts not
// heard from for keep are forgotten (keep <= 0: never).
func (s *seen) repeat(host, boot string, seq uint64, now time.Time, keep time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if keep > 0 && now.Sub(s.swept) > keep/4 {
		s.sweep(now.Add(-keep))
		s.swept = now
	}
	h := s.hosts[host]
	if h == nil {
		// The host may share a message's bytes (metrics.DecodeOwned):
		// a copy does not keep the message alive.
		h = &seenHost{}
		s.hosts[strings.Clone(host)] = h
	}
	h.last = now
	return h.run(boot).mark(seq)
}

func (s *seen) sweep(before time.Time) {
	for host, h := range s.hosts {
		if h.last.Before(before) {
			delete(s.hosts, host)
		}
	}
}

// run returns boot's record, moved to the front; a new boot takes the
// place of the run seen longest ago.
func (h *seenHost) run(boot string) *seenRun {
	i := 0
	for i < seenRuns && (!h.runs[i].used || h.runs[i].boot != boot) {
		i++
	}
	var r seenRun
	if i < seenRuns {
		r = h.runs[i]
	} else {
		i = seenRuns - 1
		r = seenRun{boot: strings.Clone(boot)}
	}
	copy(h.runs[1:i+1], h.runs[:i])
	h.runs[0] = r
	return &h.runs[0]
}

// mark sets seq's bit and reports whether it was set.
func (r *seenRun) mark(seq uint64) bool {
	switch {
	case !r.used:
		r.used, r.top = true, seq
	case seq > r.top:
		// The window moves up: the bits it leaves behind are reused for
		// the numbers it takes in, so clear them.
		if seq-r.top >= seenBits {
			clear(r.bits[:])
		} else {
			for n := r.top + 1; n < seq; n++ {
				r.bits[n/64%(seenBits/64)] &^= 1 << (n % 64)
			}
		}
		r.top = seq
		// seq's own bit is cleared below as it is set.
		r.bits[seq/64%(seenBits/64)] &^= 1 << (seq % 64)
	case r.top-seq >= seenBits:
		return false
	}
	w, b := &r.bits[seq/64%(seenBits/64)], uint64(1)<<(seq%64)
	was := *w&b != 0
	*w |= b
	return was
}

// repeated reports whether host's sample boot/seq was accepted before,
// and counts it as a duplicate if so. A sample without a boot id carries
// no run to tell it by and is never one.
func (in *ingest) repeated(host, boot string, seq uint64) bool {
	if boot == "" {
		return false
	}
	// A host silent for the replay window (and one interval of clock
	// skew) can send no sample older than that again that would not be
	// dropped as too old: its record can go.
	keep := in.window
	if keep > 0 {
		keep += in.ahead
	}
	if !in.seen.repeat(host, boot, seq, time.Now(), keep) {
		return false
	}
	in.mu.Lock()
	in.stats.Dropped[DropDuplicate]++
	in.mu.Unlock()
	return true
}
