package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func ptr[T any](v T) *T { return &v }

// fullSample builds a sample with every section filled the way a busy
// GPU host fills it, so round trips and benchmarks see realistic sizes.
func fullSample(gpus int) *Sample {
	s := &Sample{
		V:        Version,
		Host:     "gpu01-lab",
		Boot:     "3f2a9c1d0b7e4a55",
		Seq:      123456,
		TS:       1767268800000000000,
		Interval: 5e9,
		System: &System{
			CPUPercent:   ptr(12.5),
			PerCore:      []float64{10, 20.5, 3.25, 99.9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
			Load1:        ptr(1.5),
			Load5:        ptr(1.25),
			Load15:       ptr(0.75),
			MemUsed:      8_200_000_000,
			MemTotal:     32_000_000_000,
			SwapUsed:     1 << 20,
			SwapTotal:    8 << 30,
			Disks:        []Disk{{Mount: "/", Used: 156e9, Total: 500e9}, {Mount: "/data", Used: 1e12, Total: 4e12}},
			DiskReadBps:  ptr(1.5e6),
			DiskWriteBps: ptr(3.25e6),
			NetRxBps:     ptr(12e6),
			NetTxBps:     ptr(0.5e6),
			Uptime:       864000,
		},
		Models: map[string]Model{
			"rtdetr": {
				Status: StatusHealthy, Model: "rtdetr_r50vd_coco_o365", Device: "cuda:0",
				MemUsed: ptr(uint64(170_000_000)), PIDs: []uint32{4242}, Container: "rtdetr",
				Extra: map[string]any{"cuda": true, "version": "2.1.0", "uptime_s": 3600.5},
			},
			"nemotron": {
				Status: StatusDegraded, Reason: "slots busy", SlotsActive: ptr(2), SlotsTotal: ptr(2),
				ContextSize: ptr(4096), PIDs: []uint32{5151, 5152},
				Gauges: map[string]float64{"llamacpp:prompt_tokens_seconds": 812.5, "llamacpp:requests_processing": 2},
			},
			"qwen": {
				Status: StatusHealthy, Kind: KindVLLM, Model: "Qwen/Qwen3-8B",
				Histograms: map[string]Histogram{HistTTFT: {Count: 40, Sum: 3.2, Buckets: []Bucket{{0.05, 14}, {0.1, 34}}}},
				Counters:   map[string]float64{CounterGenTokens: 4000, CounterEnergy: 1950.5},
				Waiting:    ptr(6.0), Running: ptr(5.0), KVCache: ptr(82.0),
				Slots:  []Slot{{ID: 0, Ctx: 4096, Used: ptr(12), Decoded: ptr(57), Busy: true}},
				Loaded: []Loaded{{Name: "gemma3", Size: 100, SizeVRAM: 50, Context: ptr(4096), ExpiresAt: "2026-12-03T15:00:00Z", VRAMShare: ptr(50.0)}},
				GPUs:   []int{0, 1}, SMPercent: ptr(105.0), Energy: ptr(1950.0), Power: ptr(390.0),
				Notes: []string{"no KV gauge"},
			},
		},
		Inference: &Inference{
			Histograms: map[string]Histogram{
				"rtdetr": {Count: 1000, Sum: 45.2, Buckets: []Bucket{
					{0.005, 1}, {0.01, 5}, {0.025, 40}, {0.05, 600}, {0.1, 950}, {0.25, 990}, {0.5, 999}, {1, 1000},
				}},
				"nemotron": {Count: 20, Sum: 42, Buckets: []Bucket{{1, 2}, {2.5, 10}, {5, 18}, {10, 20}}},
				"pipeline": {Count: 0, Sum: 0, Buckets: []Bucket{}},
			},
			Counters: map[string]float64{"images": 12345, "events": 42},
		},
		Errors: map[string]string{"llamacpp": "GET /metrics: timeout", "scrape": "HTTP 500"},
	}
	for i := range gpus {
		g := GPU{
			Index:        i,
			UUID:         "GPU-4f8a1c2e-9b7d-4e3f-a1b2-c3d4e5f6a7b" + string(rune('0'+i%10)),
			Name:         "NVIDIA H200",
			Util:         ptr(float64(38 + i)),
			MemUtil:      ptr(12.0),
			MemUsed:      ptr(uint64(22_700_000_000)),
			MemTotal:     ptr(uint64(150_754_820_096)),
			Temp:         ptr(38.0),
			Power:        ptr(312.5),
			PowerLimit:   ptr(700.0),
			SMClock:      ptr(uint32(1980)),
			MemClock:     ptr(uint32(3201)),
			PState:       ptr(0),
			ThrottleMask: ptr(uint64(5)),
			Throttle:     []string{"gpu_idle", "sw_power_cap"},
			Energy:       ptr(123456789.125),
			Processes: []Process{
				{PID: 4242, Name: "python3", Command: "python3 -m rtdetr.serve", MemUsed: ptr(uint64(170_000_000)), SMUtil: ptr(7.0), Container: "rtdetr", Runtime: "docker", Model: "rtdetr"},
				{PID: 5151, Name: "llama-server", MemUsed: ptr(uint64(9_000_000_000)), SMUtil: ptr(31.0), Model: "nemotron"},
			},
		}
		if i%2 == 1 {
			g.Fan = ptr(45.0)
		}
		s.GPUs = append(s.GPUs, g)
	}
	return s
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		s    *Sample
	}{
		{"full 8 GPUs", fullSample(8)},
		{"full 1 GPU", fullSample(1)},
		{"header only", &Sample{Host: "h", Boot: "b", Seq: 0, TS: 1}},
		{"host section only", &Sample{Host: "h-1_x", Boot: "b", Seq: 1, TS: 2, System: &System{MemTotal: 1}}},
		{"errors only", &Sample{Host: "h", Boot: "b", Seq: 2, TS: 3, Errors: map[string]string{CollectorGPU: "NVML unavailable: ERROR_LIBRARY_NOT_FOUND"}}},
		{"gpu without processes list", &Sample{Host: "h", Boot: "b", TS: 4, GPUs: []GPU{{Index: 0, UUID: "GPU-x", Name: "n"}}}},
		{"gpu with empty processes list", &Sample{Host: "h", Boot: "b", TS: 5, GPUs: []GPU{{Index: 0, UUID: "GPU-x", Name: "n", Processes: []Process{}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(tc.s)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if tc.s.V != Version {
				t.Errorf("Encode did not stamp the version: v=%d", tc.s.V)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.s) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tc.s)
				t.Fatalf("round trip differs:\n got %s\nwant %s", gj, wj)
			}
		})
	}
}

// TestAbsentStaysAbsent checks the promise that nil fields are not sent, so
// a decoder can never read an absent value as zero.
func TestAbsentStaysAbsent(t *testing.T) {
	s := &Sample{Host: "h", Boot: "b", TS: 1, GPUs: []GPU{{Index: 0, UUID: "u", Name: "n"}}}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := msgpack.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	g := raw["g"].([]any)[0].(map[string]any)
	for _, k := range []string{"ut", "mu", "vu", "vt", "tc", "pw", "pl", "cs", "cm", "f", "ps", "tm", "tr", "e"} {
		if _, ok := g[k]; ok {
			t.Errorf("nil GPU field %q was encoded", k)
		}
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.GPUs[0].Util != nil || got.GPUs[0].Temp != nil || got.GPUs[0].Processes != nil {
		t.Errorf("absent fields decoded as present: %+v", got.GPUs[0])
	}
}

func encodeMap(t testing.TB, m map[string]any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 512)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"random bytes", random, nil}, // any of the decode errors
		{"empty", nil, ErrInvalid},
		{"truncated", func() []byte { b, _ := Encode(fullSample(2)); return b[:len(b)/2] }(), ErrInvalid},
		{"not a map", []byte{0x05}, ErrInvalid},
		{"v=0", encodeMap(t, map[string]any{"v": 0, "h": "h", "b": "b", "q": 1, "t": 1}), ErrVersion},
		{"missing v", encodeMap(t, map[string]any{"h": "h", "b": "b", "q": 1, "t": 1}), ErrVersion},
		{"negative v", encodeMap(t, map[string]any{"v": -3, "h": "h", "t": 1}), ErrVersion},
		{"bad host token", encodeMap(t, map[string]any{"v": 1, "h": "gpu01.lab", "t": 1}), ErrInvalid},
		{"empty host", encodeMap(t, map[string]any{"v": 1, "h": "", "t": 1}), ErrInvalid},
		{"host with wildcard", encodeMap(t, map[string]any{"v": 1, "h": "a>", "t": 1}), ErrInvalid},
		{"missing ts", encodeMap(t, map[string]any{"v": 1, "h": "h"}), ErrInvalid},
		{"wrong type for seq", encodeMap(t, map[string]any{"v": 1, "h": "h", "t": 1, "q": "x"}), ErrInvalid},
		{"wrong type for gpus", encodeMap(t, map[string]any{"v": 1, "h": "h", "t": 1, "g": 7}), ErrInvalid},
		{"oversize", make([]byte, MaxMessage+1), ErrTooLarge},
		{"json", []byte(`{"v":1,"host":"h","ts":1}`), ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Decode(tc.b)
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", s)
			}
			if s != nil {
				t.Errorf("Decode returned a sample with its error")
			}
			if tc.want == nil {
				if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrTooLarge) {
					t.Errorf("error %v wraps none of the decode errors", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want one wrapping %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "decode sample: ") {
				t.Errorf("error %q does not say what failed", err)
			}
		})
	}
}

// A newer agent may add fields and bump v; an older hub must still read
// what it knows.
func TestDecodeNewerVersionUnknownFields(t *testing.T) {
	b := encodeMap(t, map[string]any{
		"v": 7, "h": "gpu02", "b": "boot", "q": 9, "t": 42,
		"zz":  map[string]any{"future": []any{1, "two", 3.0}},
		"s":   map[string]any{"c": 50.5, "mt": 1024, "new_field": true},
		"g":   []any{map[string]any{"i": 1, "u": "GPU-1", "n": "next", "nvlink": 4}},
		"xyz": "ignored",
	})
	s, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode of a newer sample: %v", err)
	}
	if s.V != 7 || s.Host != "gpu02" || s.Boot != "boot" || s.Seq != 9 || s.TS != 42 {
		t.Errorf("header = %+v", s)
	}
	if s.System == nil || s.System.CPUPercent == nil || *s.System.CPUPercent != 50.5 || s.System.MemTotal != 1024 {
		t.Errorf("system = %+v", s.System)
	}
	if len(s.GPUs) != 1 || s.GPUs[0].Index != 1 || s.GPUs[0].Name != "next" {
		t.Errorf("gpus = %+v", s.GPUs)
	}
}

func TestDecodeObservations(t *testing.T) {
	mp := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	one := Observation{V: 1, TS: 1767268800000000000, MS: 45.5}
	two := Observation{V: 1, TS: 1767268805000000000, MS: 82}
	cases := []struct {
		name string
		b    []byte
		want []Observation
		err  error
	}{
		{"json object", []byte(`{"v":1,"ts":1767268800000000000,"ms":45.5}`), []Observation{one}, nil},
		{"json object, leading space", []byte(" \n{\"v\":1,\"ts\":1767268800000000000,\"ms\":45.5}"), []Observation{one}, nil},
		{"json object, extra field", []byte(`{"v":2,"ts":1767268800000000000,"ms":45.5,"stage":"x"}`), []Observation{{V: 2, TS: one.TS, MS: 45.5}}, nil},
		{"json array", []byte(`[{"v":1,"ts":1767268800000000000,"ms":45.5},{"v":1,"ts":1767268805000000000,"ms":82}]`), []Observation{one, two}, nil},
		{"json empty array", []byte(`[]`), []Observation{}, nil},
		{"msgpack object", mp(one), []Observation{one}, nil},
		{"msgpack array", mp([]Observation{one, two}), []Observation{one, two}, nil},
		{"msgpack map with unknown field", mp(map[string]any{"v": 1, "ts": one.TS, "ms": 45.5, "who": "me"}), []Observation{one}, nil},
		{"garbage", []byte("hello world"), nil, ErrInvalid},
		{"binary garbage", []byte{0xc1, 0xff, 0x00, 0x13}, nil, ErrInvalid},
		{"empty", nil, nil, ErrInvalid},
		{"only spaces", []byte("   "), nil, ErrInvalid},
		{"broken json", []byte(`{"v":1,"ts":`), nil, ErrInvalid},
		{"json missing v", []byte(`{"ts":1,"ms":1}`), nil, ErrVersion},
		{"json negative ms", []byte(`{"v":1,"ts":1,"ms":-1}`), nil, ErrInvalid},
		{"json zero ts", []byte(`{"v":1,"ts":0,"ms":1}`), nil, ErrInvalid},
		{"json array one bad", []byte(`[{"v":1,"ts":1,"ms":1},{"v":1,"ts":1,"ms":"x"}]`), nil, ErrInvalid},
		{"msgpack NaN", mp(Observation{V: 1, TS: 1, MS: math.NaN()}), nil, ErrInvalid},
		{"msgpack +Inf", mp(Observation{V: 1, TS: 1, MS: math.Inf(1)}), nil, ErrInvalid},
		{"msgpack missing v", mp(map[string]any{"ts": 1, "ms": 2.0}), nil, ErrVersion},
		{"oversize", append([]byte("["), bytes.Repeat([]byte(" "), MaxMessage)...), nil, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeObservations(tc.b)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want one wrapping %v (got %+v)", err, tc.err, got)
				}
				if got != nil {
					t.Errorf("returned observations with the error: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeObservations: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHostToken(t *testing.T) {
	cases := []struct{ in, want string }{
		{"gpu01", "gpu01"},
		{"gpu01.lab.example", "gpu01-lab-example"},
		{"GPU_box-2", "GPU_box-2"},
		{"", "unknown"},
		{"a b*c>d", "a-b-c-d"},
		{"höst", "h--st"}, // ö is two bytes
		{strings.Repeat("x", 200), strings.Repeat("x", 128)},
	}
	for _, tc := range cases {
		got := HostToken(tc.in)
		if got != tc.want {
			t.Errorf("HostToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !ValidToken(got) {
			t.Errorf("HostToken(%q) = %q is not a valid token", tc.in, got)
		}
	}
}

func TestValidToken(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"gpu01", true},
		{"a-b_C9", true},
		{"", false},
		{"a.b", false},
		{"a b", false},
		{"*", false},
		{">", false},
		{"ä", false},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
	}
	for _, tc := range cases {
		if got := ValidToken(tc.in); got != tc.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseLatencySubject(t *testing.T) {
	cases := []struct {
		subject     string
		host, stage string
		ok          bool
	}{
		{"sysperf.v1.latency.gpu01.rtdetr", "gpu01", "rtdetr", true},
		{LatencySubject("h-2", "pipeline"), "h-2", "pipeline", true},
		{"sysperf.v1.latency.gpu01", "", "", false},
		{"sysperf.v1.latency.gpu01.", "", "", false},
		{"sysperf.v1.latency..rtdetr", "", "", false},
		{"sysperf.v1.latency.gpu01.a.b", "", "", false},
		{"sysperf.v1.sample.gpu01", "", "", false},
		{"sysperf.v2.latency.gpu01.rtdetr", "", "", false},
		{"", "", "", false},
	}
	for _, tc := range cases {
		host, stage, ok := ParseLatencySubject(tc.subject)
		if host != tc.host || stage != tc.stage || ok != tc.ok {
			t.Errorf("ParseLatencySubject(%q) = %q, %q, %v; want %q, %q, %v", tc.subject, host, stage, ok, tc.host, tc.stage, tc.ok)
		}
	}
}

func TestSubjects(t *testing.T) {
	if got := SampleSubject("gpu01"); got != "sysperf.v1.sample.gpu01" {
		t.Errorf("SampleSubject = %q", got)
	}
	if got := AlertSubject("firing"); got != "sysperf.v1.alert.firing" {
		t.Errorf("AlertSubject = %q", got)
	}
	cases := []struct {
		s    Sample
		want string
	}{
		{Sample{Host: "gpu01", Boot: "abc", Seq: 0}, "gpu01/abc/0"},
		{Sample{Host: "gpu01", Boot: "abc", Seq: 7}, "gpu01/abc/7"},
		{Sample{Host: "h", Boot: "b", Seq: math.MaxUint64}, "h/b/18446744073709551615"},
		{Sample{Host: "h", Boot: "b", Seq: 1234567890}, "h/b/1234567890"},
	}
	for _, tc := range cases {
		got := MsgID(&tc.s, "k3y")
		if got != tc.want+"/k3y" {
			t.Errorf("MsgID(%+v) = %q, want %q", tc.s, got, tc.want+"/k3y")
		}
		if pub := PublicMsgID(got); pub != tc.want {
			t.Errorf("PublicMsgID(%q) = %q, want %q", got, pub, tc.want)
		}
	}
}

// Headers that claim more than the message holds must be refused before
// msgpack allocates what they claim.
func TestDecodeRefusesLyingLengths(t *testing.T) {
	nested := bytes.Repeat([]byte{0x91}, 100_000)
	manyItems := append([]byte{0x83, 0xa1, 'v', 0x01, 0xa1, 'h', 0xa1, 'h', 0xa1, 'x', 0xdd, 0x00, 0x03, 0x00, 0x00},
		bytes.Repeat([]byte{0xc0}, 0x30000)...)
	cases := []struct {
		name string
		b    []byte
	}{
		{"top map claims 4G entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01}},
		{"gpus claim 4G elements", []byte{0x81, 0xa1, 'g', 0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"per-core claims 65535", []byte{0x81, 0xa1, 's', 0x81, 0xa2, 'p', 'c', 0xdc, 0xff, 0xff, 0xcb}},
		{"host string claims 4 GB", []byte{0x81, 0xa1, 'h', 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}},
		{"bin claims 4 GB", []byte{0x81, 0xa2, 'z', 'z', 0xc6, 0xff, 0xff, 0xff, 0xff}},
		{"ext claims 64 KB", []byte{0x81, 0xa2, 'z', 'z', 0xc8, 0xff, 0xff, 0x01}},
		{"never-used code", []byte{0x81, 0xa1, 'v', 0xc1}},
		{"deep nesting", append([]byte{0x81, 0xa2, 'z', 'z'}, nested...)},
		{"too many items", manyItems},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.b); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error = %v, want ErrInvalid", err)
			}
			if _, err := DecodeObservations(tc.b); !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeObservations error = %v, want ErrInvalid", err)
			}
		})
	}
}

// checkShape must accept everything msgpack itself writes, including every
// number width and ext types (time.Time encodes as ext -1).
func TestCheckShapeAcceptsValidMsgpack(t *testing.T) {
	values := []any{
		nil, true, false, 0, 1, -1, 127, -32, -33, 128, 255, 256, 65535, 65536, int64(math.MaxInt64), int64(math.MinInt64),
		uint64(math.MaxUint64), float32(1.5), 2.5, "", "x", strings.Repeat("s", 40), strings.Repeat("s", 300), strings.Repeat("s", 70000),
		[]byte{}, []byte("bin"), bytes.Repeat([]byte{1}, 300), bytes.Repeat([]byte{1}, 70000),
		[]int{}, make([]int, 20), make([]int, 70000), map[string]int{}, map[string]any{"a": []any{map[string]any{"b": 1}}},
		time.Unix(1, 0), time.Unix(1, 5), time.Unix(1<<40, 5),
		fullSample(8),
	}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkShape(b); err != nil {
			t.Errorf("checkShape(%T of %d bytes) = %v", v, len(b), err)
		}
		if err := checkShape(b[:len(b)-1]); len(b) > 1 && err == nil {
			t.Errorf("checkShape accepted a truncated %T", v)
		}
	}
}
