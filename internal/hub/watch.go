package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// ingestCheck is how often the hub checks that its streams still exist
// and its store has room.
const ingestCheck = 2 * time.Second

// lossHold is how long /healthz stays 503 after the hub found one of its
// streams recreated empty or purged: the data is gone, there is nothing to
// repair, and nobody has to acknowledge it, but a probe every minute or
// two must see it, not only the log.
const lossHold = 10 * time.Minute

// watchIngest keeps ingest honest: a connected NATS is not enough if a
// stream is gone (deleted by hand, or lost with the store) or the store
// is full. /healthz says so until it is repaired.
func (h *Hub) watchIngest(ctx context.Context) {
	t := time.NewTicker(ingestCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.checkIngest(ctx)
		}
	}
}

// checkIngest recreates a vanished stream, logging an ERROR
// with what was lost, and sets the ingest part of the health check.
func (h *Hub) checkIngest(ctx context.Context) {
	if !h.nc.IsConnected() {
		return // health already says why
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := h.repairIngest(ctx)
	if err == nil {
		err = h.storeRoom(ctx)
	}
	if err == nil {
		err = h.streamWatch().lost(time.Now())
	}
	prev := h.ingestDown.Load()
	switch {
	case err == nil && prev != nil:
		h.log.Info("ingest healthy again", "was", *prev)
		h.ingestDown.Store(nil)
	case err != nil:
		if prev == nil || (*prev).Error() != err.Error() {
			h.log.Error("ingest", "err", err)
		}
		h.ingestDown.Store(&err)
	}
}

// streamWatch is the hub's record of its streams, made on first use.
func (h *Hub) streamWatch() *streams {
	h.streamsOnce.Do(func() {
		path := ""
		if h.cfg.DataDir != "" {
			path = filepath.Join(h.cfg.DataDir, "streams.json")
		}
		h.streams = newStreams(path, h.log)
	})
	return h.streams
}

// repairIngest recreates a stream that vanished. Ingest itself needs
// no repair: samples come on a subscription, which a stream deleted or
// recreated does not touch (the samples published meanwhile, which no
// stream stored, still reach the hub), and a gap is read back from
// whichever stream is there (live.go).
func (h *Hub) repairIngest(ctx context.Context) error {
	h.ingestMu.Lock()
	defer h.ingestMu.Unlock()
	fresh, err := h.streamWatch().check(ctx, h.js, func(ctx context.Context) error {
		// While it is recreated, /healthz says why.
		h.ingestDown.Store(ptr(fmt.Errorf("samples stream %s vanished; recreating it", metrics.StreamSamples)))
		_, err := natsx.EnsureSamplesStream(ctx, h.js, h.streamConfig())
		return err
	})
	if err != nil {
		return err
	}
	if fresh {
		h.log.Info("samples stream recreated; live samples go on", "stream", metrics.StreamSamples)
	}
	return nil
}

// storeRoom fails when JetStream's store is full, or nearly (the largest
// message would not fit): new samples are then refused by the server and
// lost unless agents keep them.
func (h *Hub) storeRoom(ctx context.Context) error {
	var used, limit int64
	if h.emb != nil {
		var err error
		if used, limit, err = h.emb.Store(); err != nil {
			return err
		}
	} else {
		ai, err := h.js.AccountInfo(ctx)
		if err != nil {
			return fmt.Errorf("jetstream account info: %w", err)
		}
		used, limit = int64(ai.Store), ai.Limits.MaxStore
	}
	if limit > 0 && used+natsx.MaxMsgSize >= limit {
		return fmt.Errorf("JetStream store full (%d of %d bytes): new samples, history and alert state are refused and lost", used, limit)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// kept is what the hub last saw of one of its streams: enough to tell
// that it was recreated (another creation time, a sequence gone back) or
// emptied (every message gone at once, which its limits do not explain).
type kept struct {
	Created   time.Time `json:"created"`
	FirstSeq  uint64    `json:"first_seq"`
	LastSeq   uint64    `json:"last_seq"`
	Msgs      uint64    `json:"msgs"`
	Bytes     uint64    `json:"bytes"`
	FirstTime time.Time `json:"first_time"`
	LastTime  time.Time `json:"last_time"`
	// cfg recreates a stream that vanished. It is not saved: at start each
	// component declares its own streams again.
	cfg jetstream.StreamConfig
}

// ownStream reports whether a stream is one the hub keeps: the samples
// and alert streams, the history's, and the alert KV buckets'.
func ownStream(name string) bool {
	return strings.HasPrefix(name, "SYSPERF_") || strings.HasPrefix(name, "KV_SYSPERF_")
}

// streams watches every stream the hub keeps. It recreates one that
// vanished (with the configuration it last had) and notices one that came
// back empty, also across a restart: what it saw is saved in path
// (<data-dir>/streams.json), so a stream the server recreated empty after
// finding its files corrupt at start is told from a new one.
type streams struct {
	path string
	log  *slog.Logger
	// hold is how long a loss keeps /healthz at 503 (lossHold).
	hold time.Duration

	mu        sync.Mutex
	seen      map[string]kept
	loaded    bool
	saved     time.Time
	loss      error
	lossUntil time.Time
	// capped are the streams found at their byte cap short of their age
	// limit this run, each warned of once.
	capped map[string]bool
}

func newStreams(path string, log *slog.Logger) *streams {
	return &streams{path: path, log: log, hold: lossHold, seen: map[string]kept{}, capped: map[string]bool{}}
}

// held is how much time a stream holds, from its oldest message to its
// newest, as last seen; false before it was seen with a message.
func (s *streams) held(name string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.seen[name]
	if !ok || k.Msgs == 0 {
		return 0, false
	}
	return k.LastTime.Sub(k.FirstTime), true
}

// lost is the last loss found while /healthz still reports it.
func (s *streams) lost(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loss != nil && now.Before(s.lossUntil) {
		return s.loss
	}
	return nil
}

// check looks at each of the hub's streams once. A vanished one is
// recreated: the samples stream by samples (the hub's own configuration),
// the others with the one they had. It reports whether the samples stream
// is new since the last check (recreated here, or found reset), which is
// logged.
func (s *streams) check(ctx context.Context, js jetstream.JetStream, samples func(context.Context) error) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		s.load()
	}
	now := time.Now()
	present := map[string]bool{}
	fresh := false
	list := js.ListStreams(ctx)
	for info := range list.Info() {
		name := info.Config.Name
		if !ownStream(name) {
			continue
		}
		present[name] = true
		if s.observe(name, info, now) && name == metrics.StreamSamples {
			fresh = true
		}
		s.short(name)
	}
	if err := list.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		// Not knowing which exist, recreate none.
		return false, fmt.Errorf("list streams: %w", err)
	}
	for name, k := range s.seen {
		if present[name] {
			continue
		}
		if name == metrics.StreamSamples || k.cfg.Name != "" {
			s.log.Error("stream vanished: every message it held is lost; recreating it empty",
				"stream", name, "holding", k.cfg.Description, "messages", k.Msgs, "first_seq", k.FirstSeq, "last_seq", k.LastSeq,
				"from", k.FirstTime, "to", k.LastTime)
		}
		var err error
		switch {
		case name == metrics.StreamSamples:
			err = samples(ctx)
			fresh = true
		case k.cfg.Name != "":
			_, err = js.CreateStream(ctx, k.cfg)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				err = nil // another hub on the same NATS was first
			}
		default:
			// Seen before a restart, and no component declared it again:
			// the hub no longer keeps it.
			s.log.Info("stream no longer kept", "stream", name)
			delete(s.seen, name)
			continue
		}
		if err != nil {
			return fresh, fmt.Errorf("stream %s vanished and could not be recreated: %w", name, err)
		}
		st, err := js.Stream(ctx, name)
		if err != nil {
			return fresh, fmt.Errorf("stream %s recreated: %w", name, err)
		}
		s.seen[name] = keep(st.CachedInfo())
	}
	if now.Sub(s.saved) >= 30*time.Second || fresh {
		s.save(now)
	}
	return fresh, nil
}

func keep(info *jetstream.StreamInfo) kept {
	return kept{
		Created: info.Created, FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq,
		Msgs: info.State.Msgs, Bytes: info.State.Bytes, FirstTime: info.State.FirstTime, LastTime: info.State.LastTime,
		cfg: info.Config,
	}
}

// observe records a stream's state and reports (an ERROR, and /healthz
// for s.hold) what it lost since the last look: everything, if it was
// recreated or emptied. It reports whether the stream was recreated since
// this run last saw it (not since the last run: what this run consumes
// was already read from the stream as it is now).
func (s *streams) observe(name string, info *jetstream.StreamInfo, now time.Time) bool {
	cur := keep(info)
	prev, ok := s.seen[name]
	s.seen[name] = cur
	if !ok {
		return false
	}
	var how string
	recreated := !cur.Created.Equal(prev.Created) || cur.LastSeq < prev.LastSeq
	switch {
	case prev.Msgs == 0:
		return recreated && prev.cfg.Name != "" // nothing was lost
	case recreated:
		how = "was recreated empty (deleted, or its files were lost or corrupt)"
	case cur.FirstSeq > prev.LastSeq && !limitsExplain(prev, cur, now):
		how = "was purged"
	default:
		return false
	}
	s.loss = fmt.Errorf("stream %s %s: its %d messages from %s to %s (%s) are lost",
		name, how, prev.Msgs, prev.FirstTime.UTC().Format(time.RFC3339), prev.LastTime.UTC().Format(time.RFC3339), cur.cfg.Description)
	s.lossUntil = now.Add(s.hold)
	s.log.Error("stream lost its messages", "stream", name, "how", how, "holding", cur.cfg.Description,
		"messages", prev.Msgs, "first_seq", prev.FirstSeq, "last_seq", prev.LastSeq, "from", prev.FirstTime, "to", prev.LastTime,
		"healthz_503_for", s.hold)
	return recreated && prev.cfg.Name != ""
}

// short warns, once per stream and run, when a stream's byte cap rather
// than its age limit decides what it keeps: each message stored then
// removes the oldest, so a restart's replay and a read-back reach back
// only as far as the stream still holds. The 4 GiB default of the samples
// stream holds about 77 minutes of 2,000 8-GPU hosts against a 24 h
// retention, which nothing else would tell the operator. It says how many
// bytes the age limit needs at the rate the stream holds now (the rate of
// storing, not of the samples' own times: just after a backlog it reads
// high).
func (s *streams) short(name string) {
	k := s.seen[name]
	c := k.cfg
	if c.MaxBytes <= 0 || c.MaxAge <= 0 || k.Msgs == 0 || s.capped[name] {
		return
	}
	// At the cap the stream is within a message of it, and has removed
	// messages to stay there.
	room := min(uint64(natsx.MaxMsgSize), uint64(c.MaxBytes)/4)
	held := k.LastTime.Sub(k.FirstTime)
	if k.Bytes+room < uint64(c.MaxBytes) || k.FirstSeq <= 1 || held >= c.MaxAge*9/10 {
		return
	}
	s.capped[name] = true
	need := uint64(float64(k.Bytes) * c.MaxAge.Seconds() / max(held.Seconds(), 1))
	args := []any{"stream", name, "holding", c.Description, "keeps", held.Round(time.Second), "max_age", c.MaxAge,
		"max_bytes", c.MaxBytes, "bytes_for_max_age", need}
	if name == metrics.StreamSamples {
		args = append(args, "raise", "--stream-max-bytes (and the JetStream store, --nats-max-store, if smaller)")
	}
	s.log.Warn("stream at its byte cap before its age limit: the oldest messages go to make room, so it keeps less time than it is meant to", args...)
}

// limitsExplain reports whether the stream's own limits may have removed
// every message it held before: by age, by count, or by bytes to make room
// for the new ones.
func limitsExplain(prev, cur kept, now time.Time) bool {
	c := cur.cfg
	added := cur.LastSeq - prev.LastSeq
	return c.MaxAge > 0 && now.Sub(prev.LastTime) >= c.MaxAge ||
		c.MaxMsgs > 0 && added >= uint64(c.MaxMsgs) ||
		c.MaxBytes > 0 && cur.Bytes+prev.Bytes > uint64(c.MaxBytes) ||
		c.MaxMsgsPerSubject > 0 && added > 0
}

// load reads what the last run saw; a missing or unreadable file means
// nothing is known.
func (s *streams) load() {
	s.loaded = true
	if s.path == "" {
		return
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = json.Unmarshal(b, &s.seen)
	}
	if err != nil {
		s.log.Warn("streams seen by the last run unreadable: a stream lost while the hub was down will not be noticed",
			"path", s.path, "err", err)
		s.seen = map[string]kept{}
	}
}

// save writes what was seen, atomically. It is written every 30 s, not
// at each check: a restart compares against a state at most that old,
// which still tells a recreated stream by its creation time.
func (s *streams) save(now time.Time) {
	if s.path == "" {
		return
	}
	s.saved = now
	b, err := json.Marshal(s.seen)
	if err == nil {
		tmp := s.path + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, s.path)
		}
	}
	if err != nil {
		s.log.Warn("save the streams seen", "path", s.path, "err", err)
	}
}
