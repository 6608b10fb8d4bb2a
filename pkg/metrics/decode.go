package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

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

// Decode parses a msgpack sample and checks what the hub relies on: a
// schema version, a valid host token, a timestamp, and finite numbers: a
// NaN or ±Inf becomes absent (see finite.go) and NonFinite counts them.
func Decode(b []byte) (*Sample, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("decode sample: %d bytes: %w", len(b), ErrTooLarge)
	}
	return decode(b, string(b), nil)
}

// DecodeOwned is Decode for a message the caller hands over: the sample's
// strings share b's bytes instead of a copy of them, which saves a
// sample's size in allocation and copying per message. b must never be
// modified afterwards, by anyone. A NATS message's Data is its own copy
// of the payload (the client copies it out of its read buffer), which the
// hub only reads, so the hub's ingest hands each one over.
func DecodeOwned(b []byte) (*Sample, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("decode sample: %d bytes: %w", len(b), ErrTooLarge)
	}
	return decodeOwned(b, nil)
}

func decodeOwned(b []byte, d *Decoder) (*Sample, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("decode sample: %d bytes: %w", len(b), ErrTooLarge)
	}
	if len(b) == 0 {
		return decode(b, "", d)
	}
	return decode(b, unsafe.String(&b[0], len(b)), d)
}

// Decoder decodes samples into memory it keeps from one sample to the
// next: the sample itself, its host section, GPUs, processes, disks,
// per-core figures, inference series and every number of those that is
// a pointer. A hub decodes a fleet's samples all day and keeps none of
// that (it converts the figures, view.Of, and keeps them), so decoding
// into the same memory saves a sample's worth of allocation (about 8 KiB
// for 8 GPUs) and of the collector's work per sample.
//
// What a Decoder's sample holds of its own memory is valid only until
// the Decoder's next call: the caller must copy whatever it keeps of it
// (numbers included: a figure is a pointer into that memory), the
// Sample.Models map itself included. What it may keep as it is: the
// strings (the message's, see DecodeOwned, or Strings' copies), the errors
// (Sample.Errors), everything a model's entry points at or holds (its
// numbers, maps and lists are allocated for each sample, so a copy of a
// Model may be kept), and the GPU health details read through the
// library (XIDs, ECC, PCIe, NVLinks, MIG) and the throttle reasons. A
// Decoder is not safe for concurrent use.
type Decoder struct {
	// Strings, when set, holds the strings the sample reads (see
	// Strings), and the sample holds none of its message.
	Strings *Strings

	block   *sampleBlock
	scalars []uint64
	gpus    []GPU
	procs   []Process
	disks   []Disk
	floats  []float64
	buckets []Bucket
	hists   map[string]Histogram
	counts  map[string]float64
	models  map[string]Model
}

// DecodeOwned is the package's DecodeOwned into d's memory (see Decoder):
// the sample is d's, valid until d's next call.
func (d *Decoder) DecodeOwned(b []byte) (*Sample, error) {
	return decodeOwned(b, d)
}

// keep sizes d's chunks for the next sample after r read one: a chunk
// the sample outgrew is replaced by one that fits it all, so a fleet's
// steady stream of same-sized samples allocates none.
func (d *Decoder) keep(r *reader) {
	if n := r.scalars.used; n > cap(d.scalars) {
		d.scalars = make([]uint64, 0, n)
	}
	if n := r.nprocs; n > cap(d.procs) {
		d.procs = make([]Process, 0, n)
	}
	if n := r.nbuckets; n > cap(d.buckets) {
		d.buckets = make([]Bucket, 0, n)
	}
}

// sampleBlock is a sample with its host section and inference series:
// nearly every sample has all three, so they are allocated together.
// Whoever keeps one of them keeps the others' memory too, which the hub
// never does for long (it keeps a trimmed copy of the envelope, see
// ingest's merged).
type sampleBlock struct {
	s   Sample
	sys System
	inf Inference
}

// decode parses b, whose text str is (a copy or b itself), and checks it.
// With d, the sample is d's scratch (see Decoder); without, it is the
// caller's.
func decode(b []byte, str string, d *Decoder) (*Sample, error) {
	// The reader bounds every length itself (see containerLen), and
	// checks the shape of what it hands to the library (skip).
	var block *sampleBlock
	if d != nil {
		if d.block == nil {
			d.block = &sampleBlock{}
		}
		block = d.block
		*block = sampleBlock{}
	} else {
		block = &sampleBlock{}
	}
	s := &block.s
	r := reader{b: b, str: str, sys: &block.sys, inf: &block.inf, d: d}
	r.scalars.first, r.own.first = 32, 8
	if d != nil {
		r.scalars.s = d.scalars[:0]
		r.procs = d.procs[:0]
		r.buckets = d.buckets[:0]
	}
	err := r.sample(s)
	if d != nil {
		d.keep(&r)
	}
	if err != nil {
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

// The hub decodes every sample of every host, so Decode reads the parts
// every sample has (the envelope, host figures, GPUs, processes, inference
// series, errors) straight from the bytes instead of through msgpack's
// reflection, which cost a 8-GPU sample ~30 µs and ~380 allocations. The
// rare or free-form parts (models with their Extra, GPU health details)
// still go through the library, on their own bytes. The semantics are the
// library's: unknown keys are skipped, nil is an absent pointer, an empty
// slice or map, a zero value; integers are accepted where floats are.

// reader walks one msgpack message. Every string it returns is a substring
// of str, one copy of the whole message, so a sample's names cost one
// allocation together; pointer fields come from small arenas.
type reader struct {
	b   []byte
	str string
	off int
	// items counts the container elements read, bounded as checkShape
	// bounds them: a header's length is trusted only that far.
	items int

	// scalars holds every pointer field's value: floats, integers and
	// bools of a sample alike (see slot). While inModels, the values go
	// to own instead: with a Decoder, scalars is reused and own is not
	// (the caller may keep the models).
	scalars, own arena
	inModels     bool
	// procs is where the GPUs' process lists are cut from, buckets the
	// inference series' buckets (with a Decoder: its chunks, reused);
	// nprocs and nbuckets count what the sample needed of them.
	procs            []Process
	buckets          []Bucket
	nprocs, nbuckets int
	// inInference: the histograms being read are the inference
	// series' (a Decoder's), not a model's (the caller's).
	inInference bool
	// d, when set, is the Decoder whose memory the sample reuses.
	d *Decoder
	// sys and inf are the sample's host section and inference series,
	// allocated with it; nil once used (a repeated key gets its own).
	sys *System
	inf *Inference
}

// arena hands out 8-byte slots in chunks it never grows, so a pointer
// stays valid and a chunk holds many fields of one sample. Each chunk is
// twice the last (up to maxChunk): a small sample takes one small chunk,
// an 8-GPU one (~180 pointer fields) three. One arena serves every scalar
// type (one per type took eight allocations for an 8-GPU sample).
type arena struct {
	s    []uint64
	used int // slots handed out, over every chunk
	// first is the first chunk's size: 32 slots (an 8-GPU sample takes
	// three chunks, one of 32, 64 and 128), 8 for a sample's models
	// (a few figures each).
	first int
}

const maxChunk = 256

// slot returns an 8-byte slot (a reused one is not zeroed: put writes
// what is read of it). Every type stored in one (float64,
// uint64, uint32, int, bool) holds no pointer, is at most 8 bytes and at
// most 8-aligned, so a *T into a slot is as valid as one into a []T; the
// GC keeps a slot's chunk alive while any pointer into it lives.
func (a *arena) slot() unsafe.Pointer {
	if len(a.s) == cap(a.s) {
		a.s = make([]uint64, 0, min(max(a.first, 2*cap(a.s)), maxChunk))
	}
	a.s = a.s[:len(a.s)+1]
	a.used++
	return unsafe.Pointer(&a.s[len(a.s)-1])
}

// put stores v in a new slot of a and points at it.
func put[T float64 | uint64 | uint32 | int | bool](a *arena, v T) *T {
	p := (*T)(a.slot())
	*p = v
	return p
}

var errEnd = errors.New("unexpected end of message")

func (r *reader) next() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errEnd
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// isNil consumes a nil and reports whether there was one.
func (r *reader) isNil() bool {
	if r.off < len(r.b) && r.b[r.off] == 0xc0 {
		r.off++
		return true
	}
	return false
}

// be reads an n-byte big-endian unsigned number.
func (r *reader) be(n int) (uint64, error) {
	if len(r.b)-r.off < n {
		return 0, errEnd
	}
	// One load for the usual widths (every float of a sample is 8 bytes)
	// rather than a byte at a time.
	b := r.b[r.off:]
	var v uint64
	switch n {
	case 8:
		v = binary.BigEndian.Uint64(b)
	case 4:
		v = uint64(binary.BigEndian.Uint32(b))
	case 2:
		v = uint64(binary.BigEndian.Uint16(b))
	default:
		for _, c := range b[:n] {
			v = v<<8 | uint64(c)
		}
	}
	r.off += n
	return v, nil
}

func (r *reader) codeErr(c byte, want string) error {
	return fmt.Errorf("code 0x%02x at byte %d where %s was expected", c, r.off-1, want)
}

// containerLen reads a map (pairs) or array header; nil is -1.
func (r *reader) containerLen(isMap bool) (int, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c == 0xc0:
		return -1, nil
	case isMap && c >= 0x80 && c <= 0x8f:
		n = uint64(c & 0x0f)
	case !isMap && c >= 0x90 && c <= 0x9f:
		n = uint64(c & 0x0f)
	case isMap && c == 0xde, !isMap && c == 0xdc:
		n, err = r.be(2)
	case isMap && c == 0xdf, !isMap && c == 0xdd:
		n, err = r.be(4)
	default:
		if isMap {
			return 0, r.codeErr(c, "a map")
		}
		return 0, r.codeErr(c, "an array")
	}
	if err != nil {
		return 0, err
	}
	// A container may claim no more elements than bytes remain, and all
	// together at most maxItems, before anything is allocated for them.
	if n > uint64(len(r.b)-r.off) {
		return 0, errEnd
	}
	items := int(n)
	if isMap {
		items *= 2
	}
	if r.items += items; r.items > maxItems {
		return 0, fmt.Errorf("more than %d items", maxItems)
	}
	return int(n), nil
}

// span reads a str or bin header and returns where its bytes are; nil is
// empty.
func (r *reader) span() (int, int, error) {
	c, err := r.next()
	if err != nil {
		return 0, 0, err
	}
	var n uint64
	switch {
	case c == 0xc0:
		return r.off, r.off, nil
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9, c == 0xc4:
		n, err = r.be(1)
	case c == 0xda, c == 0xc5:
		n, err = r.be(2)
	case c == 0xdb, c == 0xc6:
		n, err = r.be(4)
	default:
		return 0, 0, r.codeErr(c, "a string")
	}
	if err != nil {
		return 0, 0, err
	}
	if n > uint64(len(r.b)-r.off) {
		return 0, 0, errEnd
	}
	start := r.off
	r.off += int(n)
	return start, r.off, nil
}

func (r *reader) string() (string, error) {
	start, end, err := r.span()
	if err == nil && r.d != nil && r.d.Strings != nil {
		return r.d.Strings.get(r.str[start:end]), nil
	}
	return r.str[start:end], err
}

// key reads a map key without allocating. Every key of the schema is a
// short string, a fixstr: that case is read here, inline, the rest by
// span (which also reports a fixstr longer than what remains).
func (r *reader) key() ([]byte, error) {
	if r.off < len(r.b) {
		if c := r.b[r.off]; c&0xe0 == 0xa0 {
			start, end := r.off+1, r.off+1+int(c&0x1f)
			if end <= len(r.b) {
				r.off = end
				return r.b[start:end], nil
			}
		}
	}
	start, end, err := r.span()
	return r.b[start:end], err
}

// integer reads any msgpack integer (nil is 0) as its two's-complement
// bits, as the library does.
func (r *reader) integer() (uint64, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c >= 0xe0:
		return uint64(int64(int8(c))), nil
	case c == 0xc0:
		return 0, nil
	}
	var v uint64
	switch c {
	case 0xcc:
		v, err = r.be(1)
	case 0xcd:
		v, err = r.be(2)
	case 0xce:
		v, err = r.be(4)
	case 0xcf, 0xd3:
		v, err = r.be(8)
	case 0xd0:
		v, err = r.be(1)
		v = uint64(int64(int8(v)))
	case 0xd1:
		v, err = r.be(2)
		v = uint64(int64(int16(v)))
	case 0xd2:
		v, err = r.be(4)
		v = uint64(int64(int32(v)))
	default:
		return 0, r.codeErr(c, "an integer")
	}
	return v, err
}

func (r *reader) int() (int, error) {
	v, err := r.integer()
	return int(int64(v)), err
}

// float reads a float or an integer (nil is 0).
func (r *reader) float() (float64, error) {
	if r.off < len(r.b) {
		switch r.b[r.off] {
		case 0xca:
			r.off++
			v, err := r.be(4)
			return float64(math.Float32frombits(uint32(v))), err
		case 0xcb:
			r.off++
			v, err := r.be(8)
			return math.Float64frombits(v), err
		case 0xcc, 0xcd, 0xce, 0xcf:
			v, err := r.integer()
			return float64(v), err
		}
	}
	v, err := r.integer()
	return float64(int64(v)), err
}

func (r *reader) bool() (bool, error) {
	c, err := r.next()
	switch {
	case err != nil:
		return false, err
	case c == 0xc0, c == 0xc2:
		return false, nil
	case c == 0xc3:
		return true, nil
	}
	return false, r.codeErr(c, "a bool")
}

// skip passes one value of any kind, checking its shape as checkShape
// does: the library decodes such values, and trusts their headers.
func (r *reader) skip() error {
	w := shapeWalker{b: r.b, off: r.off, items: r.items}
	if err := w.value(0); err != nil {
		return err
	}
	r.off, r.items = w.off, w.items
	return nil
}

// library decodes one value with msgpack, for the parts read rarely.
func (r *reader) library(v any) error {
	start := r.off
	if err := r.skip(); err != nil {
		return err
	}
	return msgpack.Unmarshal(r.b[start:r.off], v)
}

// arena is where the pointer fields being read get their values.
func (r *reader) arena() *arena {
	if r.inModels && r.d != nil {
		return &r.own
	}
	return &r.scalars
}

func (r *reader) floatPtr() (*float64, error) {
	if r.isNil() {
		return nil, nil
	}
	v, err := r.float()
	return put(r.arena(), v), err
}

func (r *reader) uintPtr() (*uint64, error) {
	if r.isNil() {
		return nil, nil
	}
	v, err := r.integer()
	return put(r.arena(), v), err
}

func (r *reader) u32Ptr() (*uint32, error) {
	if r.isNil() {
		return nil, nil
	}
	v, err := r.integer()
	return put(r.arena(), uint32(v)), err
}

func (r *reader) intPtr() (*int, error) {
	if r.isNil() {
		return nil, nil
	}
	v, err := r.int()
	return put(r.arena(), v), err
}

func (r *reader) boolPtr() (*bool, error) {
	if r.isNil() {
		return nil, nil
	}
	v, err := r.bool()
	return put(r.arena(), v), err
}

// array reads an array header and calls each for every element; nil stays
// nil, an empty array is an empty, non-nil slice.
func array[T any](r *reader, each func(*T) error) ([]T, error) {
	n, err := r.containerLen(false)
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]T, n)
	for i := range out {
		if err := each(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fields reads a map of a struct's fields, calling field for each key,
// packed (see packKey); field skips the keys it does not know.
func (r *reader) fields(field func(k uint32) error) error {
	n, err := r.containerLen(true)
	if err != nil {
		return err
	}
	for range n {
		k, err := r.key()
		if err != nil {
			return err
		}
		if err := field(packKey(k)); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// packKey packs a key of up to three bytes into an integer, its first
// byte lowest: every key of the schema is one ("ut" is 'u' | 't'<<8), and
// a switch on integer constants is a jump table where one on strings
// compared them one by one, a sizeable part of decoding a sample. Any
// other key (longer, empty, or holding a zero byte, which would read as
// a shorter one) packs to 0, which no field has.
func packKey(k []byte) uint32 {
	var v uint32
	switch len(k) {
	case 3:
		v = uint32(k[2]) << 16
		if k[2] == 0 {
			return 0
		}
		fallthrough
	case 2:
		v |= uint32(k[1]) << 8
		if k[1] == 0 {
			return 0
		}
		fallthrough
	case 1:
		v |= uint32(k[0])
		if k[0] == 0 {
			return 0
		}
		return v
	}
	return 0
}

// reuse is array into buf's memory (a Decoder's), grown when too small.
func reuse[T any](r *reader, buf *[]T, each func(*T) error) ([]T, error) {
	n, err := r.containerLen(false)
	if err != nil || n < 0 {
		return nil, err
	}
	if n == 0 {
		return []T{}, nil
	}
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	out := (*buf)[:n:n]
	clear(out)
	for i := range out {
		if err := each(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// strMapInto is strMap into m (a Decoder's, emptied first), or into a
// new map when m is nil.
func strMapInto[T any](r *reader, m map[string]T, val func() (T, error)) (map[string]T, error) {
	if m == nil {
		return strMap(r, val)
	}
	n, err := r.containerLen(true)
	if err != nil || n < 0 {
		return nil, err
	}
	clear(m)
	for range n {
		k, err := r.string()
		if err != nil {
			return nil, err
		}
		v, err := val()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		m[k] = v
	}
	return m, nil
}

// modelsInto reads a sample's models into m, a Decoder's map, without
// emptying it first: a fleet's hosts run the same few models, so each
// name is usually in m already and its entry is overwritten in place (a
// map stores a Model, some 400 bytes, out of line: a new entry allocated
// it). The names m held that this sample lacks are deleted after.
func (r *reader) modelsInto(m map[string]Model) (map[string]Model, error) {
	n, err := r.containerLen(true)
	if err != nil || n < 0 {
		return nil, err
	}
	var buf [8]string
	names := buf[:0]
	if n > len(buf) {
		clear(m)
	}
	for range n {
		k, err := r.string()
		if err != nil {
			return nil, err
		}
		v, err := r.model()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		m[k] = v
		if n <= len(buf) {
			names = append(names, k)
		}
	}
	if len(m) > n {
		for k := range m {
			if !slices.Contains(names, k) {
				delete(m, k)
			}
		}
	}
	return m, nil
}

// strMap reads a map with string keys; nil stays nil.
func strMap[T any](r *reader, val func() (T, error)) (map[string]T, error) {
	n, err := r.containerLen(true)
	if err != nil || n < 0 {
		return nil, err
	}
	m := make(map[string]T, n)
	for range n {
		k, err := r.string()
		if err != nil {
			return nil, err
		}
		v, err := val()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		m[k] = v
	}
	return m, nil
}

func (r *reader) sample(s *Sample) error {
	n, err := r.containerLen(true)
	if err != nil {
		return err
	}
	for range n {
		kb, err := r.key()
		if err != nil {
			return err
		}
		switch packKey(kb) {
		case 'v':
			s.V, err = r.int()
		case 'h':
			s.Host, err = r.string()
		case 'b':
			s.Boot, err = r.string()
		case 'q':
			s.Seq, err = r.integer()
		case 't':
			var v uint64
			v, err = r.integer()
			s.TS = int64(v)
		case 'i':
			var v uint64
			v, err = r.integer()
			s.Interval = int64(v)
		case 's':
			s.System = nil
			if !r.isNil() {
				if s.System, r.sys = r.sys, nil; s.System == nil {
					s.System = &System{}
				}
				err = r.system(s.System)
			}
		case 'g':
			if r.d != nil {
				s.GPUs, err = reuse(r, &r.d.gpus, r.gpu)
			} else {
				s.GPUs, err = array(r, r.gpu)
			}
		case 'm':
			// The models are the caller's to keep, a Decoder's too: their
			// numbers come from an arena of their own.
			r.inModels = true
			if r.d != nil {
				if r.d.models == nil {
					r.d.models = map[string]Model{}
				}
				s.Models, err = r.modelsInto(r.d.models)
			} else {
				s.Models, err = strMap(r, r.model)
			}
			r.inModels = false
		case 'n':
			s.Inference = nil
			if !r.isNil() {
				if s.Inference, r.inf = r.inf, nil; s.Inference == nil {
					s.Inference = &Inference{}
				}
				err = r.inference(s.Inference)
			}
		case 'e':
			s.Errors, err = strMap(r, r.string)
		default:
			err = r.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kb, err)
		}
	}
	return nil
}

func (r *reader) system(s *System) error {
	n, err := r.containerLen(true)
	if err != nil {
		return err
	}
	for range n {
		kb, err := r.key()
		if err != nil {
			return err
		}
		switch packKey(kb) {
		case 'c':
			s.CPUPercent, err = r.floatPtr()
		case 'p' | 'c'<<8:
			each := func(v *float64) (err error) { *v, err = r.float(); return err }
			if r.d != nil {
				s.PerCore, err = reuse(r, &r.d.floats, each)
			} else {
				s.PerCore, err = array(r, each)
			}
		case 'l' | '1'<<8:
			s.Load1, err = r.floatPtr()
		case 'l' | '5'<<8:
			s.Load5, err = r.floatPtr()
		case 'l' | '1'<<8 | '5'<<16:
			s.Load15, err = r.floatPtr()
		case 'm' | 'u'<<8:
			s.MemUsed, err = r.integer()
		case 'm' | 't'<<8:
			s.MemTotal, err = r.integer()
		case 's' | 'u'<<8:
			s.SwapUsed, err = r.integer()
		case 's' | 't'<<8:
			s.SwapTotal, err = r.integer()
		case 'd':
			if r.d != nil {
				s.Disks, err = reuse(r, &r.d.disks, r.disk)
			} else {
				s.Disks, err = array(r, r.disk)
			}
		case 'd' | 'r'<<8:
			s.DiskReadBps, err = r.floatPtr()
		case 'd' | 'w'<<8:
			s.DiskWriteBps, err = r.floatPtr()
		case 'n' | 'r'<<8:
			s.NetRxBps, err = r.floatPtr()
		case 'n' | 't'<<8:
			s.NetTxBps, err = r.floatPtr()
		case 'u':
			s.Uptime, err = r.integer()
		default:
			err = r.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kb, err)
		}
	}
	return nil
}

func (r *reader) disk(d *Disk) error {
	n, err := r.containerLen(true)
	if err != nil {
		return err
	}
	for range n {
		kb, err := r.key()
		if err != nil {
			return err
		}
		switch packKey(kb) {
		case 'm':
			d.Mount, err = r.string()
		case 'u':
			d.Used, err = r.integer()
		case 't':
			d.Total, err = r.integer()
		default:
			err = r.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kb, err)
		}
	}
	return nil
}

func (r *reader) gpu(g *GPU) error {
	n, err := r.containerLen(true)
	if err != nil {
		return err
	}
	for range n {
		kb, err := r.key()
		if err != nil {
			return err
		}
		switch packKey(kb) {
		case 'i':
			g.Index, err = r.int()
		case 'u':
			g.UUID, err = r.string()
		case 'n':
			g.Name, err = r.string()
		case 'u' | 't'<<8:
			g.Util, err = r.floatPtr()
		case 'm' | 'u'<<8:
			g.MemUtil, err = r.floatPtr()
		case 'v' | 'u'<<8:
			g.MemUsed, err = r.uintPtr()
		case 'v' | 't'<<8:
			g.MemTotal, err = r.uintPtr()
		case 't' | 'c'<<8:
			g.Temp, err = r.floatPtr()
		case 'p' | 'w'<<8:
			g.Power, err = r.floatPtr()
		case 'p' | 'l'<<8:
			g.PowerLimit, err = r.floatPtr()
		case 'c' | 's'<<8:
			g.SMClock, err = r.u32Ptr()
		case 'c' | 'm'<<8:
			g.MemClock, err = r.u32Ptr()
		case 'f':
			g.Fan, err = r.floatPtr()
		case 'p' | 's'<<8:
			g.PState, err = r.intPtr()
		case 't' | 'm'<<8:
			g.ThrottleMask, err = r.uintPtr()
		case 't' | 'r'<<8:
			g.Throttle, err = array(r, func(v *string) (err error) { *v, err = r.string(); return err })
		case 'e':
			g.Energy, err = r.floatPtr()
		case 'p':
			g.Processes, err = r.processes()
		case 'p' | 'm'<<8:
			g.Persistence, err = r.boolPtr()
		case 'd' | 'v'<<8:
			g.Driver, err = r.string()
		case 'c' | 'u'<<8:
			g.CUDA, err = r.string()
		case 'v' | 'b'<<8:
			g.VBIOS, err = r.string()
		case 'm' | 'g'<<8:
			g.MIGMode, err = r.boolPtr()
		case 'g' | 'a'<<8:
			g.SMActive, err = r.floatPtr()
		case 'g' | 'o'<<8:
			g.SMOccupancy, err = r.floatPtr()
		case 'g' | 't'<<8:
			g.TensorActive, err = r.floatPtr()
		case 'x':
			g.XIDs = nil
			err = r.library(&g.XIDs)
		case 'e' | 'c'<<8:
			g.ECC = nil
			err = r.library(&g.ECC)
		case 'p' | 'e'<<8:
			g.PCIe = nil
			err = r.library(&g.PCIe)
		case 'n' | 'l'<<8:
			g.NVLinks = nil
			err = r.library(&g.NVLinks)
		case 'm' | 'i'<<8:
			g.MIG = nil
			err = r.library(&g.MIG)
		default:
			err = r.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kb, err)
		}
	}
	return nil
}

// cutBuckets is array for a Decoder's inference series: each cut from
// one chunk, capped as processes' lists are.
func (r *reader) cutBuckets() ([]Bucket, error) {
	n, err := r.containerLen(false)
	if err != nil || n < 0 {
		return nil, err
	}
	if n == 0 {
		return []Bucket{}, nil
	}
	if cap(r.buckets)-len(r.buckets) < n {
		r.buckets = make([]Bucket, 0, max(n, 16))
	}
	r.nbuckets += n
	start := len(r.buckets)
	r.buckets = r.buckets[:start+n]
	out := r.buckets[start : start+n : start+n]
	clear(out)
	for i := range out {
		if err := r.bucket(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// processes reads a GPU's process list into a chunk shared by the
// sample's GPUs (capped, so an append to one never reaches another).
func (r *reader) processes() ([]Process, error) {
	n, err := r.containerLen(false)
	if err != nil || n < 0 {
		return nil, err
	}
	if n == 0 {
		return []Process{}, nil // none, which is not "could not list"
	}
	if cap(r.procs)-len(r.procs) < n {
		r.procs = make([]Process, 0, max(n, 16))
	}
	r.nprocs += n
	start := len(r.procs)
	r.procs = r.procs[:start+n]
	out := r.procs[start : start+n : start+n]
	clear(out) // a Decoder's chunk holds the last sample's
	for i := range out {
		if err := r.process(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *reader) process(p *Process) error {
	n, err := r.containerLen(true)
	if err != nil {
		return err
	}
	for range n {
		kb, err := r.key()
		if err != nil {
			return err
		}
		switch packKey(kb) {
		case 'p':
			var v uint64
			v, err = r.integer()
			p.PID = uint32(v)
		case 'n':
			p.Name, err = r.string()
		case 'c':
			p.Command, err = r.string()
		case 'm':
			p.MemUsed, err = r.uintPtr()
		case 's':
			p.SMUtil, err = r.floatPtr()
		case 'c' | 't'<<8:
			p.Container, err = r.string()
		case 'r' | 't'<<8:
			p.Runtime, err = r.string()
		case 'm' | 'd'<<8:
			p.Model, err = r.string()
		default:
			err = r.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kb, err)
		}
	}
	return nil
}

func (r *reader) inference(in *Inference) error {
	n, err := r.containerLen(true)
	if err != nil {
		return err
	}
	for range n {
		kb, err := r.key()
		if err != nil {
			return err
		}
		switch packKey(kb) {
		case 'h':
			var m map[string]Histogram
			if r.d != nil {
				if r.d.hists == nil {
					r.d.hists = map[string]Histogram{}
				}
				m = r.d.hists
			}
			// The series' buckets are cut from r.buckets (a Decoder's
			// chunk); a model's histograms, the caller's, are not.
			r.inInference = true
			in.Histograms, err = strMapInto(r, m, r.histogram)
			r.inInference = false
		case 'c':
			var m map[string]float64
			if r.d != nil {
				if r.d.counts == nil {
					r.d.counts = map[string]float64{}
				}
				m = r.d.counts
			}
			in.Counters, err = strMapInto(r, m, r.float)
		default:
			err = r.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kb, err)
		}
	}
	return nil
}

func (r *reader) histogram() (Histogram, error) {
	var h Histogram
	err := r.fields(func(k uint32) (err error) {
		switch k {
		case 'c':
			h.Count, err = r.float()
		case 's':
			h.Sum, err = r.float()
		case 'b':
			if r.d != nil && r.inInference {
				h.Buckets, err = r.cutBuckets()
			} else {
				h.Buckets, err = array(r, r.bucket)
			}
		default:
			err = r.skip()
		}
		return err
	})
	return h, err
}

func (r *reader) bucket(b *Bucket) error {
	n, err := r.containerLen(true)
	if err != nil {
		return err
	}
	for range n {
		kb, err := r.key()
		if err != nil {
			return err
		}
		switch packKey(kb) {
		case 'l' | 'e'<<8:
			b.UpperBound, err = r.float()
		case 'c':
			b.Count, err = r.float()
		default:
			err = r.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kb, err)
		}
	}
	return nil
}

func (r *reader) model() (Model, error) {
	var m Model
	err := r.fields(func(k uint32) (err error) {
		switch k {
		case 's':
			var st string
			st, err = r.string()
			m.Status = Status(st)
		case 'r':
			m.Reason, err = r.string()
		case 'm' | 'n'<<8:
			m.Model, err = r.string()
		case 'd':
			m.Device, err = r.string()
		case 'v' | 'u'<<8:
			m.MemUsed, err = r.uintPtr()
		case 's' | 'a'<<8:
			m.SlotsActive, err = r.intPtr()
		case 's' | 't'<<8:
			m.SlotsTotal, err = r.intPtr()
		case 'c' | 'x'<<8:
			m.ContextSize, err = r.intPtr()
		case 'p' | 'i'<<8 | 'd'<<16:
			m.PIDs, err = array(r, func(v *uint32) error {
				p, err := r.integer()
				*v = uint32(p)
				return err
			})
		case 'c' | 't'<<8:
			m.Container, err = r.string()
		case 'g':
			m.Gauges, err = strMap(r, r.float)
		case 'x':
			// Free-form: whatever the model server said. Decoded into
			// its own variable: the library's any would move the whole
			// Model to the heap for each model of each sample.
			var x map[string]any
			err = r.library(&x)
			m.Extra = x
		case 'k':
			m.Kind, err = r.string()
		case 'h':
			m.Histograms, err = strMap(r, r.histogram)
		case 'c':
			m.Counters, err = strMap(r, r.float)
		case 'q' | 'w'<<8:
			m.Waiting, err = r.floatPtr()
		case 'q' | 'r'<<8:
			m.Running, err = r.floatPtr()
		case 'k' | 'v'<<8:
			m.KVCache, err = r.floatPtr()
		case 's' | 'l'<<8:
			// A few llama.cpp slots, an Ollama list: read rarely enough.
			var sl []Slot
			err = r.library(&sl)
			m.Slots = sl
		case 'l' | 'd'<<8:
			var ld []Loaded
			err = r.library(&ld)
			m.Loaded = ld
		case 'g' | 'i'<<8:
			m.GPUs, err = array(r, func(v *int) error {
				var err error
				*v, err = r.int()
				return err
			})
		case 's' | 'm'<<8:
			m.SMPercent, err = r.floatPtr()
		case 'e' | 'j'<<8:
			m.Energy, err = r.floatPtr()
		case 'e' | 'w'<<8:
			m.Power, err = r.floatPtr()
		case 'n' | 't'<<8:
			m.Notes, err = array(r, func(v *string) error {
				var err error
				*v, err = r.string()
				return err
			})
		default:
			err = r.skip()
		}
		return err
	})
	return m, err
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
