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
package history

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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

// stat is one series' aggregate over one slot.
type stat struct {
	sum, max float64
	n        uint32
}

func (s *stat) add(v float64) {
	if s.n == 0 || v > s.max {
		s.max = v
	}
	s.sum += v
	s.n++
}

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

// frame is one slot: its start and the stats of its owner's series, by
// the owner's series index.
type frame struct {
	start int64 // unix ns; 0 = empty
	stats []stat
}

func (f *frame) reset(start int64) {
	f.start = start
	clear(f.stats)
}

// fit makes room for n series in one allocation, so a frame a new host
// or a new slot starts filling does not grow one series at a time.
func (f *frame) fit(n int) {
	if n > cap(f.stats) {
		f.stats = append(make([]stat, 0, n), f.stats...)
	}
}

func (f *frame) at(i int) *stat {
	if i >= len(f.stats) {
		f.stats = append(f.stats, make([]stat, i+1-len(f.stats))...)
	}
	return &f.stats[i]
}

// series is everything kept for one host (or for the hub's own readings).
type series struct {
	name  string
	index map[key]int
	// dense[k.dense()] is index[k]+1 (0: not yet), for the keys of the
	// first denseGPUs GPUs.
	dense []int32
	keys  []key
	rings [numTiers][ringSize]frame
	// ids are the sample ids in each 1-minute frame, for de-duplication.
	ids    [ringSize][]uint64
	sealed [ringSize]bool
	// dirty marks long frames changed since the last Seal.
	dirty [numTiers][ringSize]bool
	// sealedUntil is the start of the newest minute folded into the long
	// tiers; older samples are dropped.
	sealedUntil int64
	newest      int64
	slots       []int // scratch: series index of each value being added
}

func newSeries(name string) *series {
	return &series{name: name, index: map[key]int{}}
}

// denseGPUs is how many GPU indexes per host the dense table covers; a
// higher index (not seen on real hosts) takes the map.
const denseGPUs = 64

// dense is k's position in series.dense: every field of GPU 0, then of
// GPU 1, and so on; -1 past denseGPUs.
func (k key) dense() int {
	if k.gpu() >= denseGPUs {
		return -1
	}
	return int(k.field()) + int(numFields)*k.gpu()
}

// slotOf returns k's series index, adding it when new. Each value of each
// sample asks, so the usual keys are found in a flat table (one load)
// rather than the map.
func (s *series) slotOf(k key) int {
	d := k.dense()
	if d >= 0 && d < len(s.dense) && s.dense[d] > 0 {
		return int(s.dense[d] - 1)
	}
	i, ok := s.index[k]
	if !ok {
		i = len(s.keys)
		s.index[k] = i
		s.keys = append(s.keys, k)
	}
	if d >= 0 {
		if d >= len(s.dense) {
			s.dense = append(s.dense, make([]int32, d+1-len(s.dense))...)
		}
		s.dense[d] = int32(i + 1)
	}
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
	defs   [numTiers]tierDef
	paths  [numFields]string
	byPath map[string]field

	mu    sync.Mutex
	hosts map[string]*series
	hub   *series
	col   collector
	stats Stats
}

// New returns an empty store.
func New() *Store {
	s := &Store{defs: tierDefs(), paths: paths(), byPath: map[string]field{}, hosts: map[string]*series{}, hub: newSeries("")}
	for f, p := range s.paths {
		s.byPath[p] = field(f)
	}
	return s
}

// sampleID is FNV-1a of boot mixed with seq, computed inline: hash/fnv
// would allocate per sample.
func sampleID(boot string, seq uint64) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(boot); i++ {
		h ^= uint64(boot[i])
		h *= 1099511628211
	}
	return h ^ (seq * 0x9E3779B97F4A7C15)
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

// Add places a sample in the slots of its own timestamp.
func (s *Store) Add(smp *metrics.Sample) {
	if smp == nil || smp.TS <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ser := s.hosts[smp.Host]
	if ser == nil {
		ser = newSeries(smp.Host)
		s.hosts[smp.Host] = ser
	}
	s.col.sampleValues(smp)
	s.add(ser, sampleID(smp.Boot, smp.Seq), smp.TS, s.col.out)
}

// Record places the hub's own readings of u (inference, databases,
// containers) at u.Timestamp.
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
	s.col.updateValues(u)
	ts := u.Timestamp.UnixNano()
	if !s.add(s.hub, uint64(ts), ts, s.col.out) {
		return nil
	}
	r := &Reading{V: 1, TS: ts, Names: make([]string, len(s.col.out)), Values: make([]float64, len(s.col.out))}
	for i, v := range s.col.out {
		r.Names[i] = v.k.wireName(&s.paths)
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
		if k, ok := parseWireName(s.byPath, name); ok && !math.IsNaN(r.Values[i]) {
			vals = append(vals, value{k, r.Values[i]})
		}
	}
	s.add(s.hub, uint64(r.TS), r.TS, vals)
}

// add places vals, read at ts, into ser's short tiers. It reports whether
// they were placed (not a duplicate, not too old).
func (s *Store) add(ser *series, id uint64, ts int64, vals []value) bool {
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
		f.reset(m)
		ser.ids[i] = ser.ids[i][:0]
		ser.sealed[i] = false
	}
	if slices.Contains(ser.ids[i], id) {
		s.stats.Duplicates++
		return false
	}
	ser.ids[i] = append(ser.ids[i], id)
	s.stats.Added++

	ser.slots = ser.slots[:0]
	for _, v := range vals {
		ser.slots = append(ser.slots, ser.slotOf(v.k))
	}
	for t := t5m; t <= t60m; t++ {
		start := trunc(ts, s.defs[t].res)
		fr := &ser.rings[t][s.idx(start, t)]
		if fr.start > start {
			continue // older than this window holds
		}
		if fr.start < start {
			fr.reset(start)
		}
		fr.fit(len(ser.keys))
		for j, v := range vals {
			fr.at(ser.slots[j]).add(v.v)
		}
	}
	return true
}

// sealBefore folds every unsealed minute of ser that starts before cutoff.
func (s *Store) sealBefore(ser *series, cutoff int64) {
	for i := range ser.rings[t60m] {
		f := &ser.rings[t60m][i]
		if f.start != 0 && f.start < cutoff && !ser.sealed[i] {
			s.fold(ser, i)
		}
	}
}

// fold adds the 1-minute frame i of ser to the long tiers and seals it.
func (s *Store) fold(ser *series, i int) {
	f := &ser.rings[t60m][i]
	for t := firstLong; t < numTiers; t++ {
		start := trunc(f.start, s.defs[t].res)
		j := s.idx(start, t)
		lf := &ser.rings[t][j]
		if lf.start > start {
			continue
		}
		if lf.start < start {
			lf.reset(start)
		}
		for si, st := range f.stats {
			lf.at(si).merge(st)
		}
		ser.dirty[t][j] = true
	}
	ser.sealed[i] = true
	ser.sealedUntil = max(ser.sealedUntil, f.start)
}

// Rollup is one long-window slot of one host, as persisted. Host is empty
// for the hub's own readings. A later rollup of the same host, resolution
// and start replaces an earlier one.
type Rollup struct {
	V      int       `msgpack:"v"`
	Host   string    `msgpack:"h"`
	Res    int64     `msgpack:"r"` // resolution in seconds
	Start  int64     `msgpack:"t"` // unix ns
	Sealed int64     `msgpack:"s"` // newest minute folded, unix ns
	Names  []string  `msgpack:"k"`
	Sum    []float64 `msgpack:"u"`
	Max    []float64 `msgpack:"m"`
	N      []uint32  `msgpack:"n"`
}

// Reading is one hub reading (the figures Record placed), as persisted.
type Reading struct {
	V      int       `msgpack:"v"`
	TS     int64     `msgpack:"t"`
	Names  []string  `msgpack:"k"`
	Values []float64 `msgpack:"x"`
}

// Seal folds the minutes that left the 60m window by now into the long
// tiers and returns the long slots changed since the last call. It also
// forgets hosts silent for longer than the longest window.
func (s *Store) Seal(now time.Time) []Rollup {
	s.mu.Lock()
	defer s.mu.Unlock()
	minute := s.defs[t60m].res
	cutoff := trunc(now.UnixNano(), minute) - (ringSize-1)*minute
	var out []Rollup
	each := func(ser *series) {
		s.sealBefore(ser, cutoff)
		for t := firstLong; t < numTiers; t++ {
			for j := range ser.dirty[t] {
				if !ser.dirty[t][j] {
					continue
				}
				ser.dirty[t][j] = false
				out = append(out, s.rollup(ser, t, j))
			}
		}
	}
	for name, ser := range s.hosts {
		each(ser)
		if ser.newest < now.UnixNano()-int64(MaxRange)-s.defs[t7d].res {
			delete(s.hosts, name)
		}
	}
	each(s.hub)
	return out
}

func (s *Store) rollup(ser *series, t, j int) Rollup {
	f := &ser.rings[t][j]
	r := Rollup{V: 1, Host: ser.name, Res: s.defs[t].res / int64(time.Second), Start: f.start, Sealed: ser.sealedUntil}
	for si, st := range f.stats {
		if st.n == 0 {
			continue
		}
		r.Names = append(r.Names, ser.keys[si].wireName(&s.paths))
		r.Sum = append(r.Sum, st.sum)
		r.Max = append(r.Max, st.max)
		r.N = append(r.N, st.n)
	}
	return r
}

// RestoreRollup puts a persisted long slot back. It returns an error for a
// rollup that fits no window; unknown series names are skipped, so an
// older hub reads a newer hub's rollups.
func (s *Store) RestoreRollup(r *Rollup) error {
	t := -1
	for i := firstLong; i < numTiers; i++ {
		if s.defs[i].res == r.Res*int64(time.Second) {
			t = i
		}
	}
	if t < 0 {
		return fmt.Errorf("rollup of %q: resolution %ds is not a long window's", r.Host, r.Res)
	}
	if len(r.Sum) != len(r.Names) || len(r.Max) != len(r.Names) || len(r.N) != len(r.Names) {
		return fmt.Errorf("rollup of %q at %d: %d names, %d sums, %d maxima, %d counts", r.Host, r.Start, len(r.Names), len(r.Sum), len(r.Max), len(r.N))
	}
	if r.Start <= 0 || mod(r.Start, s.defs[t].res) != 0 {
		return fmt.Errorf("rollup of %q: start %d is not a slot start", r.Host, r.Start)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ser := s.hub
	if r.Host != "" {
		ser = s.hosts[r.Host]
		if ser == nil {
			ser = newSeries(r.Host)
			s.hosts[r.Host] = ser
		}
	}
	f := &ser.rings[t][s.idx(r.Start, t)]
	if f.start > r.Start {
		return nil // a newer slot already holds the place
	}
	f.reset(r.Start)
	for i, name := range r.Names {
		k, ok := parseWireName(s.byPath, name)
		if !ok || r.N[i] == 0 {
			continue
		}
		*f.at(ser.slotOf(k)) = stat{sum: r.Sum[i], max: r.Max[i], n: r.N[i]}
	}
	ser.sealedUntil = max(ser.sealedUntil, r.Sealed)
	ser.newest = max(ser.newest, r.Sealed)
	return nil
}

// ReplayStart is where a replay of samples (and hub readings) must start
// for the windows to be complete at now: an hour back, or further when the
// newest sealed minute of some host is older (the hub was down), up to the
// longest window.
func (s *Store) ReplayStart(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := now.Add(-time.Hour)
	oldest := now.Add(-MaxRange)
	each := func(ser *series) {
		if ser.sealedUntil == 0 {
			return
		}
		t := time.Unix(0, ser.sealedUntil).Add(time.Minute)
		if t.Before(start) {
			start = t
		}
	}
	for _, ser := range s.hosts {
		each(ser)
	}
	each(s.hub)
	if start.Before(oldest) {
		start = oldest
	}
	return start
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

// UnknownHostError is Window's answer for a host with no history: a
// typo'd host filter is the client's mistake to hear about, not an empty
// chart. Known lists the hosts that have history, sorted.
type UnknownHostError struct {
	Host  string
	Known []string
}

func (e *UnknownHostError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown host %q: no host has history yet", e.Host)
	}
	return fmt.Sprintf("unknown host %q (known hosts: %s)", e.Host, strings.Join(e.Known, ", "))
}

// KnownHosts lets a caller that does not import this package (the HTTP
// server) tell an unknown host from a bad range.
func (e *UnknownHostError) KnownHosts() []string { return e.Known }

// Window returns the 60 points of range rng ending with the slot that
// holds now, oldest first. host, when not empty, restricts the agents'
// series to that host, and a host with no history is an
// *UnknownHostError; the hub's own series are always included.
func (s *Store) Window(now time.Time, rng, host string) (metrics.History, error) {
	t := -1
	for i, d := range s.defs {
		if d.name == rng {
			t = i
		}
	}
	if t < 0 {
		return metrics.History{}, fmt.Errorf("unknown range %q (want one of %v)", rng, Ranges())
	}
	res := s.defs[t].res
	end := trunc(now.UnixNano(), res)
	h := metrics.History{Range: rng, ResolutionS: int(res / int64(time.Second)), Points: make([]metrics.Point, ringSize)}
	for k := range h.Points {
		h.Points[k].Timestamp = time.Unix(0, end-int64(ringSize-1-k)*res).UTC()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	if host != "" {
		if _, ok := s.hosts[host]; !ok {
			return metrics.History{}, &UnknownHostError{Host: host, Known: slices.Sorted(maps.Keys(s.hosts))}
		}
		names = []string{host}
	} else {
		names = slices.Sorted(maps.Keys(s.hosts))
	}
	scratch := make([]stat, 0, 64)
	for k := range h.Points {
		p := &h.Points[k]
		start := p.Timestamp.UnixNano()
		for _, name := range names {
			ser := s.hosts[name]
			scratch = s.slotStats(ser, t, start, scratch[:0])
			s.hostPoint(p, ser, scratch)
		}
		scratch = s.slotStats(s.hub, t, start, scratch[:0])
		s.hubPoint(p, s.hub, scratch)
	}
	return h, nil
}

// slotStats returns the stats of ser's slot starting at start in tier t,
// appending to buf. A long slot combines its sealed part with the
// 1-minute slots not sealed yet.
func (s *Store) slotStats(ser *series, t int, start int64, buf []stat) []stat {
	if f := &ser.rings[t][s.idx(start, t)]; f.start == start {
		buf = append(buf, f.stats...)
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
		for si, st := range f.stats {
			for si >= len(buf) {
				buf = append(buf, stat{})
			}
			buf[si].merge(st)
		}
	}
	return buf
}

func (p *pointMax) set(path string, v float64) {
	if p.m == nil {
		p.m = map[string]float64{}
	}
	p.m[path] = v
}

type pointMax struct{ m map[string]float64 }

// hostPoint adds one host's slot to p.
func (s *Store) hostPoint(p *metrics.Point, ser *series, stats []stat) {
	var hv metrics.HostView
	var models metrics.AIModels
	hasHost, hasModels := false, false
	gpus := map[int]*metrics.GPUView{}
	mx := pointMax{p.Max}
	hostPrefix := "hosts." + ser.name + "."
	for si, st := range stats {
		if st.n == 0 {
			continue
		}
		k := ser.keys[si]
		f := k.field()
		mean := st.sum / float64(st.n)
		switch {
		case f.isGPU():
			g := gpus[k.gpu()]
			if g == nil {
				idx := k.gpu()
				g = &metrics.GPUView{Host: ser.name, Index: &idx}
				gpus[idx] = g
			}
			setGPU(g, f, mean)
			mx.set("gpus."+ser.name+"."+strconv.Itoa(k.gpu())+"."+s.paths[f], st.max)
		case f <= fNetTx:
			setHost(&hv, f, mean)
			hasHost = true
			mx.set(hostPrefix+s.paths[f][len("host."):], st.max)
		case f <= fNemotronSlotsTotal:
			setModel(&models, f, mean)
			hasModels = true
			if p.AIModels == nil {
				mx.set(s.paths[f], st.max)
			}
		}
	}
	if hasHost {
		p.Hosts = append(p.Hosts, metrics.HostStatus{Host: ser.name, Online: true, LastSeen: p.Timestamp, System: hv, GPUCount: len(gpus)})
		if p.Host == nil {
			h := hv
			p.Host = &h
			for si, st := range stats {
				if f := ser.keys[si].field(); st.n > 0 && f <= fNetTx {
					mx.set(s.paths[f], st.max)
				}
			}
		}
	}
	if hasModels && p.AIModels == nil {
		m := models
		p.AIModels = &m
	}
	if len(gpus) > 0 {
		idxs := slices.Sorted(maps.Keys(gpus))
		for _, i := range idxs {
			p.GPUs = append(p.GPUs, *gpus[i])
		}
		if p.GPU == nil {
			g := *gpus[idxs[0]]
			p.GPU = &g
			for si, st := range stats {
				if k := ser.keys[si]; st.n > 0 && k.field().isGPU() && k.gpu() == idxs[0] {
					mx.set("gpu."+s.paths[k.field()], st.max)
				}
			}
		}
	}
	p.Max = mx.m
}

// hubPoint adds the hub's own slot to p.
func (s *Store) hubPoint(p *metrics.Point, ser *series, stats []stat) {
	mx := pointMax{p.Max}
	for si, st := range stats {
		if st.n == 0 {
			continue
		}
		f := ser.keys[si].field()
		setHub(p, f, st.sum/float64(st.n))
		mx.set(s.paths[f], st.max)
	}
	p.Max = mx.m
}

func fp(v float64) *float64 { return &v }

func ip(v float64) *int {
	i := int(math.Round(v))
	return &i
}

func i64p(v float64) *int64 {
	i := int64(math.Round(v))
	return &i
}

func setHost(h *metrics.HostView, f field, v float64) {
	switch f {
	case fCPU:
		h.CPUPercent = fp(v)
	case fRAMUsed:
		h.RAMUsedGB = fp(v)
	case fRAMTotal:
		h.RAMTotalGB = fp(v)
	case fDiskUsed:
		h.DiskUsedGB = fp(v)
	case fDiskTotal:
		h.DiskTotalGB = fp(v)
	case fLoad1:
		h.Load1 = fp(v)
	case fLoad5:
		h.Load5 = fp(v)
	case fLoad15:
		h.Load15 = fp(v)
	case fSwapUsed:
		h.SwapUsedGB = fp(v)
	case fSwapTotal:
		h.SwapTotalGB = fp(v)
	case fDiskRead:
		h.DiskReadMBps = fp(v)
	case fDiskWrite:
		h.DiskWriteMBps = fp(v)
	case fNetRx:
		h.NetRxMBps = fp(v)
	case fNetTx:
		h.NetTxMBps = fp(v)
	}
}

func setGPU(g *metrics.GPUView, f field, v float64) {
	switch f {
	case fGPUUtil:
		g.Utilization = fp(v)
	case fGPUMemUtil:
		g.MemoryUtilization = fp(v)
	case fGPUVRAMUsed:
		g.VRAMUsedGB = fp(v)
	case fGPUVRAMTotal:
		g.VRAMTotalGB = fp(v)
	case fGPUTemp:
		g.Temperature = fp(v)
	case fGPUPower:
		g.PowerWatts = fp(v)
	}
}

func setModel(m *metrics.AIModels, f field, v float64) {
	switch f {
	case fRTDETRVRAM:
		m.RTDETR.VRAMGB = fp(v)
	case fNemotronVRAM:
		m.Nemotron.VRAMGB = fp(v)
	case fNemotronSlotsActive:
		m.Nemotron.SlotsActive = ip(v)
	case fNemotronSlotsTotal:
		m.Nemotron.SlotsTotal = ip(v)
	}
}

func setHub(p *metrics.Point, f field, v float64) {
	if f >= fRTDETRAvg && f <= fEventsPerMin && p.Inference == nil {
		p.Inference = &metrics.Latencies{}
	}
	if f >= fPGConnActive && f <= fRedisBlocked && p.Databases == nil {
		p.Databases = &metrics.Databases{}
	}
	if f >= fContainersTotal && p.Containers == nil {
		p.Containers = &metrics.ContainerCounts{}
	}
	switch f {
	case fRTDETRAvg:
		p.Inference.RTDETR.Avg = fp(v)
	case fRTDETRP95:
		p.Inference.RTDETR.P95 = fp(v)
	case fRTDETRP99:
		p.Inference.RTDETR.P99 = fp(v)
	case fNemotronAvg:
		p.Inference.Nemotron.Avg = fp(v)
	case fNemotronP95:
		p.Inference.Nemotron.P95 = fp(v)
	case fNemotronP99:
		p.Inference.Nemotron.P99 = fp(v)
	case fPipelineAvg:
		p.Inference.Pipeline.Avg = fp(v)
	case fPipelineP95:
		p.Inference.Pipeline.P95 = fp(v)
	case fPipelineP99:
		p.Inference.Pipeline.P99 = fp(v)
	case fImagesPerMin:
		p.Inference.Throughput.ImagesPerMin = fp(v)
	case fEventsPerMin:
		p.Inference.Throughput.EventsPerMin = fp(v)
	case fPGConnActive:
		p.Databases.PostgreSQL.ConnectionsActive = ip(v)
	case fPGConnMax:
		p.Databases.PostgreSQL.ConnectionsMax = ip(v)
	case fPGCacheHit:
		p.Databases.PostgreSQL.CacheHitRatio = fp(v)
	case fPGTxPerMin:
		p.Databases.PostgreSQL.TransactionsPerMin = fp(v)
	case fRedisClients:
		p.Databases.Redis.ConnectedClients = i64p(v)
	case fRedisMemory:
		p.Databases.Redis.MemoryMB = fp(v)
	case fRedisHitRatio:
		p.Databases.Redis.HitRatio = fp(v)
	case fRedisBlocked:
		p.Databases.Redis.BlockedClients = i64p(v)
	case fContainersTotal:
		p.Containers.Total = fp(v)
	case fContainersUnhealthy:
		p.Containers.Unhealthy = fp(v)
	}
}
