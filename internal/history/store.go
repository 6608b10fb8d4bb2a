// Package history keeps the windows the dashboard's charts read: per host
// and per series, 5m at 5 s, 15m at 15 s and 60m at 1 min (the seed's
// three), and 6h, 24h and 7d built from rollups, each 60 slots, each slot
// keeping the mean and the maximum so a spike is not averaged away. It
// implements hub.History.
//
// Every window is a fixed ring of 60 slots indexed by slot time (the
// timestamp truncated to the resolution), so a late sample from an
// agent's backlog lands in its own slot and nothing grows with time. The
// 1-minute slots also remember which samples (host/boot/seq) they hold, so
// a sample delivered twice counts once.
//
// The long windows are fed from 1-minute slots once those leave the 60m
// window ("sealed"): until then a late sample may still change them. A
// long window's newest slots are therefore the sealed part plus the live
// 1-minute slots, combined when read. Sealed long slots are handed out as
// Rollups for the caller to persist (see Persist) and handed back with
// RestoreRollup after a restart; a sample older than its host's newest
// sealed minute is dropped, so replaying more than an hour of samples
// never counts a minute twice.
//
// What is kept is read from the view types the live feed shows (a host's
// sample as view.Of converts it, the hub's update for its own figures and
// the fleet's totals) through one table of fields (fields.go), and written
// back into the same view types to make a window's points (points.go).
// store.go is the rings, rollup.go the long windows' sealing and restore,
// persist.go their life in JetStream.
package history

import (
	"maps"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

const ringSize = 60 // points per window, as the seed's charts have

// Tier indexes.
const (
	t5m = iota
	t15m
	t60m
	t6h
	t24h
	t7d
	numTiers
)

// firstLong is the first tier fed from sealed minutes.
const firstLong = t6h

type tierDef struct {
	name string
	res  int64 // ns
}

func tierDefs() [numTiers]tierDef {
	return [numTiers]tierDef{
		{"5m", int64(5 * time.Second)},
		{"15m", int64(15 * time.Second)},
		{"60m", int64(time.Minute)},
		{"6h", int64(6 * time.Minute)},
		{"24h", int64(24 * time.Minute)},
		{"7d", int64(168 * time.Minute)},
	}
}

// Ranges lists the window names Window accepts, shortest first.
func Ranges() []string {
	defs := tierDefs()
	out := make([]string, numTiers)
	for i, d := range defs {
		out[i] = d.name
	}
	return out
}

// MaxRange is the longest window, for the rollups' retention.
const MaxRange = 7 * 24 * time.Hour

// stat is one series' aggregate over one slot, as read: its sum, its
// maximum and how many samples it holds.
type stat struct {
	sum, max float32
	n        uint32
}

// mean is the slot's mean, and top its maximum.
func (s *stat) mean() float64 { return float64(s.sum) / float64(s.n) }
func (s *stat) top() float64  { return float64(s.max) }

func (s *stat) merge(o stat) {
	if o.n == 0 {
		return
	}
	if s.n == 0 || o.max > s.max {
		s.max = o.max
	}
	s.sum += o.sum
	s.n += o.n
}

// cell is one series' sum and maximum in a frame as it is changed (the
// newest frame of each of a host's tiers, and every frame of the hub's
// own series); a host's other frames keep them packed in half the bytes
// (pcell). 8 bytes, a third of the float64 sum and maximum and the count
// it once was, for the hub holds 60 per series per window (6 windows, 66
// series of an 8-GPU host). float32
// keeps 24 bits of mantissa, a relative error of 6e-8 per value and per
// addition: a 7d slot sums at most 2,016 samples (168 min at 5 s), so its
// mean is off by at most 1.2e-4 of itself (0.1 W of an 8 kW host; far less
// in practice, as rounding errors cancel), below what a chart or a fleet
// row (whole numbers) shows. The figures kept (percent, °C, W, GB, MB/s,
// counts) are nowhere near float32's range limits.
type cell struct{ sum, max float32 }

// A host's frames other than each tier's newest are kept packed (pcell)
// from the 15m window on. Its 5m window keeps the agents' figures to the
// float32 digit (single): a reader of the API compares those with what
// the agents sent. A 15m slot is the mean of three samples, which nobody
// reads to the digit; packed, a 2,000-host hub holds 32 MB less an hour
// in (8 bytes a cell were 63 of the 165 MB its history held). The hub's
// own series (exact) keep every frame in float32.

// single says whether tier t's frames other than its newest are kept as
// one float32 a cell (series.vals): a host's 5m window, whose 5 s slots
// each hold one sample of an agent sampling every 5 s, so that a cell's
// sum is its maximum. The few frames that hold more (an agent's restart
// or clock step put two samples in one slot) keep their maxima beside
// (series.twin). An hour into a 2,000-host hub's life this is 32 MB of
// the 200 MB history holds, and exact as before: the sum is kept as it
// was added, the maximum where it differs.
func (s *series) single(t int) bool { return !s.exact && t == t5m }

// pcell is a cell of a host's frame other than its tier's newest (see
// series.open) from the 15m window on, in half the bytes: sum and maximum
// each a half. An hour
// into a hub's life a host's cells are most of what history holds (the
// 5m, 15m and 60m windows full, 60 frames of 66 series each), and a week
// in, the long windows' as many again, so at 2,000 hosts this is the
// difference between 380 MB and 190 MB of cells.
type pcell struct{ sum, max half }

// half is a float in 16 bits: a sign, a 6-bit exponent and a 9-bit
// mantissa, value ±(1 + m/512)·2^(e−halfBias) for e in 1…63, 0 for e 0.
// Rounded to nearest, a value off by at most 2^-10 (9.8e-4) of itself:
// a chart 300 px tall moves by a third of a pixel at most, a 65.4 °C mean
// reads 65.375 to 65.5, 412.7 W ±0.25 W. A sum keeps that bound whatever
// it adds up: a frame is rounded once, when it stops being its tier's
// newest, and again only when a late sample changes it then (each such
// change adds at most the same bound). Magnitudes below 2^-22 (2.4e-7 of
// a percent, GB or MB/s) read as 0, above 2.2e12 (a 7d slot's sum of 1e9
// per sample) as 2.2e12. Unlike IEEE's binary16 (5 exponent bits, 65,504
// at most) it takes a week's sum of a host's network MB/s or a big disk's
// GB. The hub's own series (the fleet's totals, whole numbers a chart
// labels) stay float32.
type half uint16

const halfBias = 23

func toHalf(x float32) half {
	b := math.Float32bits(x)
	sign := half(b>>16) & 0x8000
	mag := b & 0x7fffffff
	// Round the 23-bit mantissa to 9 bits; a carry moves to the exponent.
	r := mag + 1<<13
	e := int(r>>23) - 127 + halfBias
	switch {
	case mag == 0 || e <= 0:
		return sign
	case e > 63: // also Inf and NaN, which decode never passes on
		return sign | 0x7fff
	}
	return sign | half(e)<<9 | half(r>>14)&0x1ff
}

func (h half) float() float32 {
	if h&0x7e00 == 0 { // exponent 0: toHalf writes it for 0 alone
		return 0
	}
	e := uint32(h>>9&0x3f) + 127 - halfBias
	return math.Float32frombits(uint32(h&0x8000)<<16 | e<<23 | uint32(h&0x1ff)<<14)
}

// frame is one slot: its start, how many samples it holds and how many
// of its owner's series have a cell in it (w). The cells themselves are
// in the series' flat array of the frame's tier (series.packed, or
// series.cells of an exact series; see edit), and the
// count of each series is the frame's, less the samples that lacked it,
// kept in the series' lag map (series.lagged says the frame has an entry
// there): every sample of a host usually has the same series, so no cell
// needs a count of its own. A frame holds no pointer, so neither do the
// series' rings: the GC, which a hub of thousands of hosts runs often,
// has 360 frames a host less to trace. 16 bytes, the flag a bit beside:
// 5.8 MB less at 2,000 hosts than in a field of its own, which padding
// made 8.
type frame struct {
	start int64 // unix ns; 0 = empty
	n     uint32
	w     uint32
}

// A ring's frames are bits of one uint64 (series.lagged): this fails to
// compile if it had more.
const _ = uint64(1) << (64 - ringSize)

// isLagged says whether frame j of tier t has an entry in the lag map.
func (s *series) isLagged(t, j int) bool { return s.lagged[t]>>j&1 != 0 }

// lacking is how many samples of a frame lacked series i.
type lacking struct {
	i int32
	k uint32
}

// frameKey is frame j of tier t's key in series.lag.
func frameKey(t, j int) uint16 { return uint16(t*ringSize + j) }

// edit returns frame j of tier t's cells to change, width of them by
// series index (those past the frame's w hold nothing yet). A host's
// frame is changed in float32 (series.buf): its tier's newest frame is
// kept there until a newer one comes, when it is packed (pcell); an older
// frame a late sample or a restore changes is unpacked into series.late
// and packed again once another older frame of its tier is edited.
func (s *series) edit(t, j int) []cell {
	if s.exact {
		o := s.pos(t, j) * s.width
		return s.cells[t][o : o+s.width]
	}
	if int(s.open[t]) == j {
		return s.buf[t]
	}
	if int(s.lateJ[t]) == j {
		return s.late[t]
	}
	if o := int(s.open[t]); o < 0 || s.rings[t][j].start > s.rings[t][o].start {
		if o >= 0 {
			s.pack(t, o, s.buf[t])
		}
		if len(s.buf[t]) < s.width {
			s.buf[t] = make([]cell, s.width)
		}
		s.unpack(t, j, s.buf[t])
		s.open[t] = int8(j)
		return s.buf[t]
	}
	if l := int(s.lateJ[t]); l >= 0 {
		s.pack(t, l, s.late[t])
	}
	if len(s.late[t]) < s.width {
		s.late[t] = make([]cell, s.width)
	}
	s.unpack(t, j, s.late[t])
	s.lateJ[t] = int8(j)
	return s.late[t]
}

// pack writes frame j of tier t's first w cells from src.
func (s *series) pack(t, j int, src []cell) {
	o, w := s.pos(t, j)*s.width, int(s.rings[t][j].w)
	if s.single(t) {
		differ := false
		for i, c := range src[:w] {
			s.vals[o+i] = c.sum
			// By bits: a sum of -0 reads back as 0, its maximum -0.
			differ = differ || math.Float32bits(c.max) != math.Float32bits(c.sum)
		}
		if !differ {
			delete(s.twin, int8(j))
			return
		}
		if s.twin == nil {
			s.twin = map[int8][]float32{}
		}
		tw := s.twin[int8(j)][:0]
		for _, c := range src[:w] {
			tw = append(tw, c.max)
		}
		s.twin[int8(j)] = tw
		return
	}
	for i, c := range src[:w] {
		s.packed[t][o+i] = pcell{toHalf(c.sum), toHalf(c.max)}
	}
}

// unpack reads frame j of tier t's first w cells into dst.
func (s *series) unpack(t, j int, dst []cell) {
	o, w := s.pos(t, j)*s.width, int(s.rings[t][j].w)
	if s.single(t) {
		tw := s.twin[int8(j)]
		for i, v := range s.vals[o : o+w] {
			m := v
			if i < len(tw) {
				m = tw[i]
			}
			dst[i] = cell{v, m}
		}
		return
	}
	for i, p := range s.packed[t][o : o+w] {
		dst[i] = cell{p.sum.float(), p.max.float()}
	}
}

// valAt is cell i of frame j of the single tier, whose cells begin at o
// in vals: its maximum is its sum unless the frame has a twin. A twin
// shorter than i is an older width's: the series past it came to the
// frame later, and the frame was not packed since.
func (s *series) valAt(j, o, i int) cell {
	v := s.vals[o+i]
	if s.twin == nil {
		return cell{v, v}
	}
	if tw := s.twin[int8(j)]; i < len(tw) {
		return cell{v, tw[i]}
	}
	return cell{v, v}
}

// cellAt reads series i's cell of frame j of tier t.
func (s *series) cellAt(t, j, i int) cell {
	switch {
	case s.exact:
		return s.cells[t][s.pos(t, j)*s.width+i]
	case int(s.open[t]) == j:
		return s.buf[t][i]
	case int(s.lateJ[t]) == j:
		return s.late[t][i]
	case s.single(t):
		return s.valAt(j, s.pos(t, j)*s.width, i)
	}
	p := s.packed[t][s.pos(t, j)*s.width+i]
	return cell{p.sum.float(), p.max.float()}
}

// frames is how many frames tier t's cells have room for.
func (s *series) frames(t int) int {
	if s.width == 0 {
		return 0
	}
	switch {
	case s.exact:
		return len(s.cells[t]) / s.width
	case s.single(t):
		return len(s.vals) / s.width
	}
	return len(s.packed[t]) / s.width
}

// widen lays frames of old cells each out as frames of n cells.
func widen[C any](cells []C, old, n, frames int) []C {
	wider := make([]C, frames*n)
	for p := range frames {
		copy(wider[p*n:p*n+old], cells[p*old:(p+1)*old])
	}
	return wider
}

// extend gives cells room for frames frames of width cells.
func extend[C any](cells []C, width, frames int) []C {
	more := make([]C, frames*width)
	copy(more, cells)
	return more
}

// pos is frame j's place in tier t's cells: counted from the tier's
// first frame, so a tier's cells grow with its frames, in their order.
func (s *series) pos(t, j int) int {
	p := j - int(s.origin[t])
	if p < 0 {
		p += ringSize
	}
	return p
}

// reset empties frame j of tier t for the slot starting at start.
func (s *series) reset(t, j int, start int64) {
	if int(s.lateJ[t]) == j {
		s.lateJ[t] = -1 // what it held goes with the frame
	}
	if s.single(t) {
		delete(s.twin, int8(j))
	}
	if s.isLagged(t, j) {
		delete(s.lag, frameKey(t, j))
		if len(s.lag) == 0 {
			s.lag = nil
		}
		s.lagged[t] &^= 1 << j
	}
	s.rings[t][j] = frame{start: start}
}

// fit makes room for n series in frame j of tier t, so a frame a new
// host or a new slot starts filling does not grow one series at a time.
// A tier's cells are one array of frames of width cells each, from its
// first frame on: it grows (doubling, up to ringSize frames) as the
// tier's frames come, so a 7d window that holds a day does not take a
// week's room; it is laid out again (rarely: a host's series are known
// from its first sample) when the host gains series.
func (s *series) fit(t, j, n int) {
	if n > s.width {
		for tt := range numTiers {
			if frames := s.frames(tt); frames > 0 {
				switch {
				case s.exact:
					s.cells[tt] = widen(s.cells[tt], s.width, n, frames)
				case s.single(tt):
					s.vals = widen(s.vals, s.width, n, frames)
				default:
					s.packed[tt] = widen(s.packed[tt], s.width, n, frames)
				}
			}
			if s.buf[tt] != nil {
				s.buf[tt] = append(s.buf[tt], make([]cell, n-s.width)...)
			}
			if s.late[tt] != nil {
				s.late[tt] = append(s.late[tt], make([]cell, n-s.width)...)
			}
		}
		s.width = n
	}
	if s.width == 0 {
		return
	}
	have := s.frames(t)
	if have == 0 {
		s.origin[t] = uint8(j)
	}
	if p := s.pos(t, j); have < p+1 {
		frames := min(ringSize, max(p+1, 2*have))
		switch {
		case s.exact:
			s.cells[t] = extend(s.cells[t], s.width, frames)
		case s.single(t):
			s.vals = extend(s.vals, s.width, frames)
		default:
			s.packed[t] = extend(s.packed[t], s.width, frames)
		}
	}
}

// count is how many of frame j of tier t's samples had series i.
func (s *series) count(t, j, i int) uint32 {
	f := &s.rings[t][j]
	if i >= int(f.w) {
		return 0
	}
	if !s.isLagged(t, j) {
		return f.n
	}
	for _, l := range s.lag[frameKey(t, j)] {
		if int(l.i) == i {
			return f.n - l.k
		}
	}
	return f.n
}

func (s *series) stat(t, j, i int) stat {
	c := s.cellAt(t, j, i)
	return stat{sum: c.sum, max: c.max, n: s.count(t, j, i)}
}

// grow gives series up to i a cell in frame j of tier t: a series new to
// the frame lacked from every sample it holds so far.
func (s *series) grow(t, j, i int) {
	s.fit(t, j, i+1)
	f := &s.rings[t][j]
	for k := int(f.w); k <= i; k++ {
		f.w++
		s.edit(t, j)[k] = cell{}
		s.lack(t, j, k, f.n)
	}
}

// lack counts k more samples of frame j of tier t without series i.
func (s *series) lack(t, j, i int, k uint32) {
	if k == 0 {
		return
	}
	if s.lag == nil {
		s.lag = map[uint16][]lacking{}
	}
	key := frameKey(t, j)
	lags := s.lag[key]
	for n := range lags {
		if int(lags[n].i) == i {
			lags[n].k += k
			return
		}
	}
	s.lag[key] = append(lags, lacking{int32(i), k})
	s.lagged[t] |= 1 << j
}

// put merges o into series i of frame j of tier t, before the frame's
// count takes in o's samples.
func (s *series) put(t, j, i int, o stat) {
	if i >= int(s.rings[t][j].w) {
		s.grow(t, j, i)
	}
	first := s.count(t, j, i) == 0
	c := &s.edit(t, j)[i]
	if first || o.max > c.max {
		c.max = o.max
	}
	c.sum += o.sum
}

// took closes the adding of k samples to frame j of tier t: the series
// that none of them had (present false) lacked from all k. An empty
// present means they had every series.
func (s *series) took(t, j int, k uint32, present []bool) {
	f := &s.rings[t][j]
	f.n += k
	if len(present) == 0 {
		return
	}
	for i := range int(f.w) {
		if !present[i] {
			s.lack(t, j, i, k)
		}
	}
}

// series is everything kept for one host (or for the hub's own readings).
type series struct {
	name string
	// index is the series index of each key past the dense table (nil
	// while none is).
	index map[key]int
	// dense[k.dense()] is k's series index + 1 (0: not yet), for the keys
	// of the first denseGPUs GPUs.
	dense []int32
	keys  []key
	rings [numTiers][ringSize]frame
	// packed[t] holds the cells of tier t's frames, width per frame (see
	// fit); nil until the tier has a frame with cells. cells is the same
	// in float32, for an exact series (the hub's own) instead.
	packed [numTiers][]pcell
	cells  [numTiers][]cell
	// vals holds the cells of a host's 5m frames, one float32 each, and
	// twin the maxima of those of its frames that hold more than one
	// sample, by frame (see single).
	vals  []float32
	twin  map[int8][]float32
	exact bool
	// open[t] is the frame (-1: none) whose cells are in buf[t], not yet
	// packed: tier t's newest (see edit). lateJ[t] is the older frame of
	// tier t whose cells are in late[t] (-1: none), until another older
	// one is changed: a restore or a late sample changes one frame many
	// times over, rounded once.
	open   [numTiers]int8
	buf    [numTiers][]cell
	lateJ  [numTiers]int8
	late   [numTiers][]cell
	width  int
	origin [numTiers]uint8 // the slot of each tier's first frame (see pos)
	// lag is, by frame (frameKey), how many of its samples lacked a
	// series it has (see frame); nil while no frame has any. Keyed by
	// frame, so a frame's lags go at once when the frame is reused.
	lag map[uint16][]lacking
	// lagged has bit j of tier t set when frame j has an entry in lag.
	lagged [numTiers]uint64
	// ids are the ids of the samples in each 1-minute frame, for
	// de-duplication: a run of one boot's sequence numbers (idRun), and
	// in more, by frame, those that fit no run (nil while none is).
	ids  [ringSize]idRun
	more map[int8][]uint64
	// rids are the ids of a 1-minute frame restored from its persisted
	// minute (RestoreMinute) whose samples were not replayed yet: the
	// frame already counts them, the 5m and 15m windows do not. By frame,
	// nil while none is: only a restart's replay has any, and 60 empty
	// slices were 2.9 MB at 2,000 hosts.
	rids map[int][]uint64
	// models marks 1-minute frames holding a sample with model figures
	// (what the latency tracker also reads), which Covered never skips.
	models [ringSize]bool
	sealed [ringSize]bool
	// dirty marks long frames changed since the last Seal, and 1-minute
	// frames changed since they were last handed out by Minutes.
	dirty [numTiers][ringSize]bool
	// sealedUntil is the start of the newest minute folded into the long
	// tiers; older samples are dropped.
	sealedUntil int64
	newest      int64
	slots       []int  // scratch: series index of each value being added
	present     []bool // scratch: whether the values have series i
	// stride is the number of fields, dense's stride.
	stride int
}

// newSeries is a host's series, or the hub's (exact: kept in float32).
func newSeries(name string, stride int, exact bool) *series {
	s := &series{name: name, stride: stride, exact: exact}
	for t := range s.open {
		s.open[t], s.lateJ[t] = -1, -1
	}
	return s
}

// denseGPUs is how many GPU indexes per host the dense table covers; a
// higher index (not seen on real hosts) takes the map.
const denseGPUs = 64

// denseAt is k's position in series.dense: every field of GPU 0, then of
// GPU 1, and so on; -1 past denseGPUs.
func (s *series) denseAt(k key) int {
	if k.gpu() >= denseGPUs {
		return -1
	}
	return int(k.field()) + s.stride*k.gpu()
}

// slotOf returns k's series index, adding it when new. Each value of each
// sample asks, so the usual keys are found in a flat table (one load)
// rather than the map.
func (s *series) slotOf(k key) int {
	d := s.denseAt(k)
	if d >= 0 && d < len(s.dense) && s.dense[d] > 0 {
		return int(s.dense[d] - 1)
	}
	if i, ok := s.index[k]; ok {
		return i
	}
	i := len(s.keys)
	s.keys = append(s.keys, k)
	if d < 0 {
		if s.index == nil {
			s.index = map[key]int{}
		}
		s.index[k] = i
		return i
	}
	if d >= len(s.dense) {
		s.dense = append(s.dense, make([]int32, d+1-len(s.dense))...)
	}
	s.dense[d] = int32(i + 1)
	return i
}

// Stats are the store's counters.
type Stats struct {
	// Added samples and hub readings placed in the windows.
	Added uint64
	// Duplicates are samples already held (same host/boot/seq).
	Duplicates uint64
	// TooOld are samples older than their host's 60m window.
	TooOld uint64
	// Hosts is the number of hosts with history.
	Hosts int
}

// Store is the in-memory windows. It is safe for concurrent use: the
// hub's ingest adds while the server reads windows.
type Store struct {
	defs [numTiers]tierDef
	tab  *table

	mu    sync.Mutex
	hosts map[string]*series
	hub   *series
	stats Stats
	// vals and models are Add's and Record's scratch.
	vals   []value
	models metrics.AIModels
	// names are the wire names of GPU series made so far: each rollup
	// names its series, and "gpu.3.power_w" built anew for each of 2,000
	// hosts' rollups was 5.5 MB a minute.
	names map[key]string
}

// wireName is the table's wire name of k, a GPU series' built once.
func (s *Store) wireName(k key) string {
	if n, ok := s.names[k]; ok {
		return n
	}
	n := s.tab.wireName(k)
	if s.tab.fields[k.field()].sec == secGPU {
		if s.names == nil {
			s.names = map[key]string{}
		}
		s.names[k] = n
	}
	return n
}

// New returns an empty store.
func New() *Store {
	tab := newTable()
	return &Store{defs: tierDefs(), tab: tab, hosts: map[string]*series{}, hub: newSeries("", len(tab.fields), true)}
}

// sampleID is FNV-1a of boot mixed with seq: a sample's id as minute
// rollups carry it (Rollup.IDs).
func sampleID(boot string, seq uint64) uint64 { return bootHash(boot) ^ seq*seqMix }

const seqMix = 0x9E3779B97F4A7C15

// bootHash is FNV-1a of boot, computed inline: hash/fnv would allocate
// per sample.
func bootHash(boot string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(boot); i++ {
		h ^= uint64(boot[i])
		h *= 1099511628211
	}
	return h
}

// idRun holds the ids of a 1-minute frame's samples as an agent sends
// them: one boot (its hash), sequence numbers base to base+63 by bit of
// mask. 24 bytes a frame, where a list of ids was 152 (its header and a
// backing array of 16, for the 12 samples of a minute at 5 s): 15 MB of
// a 2,000-host hub's heap.
type idRun struct{ boot, base, mask uint64 }

// hasID reports whether frame i holds the sample of boot hash boot and
// sequence number seq.
func (s *series) hasID(i int, boot, seq uint64) bool {
	r := &s.ids[i]
	if r.mask != 0 && r.boot == boot && seq-r.base < 64 && r.mask>>(seq-r.base)&1 != 0 {
		return true
	}
	return s.more != nil && slices.Contains(s.more[int8(i)], boot^seq*seqMix)
}

// addID records that frame i holds that sample: in the frame's run when
// it fits there (its boot, within 64 sequence numbers), else in more (a
// restart's second boot, an agent whose clock stepped).
func (s *series) addID(i int, boot, seq uint64) {
	r := &s.ids[i]
	switch {
	case r.mask == 0:
		*r = idRun{boot, seq, 1}
		return
	case r.boot == boot && seq-r.base < 64: // seq ≥ base: unsigned
		r.mask |= 1 << (seq - r.base)
		return
	case r.boot == boot && seq < r.base && r.base-seq < 64 && r.mask>>(64-(r.base-seq)) == 0:
		r.mask = r.mask<<(r.base-seq) | 1 // a late sample before the run
		r.base = seq
		return
	}
	if s.more == nil {
		s.more = map[int8][]uint64{}
	}
	s.more[int8(i)] = append(s.more[int8(i)], boot^seq*seqMix)
}

// clearIDs forgets frame i's ids.
func (s *series) clearIDs(i int) {
	s.ids[i] = idRun{}
	if s.more != nil {
		delete(s.more, int8(i))
		if len(s.more) == 0 {
			s.more = nil
		}
	}
}

// idsOf appends frame i's ids to out, as sampleID makes them.
func (s *series) idsOf(i int, out []uint64) []uint64 {
	r := &s.ids[i]
	for m := r.mask; m != 0; m &= m - 1 {
		out = append(out, r.boot^(r.base+uint64(bits.TrailingZeros64(m)))*seqMix)
	}
	if s.more != nil {
		out = append(out, s.more[int8(i)]...)
	}
	return out
}

func trunc(ts, res int64) int64 { return ts - mod(ts, res) }

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func (s *Store) idx(start int64, t int) int { return int(mod(start/s.defs[t].res, ringSize)) }

// Add places a host's sample, converted as the live views convert it
// (view.Of), in the slots of its own timestamp.
func (s *Store) Add(fig *view.Figures) {
	if fig == nil || fig.TS <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ser := s.hosts[fig.Host]
	if ser == nil {
		// A copy: the sample's strings share its message's buffer (the
		// hub decodes in place), which the series would keep for good.
		name := strings.Clone(fig.Host)
		ser = newSeries(name, len(s.tab.fields), false)
		s.hosts[name] = ser
	}
	s.vals = s.tab.hostValues(s.vals, fig, &s.models)
	if s.add(ser, bootHash(fig.Boot), fig.Seq, fig.TS, s.vals) && len(fig.Models) > 0 {
		ser.models[s.idx(trunc(fig.TS, s.defs[t60m].res), t60m)] = true
	}
}

// Record places the hub's own readings of u (inference, databases,
// containers) and the fleet's totals at u.Timestamp.
func (s *Store) Record(u *metrics.Update) {
	s.record(u)
}

// record is Record returning the readings placed, for persistence; nil
// when nothing was placed.
func (s *Store) record(u *metrics.Update) *Reading {
	if u == nil || u.Timestamp.IsZero() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals = s.tab.hubValues(s.vals, u)
	ts := u.Timestamp.UnixNano()
	if !s.add(s.hub, 0, uint64(ts), ts, s.vals) {
		return nil
	}
	r := &Reading{V: 1, TS: ts, Names: make([]string, len(s.vals)), Values: make([]float64, len(s.vals))}
	for i, v := range s.vals {
		r.Names[i] = s.wireName(v.k)
		r.Values[i] = v.v
	}
	return r
}

// addReading places a persisted hub reading back.
func (s *Store) addReading(r *Reading) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vals := make([]value, 0, len(r.Names))
	for i, name := range r.Names {
		if i >= len(r.Values) {
			break
		}
		if k, ok := s.tab.parse(name); ok && s.tab.fields[k.field()].sec.ofHub() && !math.IsNaN(r.Values[i]) {
			vals = append(vals, value{k, r.Values[i]})
		}
	}
	s.add(s.hub, 0, uint64(r.TS), r.TS, vals)
}

// add places vals, read at ts, into ser's short tiers. It reports whether
// they were placed (not a duplicate, not too old).
func (s *Store) add(ser *series, boot, seq uint64, ts int64, vals []value) bool {
	minute := s.defs[t60m].res
	m := trunc(ts, minute)
	if ts > ser.newest {
		ser.newest = ts
		// Minutes leaving the 60m window are final: fold them now so the
		// long tiers never miss a host that went quiet.
		s.sealBefore(ser, m-(ringSize-1)*minute)
	}
	if m <= ser.sealedUntil {
		s.stats.TooOld++
		return false
	}
	i := s.idx(m, t60m)
	f := &ser.rings[t60m][i]
	if f.start > m {
		s.stats.TooOld++
		return false
	}
	if f.start < m {
		if f.start != 0 && !ser.sealed[i] {
			s.fold(ser, i)
		}
		ser.reset(t60m, i, m)
		ser.clearIDs(i)
		delete(ser.rids, i)
		ser.sealed[i], ser.models[i] = false, false
	}
	if ser.hasID(i, boot, seq) {
		s.stats.Duplicates++
		return false
	}
	// A sample the restored minute already counts feeds only the shorter
	// windows.
	last := t60m
	if j := slices.Index(ser.rids[i], boot^seq*seqMix); j >= 0 {
		if len(ser.rids[i]) == 1 {
			delete(ser.rids, i)
		} else {
			ser.rids[i] = slices.Delete(ser.rids[i], j, j+1)
		}
		last = t15m
	} else {
		ser.dirty[t60m][i] = true
	}
	ser.addID(i, boot, seq)
	s.stats.Added++

	ser.slots = ser.slots[:0]
	for _, v := range vals {
		ser.slots = append(ser.slots, ser.slotOf(v.k))
	}
	// Usually a sample has every series its host has: present stays empty.
	ser.present = ser.present[:0]
	if len(vals) < len(ser.keys) {
		ser.present = append(ser.present, make([]bool, len(ser.keys))...)
		for _, si := range ser.slots {
			ser.present[si] = true
		}
	}
	for t := t5m; t <= last; t++ {
		start := trunc(ts, s.defs[t].res)
		j := s.idx(start, t)
		fr := &ser.rings[t][j]
		if fr.start > start {
			continue // older than this window holds
		}
		if fr.start < start {
			ser.reset(t, j, start)
		}
		ser.fit(t, j, len(ser.keys))
		if fr.n == 0 && fr.w == 0 && len(vals) == len(ser.keys) {
			// A new frame and a sample with all its host's series: each
			// gets its cell at once, as put would one by one.
			fr.w = uint32(len(vals))
			clear(ser.edit(t, j))
		}
		if !ser.isLagged(t, j) && int(fr.w) == len(ser.keys) {
			// The usual case, put without its checks: every series has a
			// cell and counts the frame's samples.
			first, cells := fr.n == 0, ser.edit(t, j)
			for k, v := range vals {
				x, c := float32(v.v), &cells[ser.slots[k]]
				if first || x > c.max {
					c.max = x
				}
				c.sum += x
			}
		} else {
			for k, v := range vals {
				x := float32(v.v)
				ser.put(t, j, ser.slots[k], stat{sum: x, max: x, n: 1})
			}
		}
		ser.took(t, j, 1, ser.present)
	}
	return true
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Hosts = len(s.hosts)
	return st
}

// Hosts returns the hosts with history, sorted.
func (s *Store) Hosts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.hosts))
}

// slotStats returns the stats of ser's slot starting at start in tier t,
// appending to buf. A long slot combines its sealed part with the
// 1-minute slots not sealed yet.
func (s *Store) slotStats(ser *series, t int, start int64, buf []stat) []stat {
	if j := s.idx(start, t); ser.rings[t][j].start == start {
		for si := range int(ser.rings[t][j].w) {
			buf = append(buf, ser.stat(t, j, si))
		}
	}
	if t < firstLong {
		return buf
	}
	res := s.defs[t].res
	for i := range ser.rings[t60m] {
		f := &ser.rings[t60m][i]
		if f.start == 0 || ser.sealed[i] || trunc(f.start, res) != start {
			continue
		}
		for si := range int(f.w) {
			for si >= len(buf) {
				buf = append(buf, stat{})
			}
			buf[si].merge(ser.stat(t60m, i, si))
		}
	}
	return buf
}
