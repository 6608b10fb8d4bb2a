package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxMessage is the largest sample or observation batch a decoder accepts.
// A host with many GPUs and processes encodes to a few KiB; anything near
// this is garbage or an attack.
const MaxMessage = 1 << 20

// Decoding errors, for callers that count drops by cause.
var (
	ErrTooLarge = errors.New("message too large")
	ErrVersion  = errors.New("missing or unsupported schema version")
	ErrInvalid  = errors.New("invalid message")
)

// Encode returns the msgpack encoding of s. It stamps the schema version.
func Encode(s *Sample) ([]byte, error) {
	s.V = Version
	b, err := msgpack.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode sample: %w", err)
	}
	return b, nil
}

// Decode parses a msgpack sample and checks what the hub relies on: a
// schema version, a valid host token, a timestamp, and finite numbers: a
// NaN or ±Inf becomes absent (see finite.go) and NonFinite counts them.
func Decode(b []byte) (*Sample, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("decode sample: %d bytes: %w", len(b), ErrTooLarge)
	}
	// The reader bounds every length itself (see containerLen), and
	// checks the shape of what it hands to the library (skip).
	s := &Sample{}
	r := reader{b: b, str: string(b)}
	if err := r.sample(s); err != nil {
		return nil, fmt.Errorf("decode sample: %w: %w", ErrInvalid, err)
	}
	if s.V < 1 {
		return nil, fmt.Errorf("decode sample: v=%d: %w", s.V, ErrVersion)
	}
	if !ValidToken(s.Host) {
		return nil, fmt.Errorf("decode sample: host %q: %w", s.Host, ErrInvalid)
	}
	if s.TS <= 0 {
		return nil, fmt.Errorf("decode sample: ts=%d: %w", s.TS, ErrInvalid)
	}
	s.nonFinite = s.dropNonFinite()
	return s, nil
}

// NonFinite is how many NaN and ±Inf values Decode removed from s (see
// finite.go); the rest of the sample is kept.
func (s *Sample) NonFinite() int { return s.nonFinite }

// DecodeObservations parses a latency push: one observation or an array of
// them, as JSON (a body starting with '{' or '[') or as msgpack.
func DecodeObservations(b []byte) ([]Observation, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("decode observations: %d bytes: %w", len(b), ErrTooLarge)
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	var obs []Observation
	var err error
	switch {
	case len(trimmed) == 0:
		return nil, fmt.Errorf("decode observations: empty body: %w", ErrInvalid)
	case trimmed[0] == '{':
		var o Observation
		err = json.Unmarshal(trimmed, &o)
		obs = []Observation{o}
	case trimmed[0] == '[':
		err = json.Unmarshal(trimmed, &obs)
	default:
		obs, err = decodeMsgpackObservations(b)
	}
	if err != nil {
		return nil, fmt.Errorf("decode observations: %w: %w", ErrInvalid, err)
	}
	for i, o := range obs {
		if o.V < 1 {
			return nil, fmt.Errorf("decode observations: [%d] v=%d: %w", i, o.V, ErrVersion)
		}
		// NaN and +Inf are no latency, and JSON, which the hub serves,
		// cannot carry them.
		if o.TS <= 0 || o.MS < 0 || math.IsNaN(o.MS) || math.IsInf(o.MS, 0) {
			return nil, fmt.Errorf("decode observations: [%d] ts=%d ms=%v: %w", i, o.TS, o.MS, ErrInvalid)
		}
	}
	return obs, nil
}

func decodeMsgpackObservations(b []byte) ([]Observation, error) {
	if err := checkShape(b); err != nil {
		return nil, err
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	code, err := dec.PeekCode()
	if err != nil {
		return nil, err
	}
	if isMsgpackArray(code) {
		var obs []Observation
		err = dec.Decode(&obs)
		return obs, err
	}
	var o Observation
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	return []Observation{o}, nil
}

func isMsgpackArray(code byte) bool {
	return (code >= 0x90 && code <= 0x9f) || code == 0xdc || code == 0xdd
}

// Bounds of checkShape. The schema nests a few levels (Extra may hold a
// model server's JSON, hence the margin) and a busy host's sample has a
// few thousand items.
const (
	maxDepth = 64
	maxItems = 1 << 17
)

// checkShape walks the msgpack value at the start of b without building it
// and refuses what msgpack would trust blindly: it allocates a container
// or string of the length a header claims before reading the contents, so
// eight bytes claiming 4G GPUs would exhaust memory, and a million nested
// arrays would exhaust the stack. A container may claim no more elements
// than bytes remain, all containers together at most maxItems.
func checkShape(b []byte) error {
	w := shapeWalker{b: b}
	return w.value(0)
}

type shapeWalker struct {
	b     []byte
	off   int
	items int
}

// fixedSize is the payload size of msgpack codes whose size the code alone
// gives: numbers and fixext.
func fixedSize(c byte) (int, bool) {
	switch c {
	case 0xcc, 0xd0:
		return 1, true
	case 0xcd, 0xd1:
		return 2, true
	case 0xca, 0xce, 0xd2:
		return 4, true
	case 0xcb, 0xcf, 0xd3:
		return 8, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type byte + data
		return 1 + 1<<(c-0xd4), true
	}
	return 0, false
}

func (w *shapeWalker) value(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if w.off >= len(w.b) {
		return errors.New("unexpected end of message")
	}
	c := w.b[w.off]
	w.off++
	var (
		size, items int // payload bytes to skip, child values to walk
		err         error
	)
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
	case c <= 0x8f:
		items = 2 * int(c&0x0f)
	case c <= 0x9f:
		items = int(c & 0x0f)
	case c <= 0xbf:
		size = int(c & 0x1f)
	case c == 0xc4, c == 0xd9:
		size, err = w.length(1)
	case c == 0xc5, c == 0xda:
		size, err = w.length(2)
	case c == 0xc6, c == 0xdb:
		size, err = w.length(4)
	case c == 0xc7, c == 0xc8, c == 0xc9: // ext: length, type byte, data
		size, err = w.length(1 << (c - 0xc7))
		size++
	case c == 0xdc:
		items, err = w.length(2)
	case c == 0xdd:
		items, err = w.length(4)
	case c == 0xde:
		items, err = w.length(2)
		items *= 2
	case c == 0xdf:
		items, err = w.length(4)
		items *= 2
	default:
		n, ok := fixedSize(c)
		if !ok {
			return fmt.Errorf("invalid code 0x%02x at byte %d", c, w.off-1)
		}
		size = n
	}
	if err != nil {
		return err
	}
	if rest := len(w.b) - w.off; size > rest || items > rest {
		return fmt.Errorf("code 0x%02x at byte %d claims %d bytes, %d items; %d bytes remain", c, w.off-1, size, items, rest)
	}
	w.off += size
	if w.items += items; w.items > maxItems {
		return fmt.Errorf("more than %d items", maxItems)
	}
	for range items {
		if err := w.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// length reads a big-endian length of n bytes.
func (w *shapeWalker) length(n int) (int, error) {
	if len(w.b)-w.off < n {
		return 0, errors.New("unexpected end of message")
	}
	l := 0
	for _, c := range w.b[w.off : w.off+n] {
		l = l<<8 | int(c)
	}
	w.off += n
	return l, nil
}
