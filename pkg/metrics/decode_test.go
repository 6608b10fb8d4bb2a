package metrics

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// healthy adds every GPU health detail the agent can send, so the
// comparisons below cover the parts Decode hands to the library as well.
func healthy(s *Sample) *Sample {
	g := &s.GPUs[0]
	g.Persistence, g.MIGMode = ptr(true), ptr(true)
	g.Driver, g.CUDA, g.VBIOS = "550.54.15", "12.4", "96.00.89.00.01"
	g.XIDs = []XID{{Code: 79, TS: 1767268800000000000, Count: 2, GPUInstance: ptr(uint32(1))}}
	g.ECC = &ECC{Enabled: ptr(true), VolatileCorrected: ptr(uint64(3)), RemapPending: ptr(false)}
	g.PCIe = &PCIe{Gen: ptr(5), MaxGen: ptr(5), Width: ptr(16), TxBps: ptr(1e9), RxBps: ptr(2e9), Degraded: ptr(false)}
	g.NVLinks = []NVLink{{Link: 0, Up: ptr(true), TxBps: ptr(5e9)}, {Link: 1, Up: ptr(false)}}
	g.MIG = []MIGInstance{{GPUInstance: 1, ComputeInstance: 0, UUID: "MIG-1", MemUsed: ptr(uint64(1 << 30)),
		Processes: []Process{{PID: 4242, MemUsed: ptr(uint64(1 << 20)), SMUtil: ptr(3.0)}}}}
	g.SMActive, g.SMOccupancy, g.TensorActive = ptr(50.0), ptr(25.0), ptr(12.5)
	s.GPUs[1].Processes = nil // the driver could not list them
	s.GPUs[2].Processes = []Process{}
	return s
}

// The hand-written decoder must read exactly what msgpack's reflection
// reads, field for field, for every shape the agent sends.
func TestDecodeMatchesLibrary(t *testing.T) {
	for name, s := range map[string]*Sample{
		"8 GPUs":        fullSample(8),
		"health":        healthy(fullSample(4)),
		"bare":          {Host: "h", Boot: "b", TS: 1},
		"empty parts":   {Host: "h", TS: 1, System: &System{}, GPUs: []GPU{}, Models: map[string]Model{}, Inference: &Inference{}, Errors: map[string]string{}},
		"no inference":  {Host: "h", TS: 1, Inference: &Inference{Histograms: map[string]Histogram{"rtdetr": {Count: 1}}}},
		"negative ints": {Host: "h", TS: 1, GPUs: []GPU{{Index: -1, PState: ptr(-3)}}, Models: map[string]Model{"x": {SlotsActive: ptr(-1)}}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			decodeLikeLibrary(t, b)
		})
	}
}

// Integers where floats are expected, floats as float32, unknown keys at
// every level and nil where a value may be absent read as msgpack reads
// them.
func TestDecodeLenientLikeLibrary(t *testing.T) {
	b := encodeMap(t, map[string]any{
		"v": 1, "h": "h", "t": 5, "zz": map[string]any{"deep": []any{1, "x"}},
		"s": map[string]any{"c": 12, "pc": []any{1, float32(2.5), uint64(3)}, "mu": 7, "d": []any{map[string]any{"m": "/", "u": 1, "new": true}}, "l1": nil},
		"g": []any{map[string]any{"i": 0, "ut": uint8(40), "tc": float32(38.5), "p": nil, "tr": []any{"a"}, "future": []any{1}, "vu": nil}},
		"m": map[string]any{"llm": map[string]any{"s": "healthy", "g": map[string]any{"x": 1}, "x": map[string]any{"k": []any{1.5, "v"}}, "pid": []any{1, 2}}},
		"n": map[string]any{"h": map[string]any{"r": map[string]any{"c": 3, "s": 0.5, "b": []any{map[string]any{"le": 1, "c": 3}}}}, "c": map[string]any{"images": 10}},
		"e": map[string]any{"gpu": "nvml: timeout"},
	})
	got := decodeLikeLibrary(t, b)
	if *got.GPUs[0].Util != 40 || got.System.PerCore[1] != 2.5 || got.GPUs[0].Processes != nil || got.GPUs[0].MemUsed != nil {
		t.Fatalf("decoded %+v", got.GPUs[0])
	}
}

// A value of the wrong kind is refused with ErrInvalid, naming the field.
func TestDecodeRefusesWrongKinds(t *testing.T) {
	for name, m := range map[string]map[string]any{
		"float as string": {"v": 1, "h": "h", "t": 1, "g": []any{map[string]any{"ut": "hot"}}},
		"gpus as map":     {"v": 1, "h": "h", "t": 1, "g": map[string]any{"a": 1}},
		"host as number":  {"v": 1, "h": 5, "t": 1},
		"float as uint":   {"v": 1, "h": "h", "t": 1, "s": map[string]any{"mu": 1.5}},
	} {
		_, err := Decode(encodeMap(t, m))
		if err == nil || !strings.Contains(err.Error(), ErrInvalid.Error()) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
}

// NaN and ±Inf leave a sample at decode: a pointer becomes nil, a map
// entry goes, a per-core list with a bad core goes whole, a plain float
// becomes 0; the rest of the sample stays, and NonFinite counts them.
func TestDecodeRemovesNonFiniteNumbers(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	s := &Sample{
		Host: "h", TS: 1,
		System: &System{
			CPUPercent: &nan,
			Load1:      ptr(0.5),
			PerCore:    []float64{1, nan},
		},
		GPUs: []GPU{{Util: &inf, Temp: ptr(40.0), Processes: []Process{{SMUtil: &nan}}}},
		Models: map[string]Model{"nemotron": {
			Status: "healthy",
			Gauges: map[string]float64{"llamacpp:tokens_per_second": nan, "llamacpp:requests_processing": 1},
			Extra:  map[string]any{"gpu_utilization": inf, "nested": map[string]any{"x": nan, "y": "ok"}},
		}},
		Inference: &Inference{Histograms: map[string]Histogram{"rtdetr": {Count: 3, Sum: nan}}},
	}
	got, err := Decode(mustEncode(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if n := got.NonFinite(); n != 8 {
		t.Fatalf("removed %d values, want 8", n)
	}
	m := got.Models["nemotron"]
	switch {
	case got.System.CPUPercent != nil, *got.System.Load1 != 0.5, got.System.PerCore != nil:
		t.Fatalf("system %+v", got.System)
	case got.GPUs[0].Util != nil, *got.GPUs[0].Temp != 40, got.GPUs[0].Processes[0].SMUtil != nil:
		t.Fatalf("gpu %+v", got.GPUs[0])
	case len(m.Gauges) != 1 || m.Gauges["llamacpp:requests_processing"] != 1:
		t.Fatalf("gauges %v", m.Gauges)
	case len(m.Extra) != 1 || len(m.Extra["nested"].(map[string]any)) != 1:
		t.Fatalf("extra %v", m.Extra)
	case got.Inference.Histograms["rtdetr"].Sum != 0 || got.Inference.Histograms["rtdetr"].Count != 3:
		t.Fatalf("histogram %+v", got.Inference.Histograms["rtdetr"])
	}
	if _, err := json.Marshal(got); err != nil {
		t.Fatalf("a decoded sample does not encode as JSON: %v", err)
	}
	clean, err := Decode(mustEncode(t, fullSample(8)))
	if err != nil || clean.NonFinite() != 0 {
		t.Fatalf("a finite sample: %d removed, err %v", clean.NonFinite(), err)
	}
}

// Every float of the contract, set to NaN, is gone after Decode: a new
// float field that the finiteness pass misses fails here.
func TestDecodeLeavesNoNonFinite(t *testing.T) {
	s := healthy(fullSample(3))
	s.GPUs[1].Processes = []Process{{PID: 1}}
	s.Models["rtdetr"].Extra["list"] = []any{1.0, "x"}
	var set func(v reflect.Value) int
	set = func(v reflect.Value) int {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() && v.Type().Elem().Kind() == reflect.Float64 {
				v.Set(reflect.New(v.Type().Elem()))
			}
			if v.IsNil() {
				return 0
			}
			return set(v.Elem())
		case reflect.Float64:
			v.SetFloat(math.NaN())
			return 1
		case reflect.Struct:
			n := 0
			for i := range v.NumField() {
				if v.Field(i).CanSet() {
					n += set(v.Field(i))
				}
			}
			return n
		case reflect.Slice:
			n := 0
			for i := range v.Len() {
				n += set(v.Index(i))
			}
			return n
		case reflect.Map:
			n := 0
			for _, k := range v.MapKeys() {
				e := reflect.New(v.Type().Elem()).Elem()
				e.Set(v.MapIndex(k))
				if e.Kind() == reflect.Interface {
					if f, ok := e.Interface().(float64); ok && !math.IsNaN(f) {
						e.Set(reflect.ValueOf(math.NaN()))
						n++
					} else if l, ok := e.Interface().([]any); ok {
						l[0] = math.NaN()
						n++
					}
				} else {
					n += set(e)
				}
				v.SetMapIndex(k, e)
			}
			return n
		}
		return 0
	}
	planted := set(reflect.ValueOf(s))
	got, err := Decode(mustEncode(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if got.NonFinite() == 0 || planted < 50 {
		t.Fatalf("planted %d, removed %d", planted, got.NonFinite())
	}
	if _, err := json.Marshal(got); err != nil {
		t.Fatalf("NaN left after Decode: %v", err)
	}
}

func mustEncode(t testing.TB, s *Sample) []byte {
	t.Helper()
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// GPUs' process lists share one chunk; growing one must not write into
// the next GPU's.
func TestDecodedProcessListsAreIndependent(t *testing.T) {
	s, err := Decode(mustEncode(t, fullSample(2)))
	if err != nil {
		t.Fatal(err)
	}
	next := s.GPUs[1].Processes[0]
	s.GPUs[0].Processes = append(s.GPUs[0].Processes, Process{PID: 99})
	if !reflect.DeepEqual(s.GPUs[1].Processes[0], next) || len(s.GPUs[0].Processes) != 3 {
		t.Fatalf("GPU 1's processes changed: %+v", s.GPUs[1].Processes)
	}
}

// decodeLikeLibrary decodes b with Decode and with msgpack's reflection,
// fails unless both accept it and read the same sample, and returns
// Decode's.
func decodeLikeLibrary(t *testing.T, b []byte) *Sample {
	t.Helper()
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var want Sample
	if err := msgpack.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	sameAsLibrary(t, got, &want)
	// DecodeOwned reads the same, its strings sharing a copy of b (the
	// copy stands for a message handed over).
	owned, err := DecodeOwned(append([]byte(nil), b...))
	if err != nil {
		t.Fatal(err)
	}
	sameAsLibrary(t, owned, &want)
	return got
}

// sameAsLibrary fails, showing both as JSON, unless Decode's sample got
// equals msgpack's want.
func sameAsLibrary(t *testing.T, got, want *Sample) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("Decode differs from msgpack:\n got %s\nwant %s", g, w)
	}
}

// FuzzDecodeMatchesLibrary: wherever both Decode and msgpack's reflection
// accept a message, they read the same sample (after the finiteness pass).
func FuzzDecodeMatchesLibrary(f *testing.F) {
	for _, s := range []*Sample{fullSample(2), healthy(fullSample(3)), {Host: "h", Boot: "b", TS: 1}} {
		f.Add(mustEncode(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(b)
		owned, ownedErr := DecodeOwned(bytes.Clone(b))
		if (err == nil) != (ownedErr == nil) {
			t.Fatalf("Decode: %v, DecodeOwned: %v", err, ownedErr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(got, owned) {
			t.Fatalf("DecodeOwned read %+v, Decode %+v", owned, got)
		}
		// A Decoder whose memory holds another sample reads the same.
		var d Decoder
		if _, err := d.DecodeOwned(mustEncode(t, fullSample(3))); err != nil {
			t.Fatal(err)
		}
		if reused, err := d.DecodeOwned(bytes.Clone(b)); err != nil || !reflect.DeepEqual(got, reused) {
			t.Fatalf("a Decoder read %+v (%v), Decode %+v", reused, err, got)
		}
		var want Sample
		if msgpack.Unmarshal(b, &want) != nil {
			return
		}
		want.nonFinite = want.dropNonFinite()
		sameAsLibrary(t, got, &want)
	})
}

// DecodeOwned's strings are the message's own bytes, not a copy: what it
// saves the hub per sample.
func TestDecodeOwnedSharesTheMessage(t *testing.T) {
	b := mustEncode(t, fullSample(2))
	s, err := DecodeOwned(b)
	if err != nil {
		t.Fatal(err)
	}
	start := uintptr(unsafe.Pointer(&b[0]))
	for _, str := range []string{s.Host, s.Boot, s.GPUs[1].Name, s.GPUs[1].Processes[0].Name} {
		p := uintptr(unsafe.Pointer(unsafe.StringData(str)))
		if str == "" || p < start || p >= start+uintptr(len(b)) {
			t.Fatalf("%q is not in the message", str)
		}
	}
	// Decode copies: its strings are not the message's.
	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if p := uintptr(unsafe.Pointer(unsafe.StringData(c.Host))); p >= start && p < start+uintptr(len(b)) {
		t.Fatal("Decode's host is the message's bytes")
	}
}

// A Decoder reads what Decode reads, sample after sample, whatever the
// last one left in its memory: more GPUs, fewer, none, other series.
func TestDecoderMatchesDecode(t *testing.T) {
	few := fullSample(2)
	few.GPUs[0].Processes = []Process{} // none, which is not "could not list"
	few.System.PerCore, few.System.Disks = nil, []Disk{}
	few.Inference.Histograms = map[string]Histogram{"pipeline": {Count: 3, Sum: 1, Buckets: []Bucket{{0.5, 3}}}}
	delete(few.Models, "qwen") // a model the last sample had goes
	bare := &Sample{V: 1, Host: "h", Boot: "b", TS: 1}
	samples := []*Sample{fullSample(8), few, bare, healthy(fullSample(3)), fullSample(8), fullSample(16), bare, fullSample(1)}
	var d Decoder
	for i, s := range samples {
		b := mustEncode(t, s)
		want, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.DecodeOwned(b)
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Fatalf("sample %d: the Decoder read\n%s\nDecode\n%s", i, g, w)
		}
	}
}

// What a Decoder's sample leaves to the caller (models, errors, strings,
// the health details) is not touched by its next sample; its own memory
// is reused, so a steady stream allocates little.
func TestDecoderLeavesWhatTheCallerKeeps(t *testing.T) {
	var d Decoder
	first := fullSample(2)
	s, err := d.DecodeOwned(mustEncode(t, first))
	if err != nil {
		t.Fatal(err)
	}
	models, errs, host := maps.Clone(s.Models), s.Errors, s.Host
	want, _ := json.Marshal(struct {
		M map[string]Model
		E map[string]string
	}{models, errs})

	other := fullSample(4)
	other.Host = "other"
	for name, m := range other.Models {
		m.Reason, m.MemUsed, m.SlotsActive, m.Waiting = "changed", ptr(uint64(1)), ptr(99), ptr(7.0)
		other.Models[name] = m
	}
	other.Errors = map[string]string{"gpu": "changed"}
	if _, err := d.DecodeOwned(mustEncode(t, other)); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(struct {
		M map[string]Model
		E map[string]string
	}{models, errs})
	if string(got) != string(want) || host != first.Host {
		t.Fatalf("the next sample changed what the caller kept:\n got %s\nwant %s", got, want)
	}

	// Without what is the caller's, a sample the Decoder has room for
	// allocates nothing.
	own := fullSample(8)
	own.Models, own.Errors = nil, nil
	for i := range own.GPUs {
		own.GPUs[i].Throttle = nil
	}
	b := mustEncode(t, own)
	if _, err := d.DecodeOwned(b); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = d.DecodeOwned(b) }); n != 0 {
		t.Fatalf("a Decoder allocates %v times for a sample it has room for", n)
	}
}
