package metrics

import (
	"errors"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzDecode feeds the sample decoder valid encodings, their mutations and
// junk: it must answer a sample or one of its errors, never panic, and a
// sample it accepts must satisfy what Decode promises.
func FuzzDecode(f *testing.F) {
	for _, s := range []*Sample{fullSample(8), fullSample(1), {Host: "h", Boot: "b", TS: 1}} {
		b, err := Encode(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/3])
	}
	newer, _ := msgpack.Marshal(map[string]any{"v": 2, "h": "h", "t": 1, "zz": []any{1, "x"}})
	f.Add(newer)
	f.Add([]byte{})
	f.Add([]byte{0xc1})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})                  // map claiming 4G entries
	f.Add([]byte{0x81, 0xa1, 'g', 0xdd, 0xff, 0xff, 0xff, 0xff}) // gpus array claiming 4G entries
	f.Add([]byte(`{"v":1,"host":"h","ts":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			if s != nil {
				t.Fatalf("sample returned with error %v", err)
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps none of the decode errors", err)
			}
			return
		}
		if s.V < 1 || !ValidToken(s.Host) || s.TS <= 0 {
			t.Fatalf("accepted an invalid sample: v=%d host=%q ts=%d", s.V, s.Host, s.TS)
		}
		// What was accepted encodes again.
		if _, err := Encode(s); err != nil {
			t.Fatalf("accepted sample does not encode: %v", err)
		}
	})
}

// FuzzDecodeObservations does the same for latency pushes, JSON or msgpack.
func FuzzDecodeObservations(f *testing.F) {
	one, _ := msgpack.Marshal(Observation{V: 1, TS: 1, MS: 2})
	many, _ := msgpack.Marshal([]Observation{{V: 1, TS: 1, MS: 2}, {V: 1, TS: 2, MS: 3}})
	for _, b := range [][]byte{
		one, many,
		[]byte(`{"v":1,"ts":1767268800000000000,"ms":45.5}`),
		[]byte(`[{"v":1,"ts":1,"ms":1},{"v":1,"ts":2,"ms":2}]`),
		[]byte(`[`), []byte(`{`), []byte(" "), {}, {0x91}, {0xdd, 0xff, 0xff, 0xff, 0xff},
		[]byte("garbage"),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		obs, err := DecodeObservations(b)
		if err != nil {
			if obs != nil {
				t.Fatalf("observations returned with error %v", err)
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps none of the decode errors", err)
			}
			return
		}
		for i, o := range obs {
			if o.V < 1 || o.TS <= 0 || !(o.MS >= 0) || math.IsInf(o.MS, 0) {
				t.Fatalf("accepted invalid observation [%d]: %+v", i, o)
			}
		}
	})
}
