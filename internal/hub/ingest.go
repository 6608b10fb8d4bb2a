package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysperf/sysperf/internal/lograte"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Drop causes, the keys of Stats.Dropped and Stats.ObservationsDropped.
const (
	DropTooLarge = "too_large"
	DropVersion  = "version"
	DropInvalid  = "invalid"
	// DropSubject: a sample whose host is not the subject's, so one agent
	// cannot overwrite another host's figures.
	DropSubject = "subject_mismatch"
	// DropFuture: a sample stamped more than one interval ahead, which
	// would hold its host's state until the stamp passed.
	DropFuture = "future"
	// DropOld: a sample older than the replay window.
	DropOld = "too_old"
	// DropUnknown: a sample or observation of a host that is not enrolled.
	DropUnknown = "not_enrolled"
	// DropMsgID: a sample carrying another host's Nats-Msg-Id.
	DropMsgID = "msg_id_mismatch"
	// DropDuplicate: a sample already accepted (same host, boot and
	// sequence number), stored twice or replayed with its copy (seen.go).
	DropDuplicate = "duplicate"
)

// Stats are the ingest counters the hub exports on /metrics.
type Stats struct {
	// Samples accepted, including Late ones.
	Samples uint64
	// Late samples were older than their host's newest: kept for history
	// and latency, but not shown as the host's current state.
	Late uint64
	// Dropped samples by cause.
	Dropped map[string]uint64
	// Observations accepted from sysperf.v1.latency.*.
	Observations uint64
	// ObservationsDropped latency messages by cause.
	ObservationsDropped map[string]uint64
	// Hosts is the number of hosts the hub knows.
	Hosts int
	// NonFinite counts NaN and ±Inf values removed from accepted samples
	// (JSON cannot carry them); the rest of each sample is kept.
	NonFinite uint64
}

// ingest decodes samples and observations and keeps each host's newest
// sample. It is safe for concurrent use.
type ingest struct {
	log     *slog.Logger
	history History
	latency Latency
	limit   *lograte.Limiter
	// ahead and window bound a sample's stamp: at most ahead in the
	// future, at most window in the past (0: unbounded).
	ahead, window time.Duration
	// enrolled, when set, holds the hosts (agents) and latency sources
	// (agents and pipelines) allowed; nil lets every host through, as with
	// an external NATS whose permissions the hub does not know.
	enrolled atomic.Pointer[enrolledSet]

	handled atomic.Uint64
	// seen de-duplicates what the stream's window lets through.
	seen *seen

	mu     sync.Mutex
	newest map[string]latest
	stats  Stats

	// decoders are sample's metrics.Decoders: a sample is decoded into
	// the memory of the last one, which only its conversion reads.
	decoders sync.Pool
	// strings are the decoders' strings (metrics.Strings): kept, a
	// string of the message kept the message.
	strings *metrics.Strings
	// spares are the entries the merger gave back.
	spares spares
}

// maxStrings and maxStringBytes bound each generation of the ingest's
// strings: the load tool's 2,000 8-GPU hosts read 20,000 distinct ones
// (each host's name, boot and GPU UUIDs; the rest they share), under
// 1 MB, and a real host's processes and disks add a few dozen each.
const (
	maxStrings     = 1 << 17
	maxStringBytes = 8 << 20
)

// enrolledSet is who may publish, by kind.
type enrolledSet struct{ agents, latency map[string]bool }

func newIngest(log *slog.Logger, history History, latency Latency) *ingest {
	return &ingest{
		log:     log,
		history: history,
		latency: latency,
		limit:   &lograte.Limiter{Every: 10 * time.Second},
		newest:  map[string]latest{},
		seen:    newSeen(),
		strings: metrics.NewStrings(maxStrings, maxStringBytes),
		stats:   Stats{Dropped: map[string]uint64{}, ObservationsDropped: map[string]uint64{}},
	}
}

func dropCause(err error) string {
	switch {
	case errors.Is(err, metrics.ErrTooLarge):
		return DropTooLarge
	case errors.Is(err, metrics.ErrVersion):
		return DropVersion
	default:
		return DropInvalid
	}
}

// sample handles one message of the samples stream. It reports whether the
// sample was accepted; a rejected one is counted and logged, never fatal.
// data is handed over: the sample's strings share it (DecodeOwned), so it
// must never be modified afterwards; a NATS message's Data is its own.
func (in *ingest) sample(subject string, data []byte) bool {
	defer in.handled.Add(1)
	d, _ := in.decoders.Get().(*metrics.Decoder)
	if d == nil {
		d = &metrics.Decoder{Strings: in.strings}
	}
	// s is d's until d goes back: only the envelope and errors (merged),
	// the figures (view.OfIn copies what it keeps) and the host's part
	// (into, which copies the model entries) outlive this call, and
	// history and latency copy what they keep.
	defer in.decoders.Put(d)
	s, err := d.DecodeOwned(data)
	if err == nil && !sampleOf(subject, s.Host) {
		err = fmt.Errorf("sample of host %q on subject %q", s.Host, subject)
		in.drop(DropSubject, subject, len(data), err)
		return false
	}
	if err != nil {
		in.drop(dropCause(err), subject, len(data), err)
		return false
	}
	if cause, err := in.admit(s, time.Now()); err != nil {
		in.drop(cause, subject, len(data), err)
		return false
	}
	if in.repeated(s.Host, s.Boot, s.Seq) {
		return false
	}
	// The one conversion of this sample to the dashboard's units: history
	// keeps its figures and, if it is its host's newest, the merger
	// builds the host's part from them. The figures, what the merger
	// reads of the sample (merged) and the host's part in one entry,
	// reused (spares); the part is built here, while all it reads is in
	// the CPU's cache (see latest).
	l := in.spares.get()
	l.fill(s)
	f := &l.f
	// Before the entry is placed: once it is, the merger may give it
	// back for reuse as soon as a newer sample of its host replaces it
	// (spares), so nothing here reads it after.
	if in.history != nil {
		in.history.Add(f)
	}
	in.mu.Lock()
	in.stats.Samples++
	in.stats.NonFinite += uint64(s.NonFinite())
	placed := false
	if cur, ok := in.newest[s.Host]; !ok || newer(s, cur.s) {
		// Under the lock: a late sample (rare) needs no part. Built from
		// the whole sample: the one kept (merged) lacks the models, which
		// are the decoder's (the part holds them converted).
		key := s.Host
		if !ok {
			// The host's name is the message's bytes (DecodeOwned): a map
			// keeps its first key for good, which would keep that first
			// message alive as long as the host is known.
			key = strings.Clone(key)
		}
		in.newest[key] = latest{s: &l.s, f: f, v: latest{s: s, f: f}.into(&l.v), e: l, sp: &in.spares}
		placed = true
	} else {
		in.stats.Late++
	}
	hosts := len(in.newest)
	in.mu.Unlock()
	if !placed {
		// Read by history only, which is done with it.
		in.spares.put(l, hosts)
	}
	if in.latency != nil {
		in.latency.AddSample(s)
	}
	return true
}

// merged is what the merger reads of a sample the ingest converted and
// built the host's part from (latest.v): the envelope (when it was taken,
// how often its host reports) and errors. The rest is the decoder's
// memory (metrics.Decoder), which the next sample reuses.
func merged(s *metrics.Sample) metrics.Sample {
	return metrics.Sample{
		V: s.V, Host: s.Host, Boot: s.Boot, Seq: s.Seq, TS: s.TS, Interval: s.Interval,
		Errors: s.Errors,
	}
}

// restored handles a replayed sample the history already holds from its
// persisted minutes (history's Covered), known by its Nats-Msg-Id
// (host/boot/seq/key, the host checked by ownMsgID) without decoding it:
// it is counted as an accepted late sample, and nothing else needs it.
func (in *ingest) restored(id string) bool {
	c, ok := in.history.(interface {
		Covered(host, boot string, seq uint64, now time.Time) bool
	})
	if !ok || id == "" {
		return false
	}
	host, rest, _ := strings.Cut(id, "/")
	boot, rest, _ := strings.Cut(rest, "/")
	seq, _, _ := strings.Cut(rest, "/")
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil || !c.Covered(host, boot, n, time.Now()) {
		return false
	}
	if in.repeated(host, boot, n) {
		in.handled.Add(1)
		return true
	}
	in.mu.Lock()
	in.stats.Samples++
	in.stats.Late++
	in.mu.Unlock()
	in.handled.Add(1)
	return true
}

// sampleOf reports whether subject is host's samples subject, without
// building the subject for each sample.
func sampleOf(subject, host string) bool {
	h, ok := strings.CutPrefix(subject, metrics.SampleSubject(""))
	return ok && h == host
}

// admit checks who and when: the host must be enrolled (when the hub
// knows who is), and the stamp within the window around now.
func (in *ingest) admit(s *metrics.Sample, now time.Time) (string, error) {
	if e := in.enrolled.Load(); e != nil && !e.agents[s.Host] {
		return DropUnknown, fmt.Errorf("host %q is not enrolled", s.Host)
	}
	ts := time.Unix(0, s.TS)
	if in.ahead > 0 && ts.After(now.Add(in.ahead)) {
		return DropFuture, fmt.Errorf("stamped %s ahead of the hub's clock (at most %s)", ts.Sub(now).Round(time.Millisecond), in.ahead)
	}
	if in.window > 0 && ts.Before(now.Add(-in.window)) {
		return DropOld, fmt.Errorf("stamped %s ago, before the replay window of %s", now.Sub(ts).Round(time.Second), in.window)
	}
	return "", nil
}

// ownMsgID reports whether a sample's de-duplication id is its own
// host's (metrics.MsgID starts with the host). JetStream de-duplicates
// across the whole stream, so a publisher using another host's id would
// make that host's real sample a "duplicate": such a message is dropped,
// counted and logged as what it is.
func (in *ingest) ownMsgID(subject, id string, size int) bool {
	host, ok := strings.CutPrefix(subject, metrics.SampleSubject(""))
	if id == "" || !ok || strings.HasPrefix(id, host+"/") {
		return true
	}
	in.drop(DropMsgID, subject, size, fmt.Errorf("de-duplication id %q is another host's", id))
	return false
}

// newer reports whether s supersedes cur as its host's state. Within one
// agent run the sequence number orders samples, whatever the clock did;
// across runs the timestamp does.
func newer(s, cur *metrics.Sample) bool {
	if cur == nil {
		return true
	}
	if s.Boot == cur.Boot {
		return s.Seq >= cur.Seq
	}
	return s.TS >= cur.TS
}

func (in *ingest) drop(cause, subject string, size int, err error) {
	in.mu.Lock()
	in.stats.Dropped[cause]++
	in.mu.Unlock()
	if ok, suppressed := in.limit.Allow("sample/"+cause, time.Now()); ok {
		in.log.Warn("sample dropped", "cause", cause, "subject", subject, "bytes", size, "err", err, "suppressed", suppressed)
	}
}

// observations handles one latency push.
func (in *ingest) observations(subject string, data []byte) {
	host, stage, ok := metrics.ParseLatencySubject(subject)
	var obs []metrics.Observation
	var err error
	cause := DropSubject
	if !ok {
		err = fmt.Errorf("bad latency subject %q", subject)
	} else if e := in.enrolled.Load(); e != nil && !e.latency[host] {
		cause, err = DropUnknown, fmt.Errorf("host %q is not enrolled", host)
	} else if obs, err = metrics.DecodeObservations(data); err != nil {
		cause = dropCause(err)
	}
	if err != nil {
		in.mu.Lock()
		in.stats.ObservationsDropped[cause]++
		in.mu.Unlock()
		if ok, suppressed := in.limit.Allow("latency/"+cause, time.Now()); ok {
			in.log.Warn("latency observations dropped", "cause", cause, "subject", subject, "bytes", len(data), "err", err, "suppressed", suppressed)
		}
		return
	}
	in.mu.Lock()
	in.stats.Observations += uint64(len(obs))
	in.mu.Unlock()
	if in.latency != nil {
		in.latency.AddObservations(host, stage, obs)
	}
}

// snapshot returns each host's newest sample with its figures and forgets
// hosts silent since before forget (their samples have left the stream
// too). The samples and figures are shared and must not be modified;
// they are read by one merger, which gives each back for reuse once a
// newer sample of its host replaces it (spares).
func (in *ingest) snapshot(forget time.Time) map[string]latest {
	in.mu.Lock()
	defer in.mu.Unlock()
	for h, l := range in.newest {
		if time.Unix(0, l.s.TS).Before(forget) {
			delete(in.newest, h)
		}
	}
	return maps.Clone(in.newest)
}

// Stats returns a copy of the counters.
func (in *ingest) Stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.stats
	st.Dropped = maps.Clone(in.stats.Dropped)
	st.ObservationsDropped = maps.Clone(in.stats.ObservationsDropped)
	st.Hosts = len(in.newest)
	return st
}

// A read-back's pulls ask for at most this many messages and bytes
// (live.go), so a burst of large messages is buffered in the hub a few
// MiB at a time.
const (
	fetchMessages = 1024
	fetchBytes    = 4 << 20
)
