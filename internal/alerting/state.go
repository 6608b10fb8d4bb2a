package alerting

// The engine's state in the KV bucket. A state that fits in one message
// is stateKey's value itself, the JSON of alerts.Snapshot, as it always
// was. A larger one (a fleet with thousands of pending GPU alerts passes
// NATS's 1 MB max payload) is gzipped and split into parts of at most
// partSize under one of two sets of keys, engine.a.<i> and engine.b.<i>;
// stateKey then holds a manifest naming the set and the revision of each
// part. A save writes the set the current manifest does not name, then
// the manifest, so a hub that dies mid-save leaves the previous state
// whole; a reader that raced two saves finds a part at another revision
// than its manifest names and reads the manifest again. Both sets are a
// fixed list of keys, overwritten in place (the bucket keeps one revision
// a key), so saving every tick leaves no trail of deleted keys.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/pkg/alerts"
)

const (
	// maxPart is the largest value saved: half of NATS's default max
	// payload. A server configured lower gets parts below its own limit
	// (Persist).
	maxPart = 512 << 10
	// partReads is how often a reader starts over from the manifest when
	// saves keep moving the parts under it.
	partReads = 3
)

// partSet is where a state in parts is, as stateKey's manifest says.
type partSet struct {
	Set       string   `json:"set"`       // "a" or "b"
	Encoding  string   `json:"encoding"`  // of the joined parts: "gzip"
	Revisions []uint64 `json:"revisions"` // of each part, in order
}

// stored is stateKey's value: a state, or where its parts are.
type stored struct {
	alerts.Snapshot
	Parts *partSet `json:"parts,omitempty"`
}

// errMoved: a part is no longer at the revision its manifest names.
var errMoved = errors.New("a part was saved again while it was read")

func partKey(set string, i int) string { return stateKey + "." + set + "." + strconv.Itoa(i) }

// partLimit is the largest part a server with this max payload takes,
// leaving room for the message's subject and headers.
func partLimit(maxPayload int64) int {
	if maxPayload <= 0 {
		return maxPart
	}
	return int(max(min(maxPayload-8<<10, maxPart), 1<<10))
}

// saveState saves snap, the JSON of the engine's snapshot: in stateKey
// when it fits in a part, else in parts.
func (s *Service) saveState(ctx context.Context, snap []byte) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if len(snap) <= s.partSize {
		if _, err := s.kv.Put(ctx, stateKey, snap); err != nil {
			return fmt.Errorf("kv %s: put %s: %w", StateBucket, stateKey, err)
		}
		s.dropParts(ctx, "a", 0)
		s.dropParts(ctx, "b", 0)
		s.partsIn = ""
		return nil
	}
	var z bytes.Buffer
	zw, err := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("gzip alert state: %w", err)
	}
	if _, err := zw.Write(snap); err != nil {
		return fmt.Errorf("gzip alert state: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip alert state: %w", err)
	}
	set := "a"
	if s.partsIn == "a" {
		set = "b"
	}
	ps := partSet{Set: set, Encoding: "gzip"}
	for b := z.Bytes(); len(b) > 0; {
		n := min(len(b), s.partSize)
		key := partKey(set, len(ps.Revisions))
		rev, err := s.kv.Put(ctx, key, b[:n])
		if err != nil {
			return fmt.Errorf("kv %s: put %s: %w", StateBucket, key, err)
		}
		ps.Revisions = append(ps.Revisions, rev)
		b = b[n:]
	}
	// The parts are all written: only now does the manifest name them.
	m, err := json.Marshal(struct {
		Parts partSet `json:"parts"`
	}{ps})
	if err != nil {
		return fmt.Errorf("encode alert state manifest: %w", err)
	}
	if _, err := s.kv.Put(ctx, stateKey, m); err != nil {
		return fmt.Errorf("kv %s: put %s: %w", StateBucket, stateKey, err)
	}
	s.partsIn = set
	s.dropParts(ctx, set, len(ps.Revisions))
	return nil
}

// dropParts deletes the parts of set from keep on that this hub knows of
// (written by it or named by the manifest it read), so a state that shrank
// leaves no stale data behind. A failure costs only space: it is logged.
func (s *Service) dropParts(ctx context.Context, set string, keep int) {
	for i := keep; i < s.partsKnown[set]; i++ {
		if err := s.kv.Delete(ctx, partKey(set, i)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			s.log.Warn("delete an old part of the alert state", "key", partKey(set, i), "err", err)
		}
	}
	s.partsKnown[set] = keep
}

// loadState reads the saved state: its snapshot and the JSON it was saved
// as (nil when none is saved). A state that cannot be read whole (bad
// JSON, a part missing or corrupt) is an error wrapping errUnreadable;
// other errors are NATS's.
func (s *Service) loadState(ctx context.Context) (alerts.Snapshot, []byte, error) {
	for try := 1; ; try++ {
		entry, err := s.kv.Get(ctx, stateKey)
		// A bucket just created with replicas answers once they are up;
		// until then a get finds no responders (a first start on a
		// cluster).
		for errors.Is(err, nats.ErrNoResponders) {
			select {
			case <-ctx.Done():
				return alerts.Snapshot{}, nil, fmt.Errorf("kv %s: get %s: %w", StateBucket, stateKey, err)
			case <-time.After(50 * time.Millisecond):
			}
			entry, err = s.kv.Get(ctx, stateKey)
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return alerts.Snapshot{}, nil, nil
		}
		if err != nil {
			return alerts.Snapshot{}, nil, fmt.Errorf("kv %s: get %s: %w", StateBucket, stateKey, err)
		}
		var st stored
		if err := json.Unmarshal(entry.Value(), &st); err != nil {
			return alerts.Snapshot{}, nil, fmt.Errorf("%w: %s: %w", errUnreadable, stateKey, err)
		}
		if st.Parts == nil {
			return st.Snapshot, entry.Value(), nil
		}
		raw, err := s.readParts(ctx, *st.Parts)
		if errors.Is(err, errMoved) && try < partReads {
			continue
		}
		if err != nil {
			return alerts.Snapshot{}, nil, err
		}
		var snap alerts.Snapshot
		if err := json.Unmarshal(raw, &snap); err != nil {
			return alerts.Snapshot{}, nil, fmt.Errorf("%w: parts in %s: %w", errUnreadable, st.Parts.Set, err)
		}
		s.saveMu.Lock()
		s.partsIn = st.Parts.Set
		s.partsKnown[st.Parts.Set] = max(s.partsKnown[st.Parts.Set], len(st.Parts.Revisions))
		s.saveMu.Unlock()
		return snap, raw, nil
	}
}

// errUnreadable: the saved state is there but cannot be read whole.
var errUnreadable = errors.New("alert state unreadable")

// readParts joins the parts ps names, each at its revision, and unzips
// them.
func (s *Service) readParts(ctx context.Context, ps partSet) ([]byte, error) {
	if ps.Encoding != "gzip" || len(ps.Revisions) == 0 {
		return nil, fmt.Errorf("%w: parts in %q encoded %q", errUnreadable, ps.Set, ps.Encoding)
	}
	var z bytes.Buffer
	for i, rev := range ps.Revisions {
		key := partKey(ps.Set, i)
		e, err := s.kv.GetRevision(ctx, key, rev)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			// Saved again since the manifest was read, or deleted.
			return nil, fmt.Errorf("%w: %s at revision %d: %w", errUnreadable, key, rev, errMoved)
		}
		if err != nil {
			return nil, fmt.Errorf("kv %s: get %s: %w", StateBucket, key, err)
		}
		z.Write(e.Value())
	}
	zr, err := gzip.NewReader(&z)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	return raw, nil
}

// restoreState hands the engine the saved state. No saved state is not an
// error; a state this hub cannot read whole is logged with unreadable and
// skipped (the alerts come back as their conditions hold again). It
// returns the JSON restored, or nil when nothing was.
func (s *Service) restoreState(ctx context.Context, unreadable string) ([]byte, error) {
	snap, raw, err := s.loadState(ctx)
	if errors.Is(err, errUnreadable) {
		s.log.Warn(unreadable, "err", err)
		return nil, nil
	}
	if err != nil || raw == nil {
		return nil, err
	}
	s.engine.Restore(snap)
	return raw, nil
}
