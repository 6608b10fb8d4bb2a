package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

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
