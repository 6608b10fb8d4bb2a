package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

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
// schema version, a valid host token and a timestamp.
func Decode(b []byte) (*Sample, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("decode sample: %d bytes: %w", len(b), ErrTooLarge)
	}
	var s Sample
	if err := msgpack.Unmarshal(b, &s); err != nil {
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
	return &s, nil
}

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
		if o.TS <= 0 || o.MS < 0 || o.MS != o.MS {
			return nil, fmt.Errorf("decode observations: [%d] ts=%d ms=%v: %w", i, o.TS, o.MS, ErrInvalid)
		}
	}
	return obs, nil
}

func decodeMsgpackObservations(b []byte) ([]Observation, error) {
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
