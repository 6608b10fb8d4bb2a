package history

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// This file is the long windows' side of the store: minutes leaving the
// 60m window are folded ("sealed") into the 6h, 24h and 7d slots, which
// are handed out as Rollups to persist and handed back after a restart.

// sealBefore folds every unsealed minute of ser that starts before cutoff,
// oldest first: a long frame then takes its minutes while it is its
// tier's newest, in float32, and is rounded once (see series.edit).
func (s *Store) sealBefore(ser *series, cutoff int64) {
	var due [ringSize]int8
	n := 0
	for i := range ser.rings[t60m] {
		f := &ser.rings[t60m][i]
		if f.start != 0 && f.start < cutoff && !ser.sealed[i] {
			due[n] = int8(i)
			n++
		}
	}
	if n > 1 {
		slices.SortFunc(due[:n], func(a, b int8) int { return cmp.Compare(ser.rings[t60m][a].start, ser.rings[t60m][b].start) })
	}
	for _, i := range due[:n] {
		s.fold(ser, int(i))
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
			ser.reset(t, j, start)
		}
		ser.fit(t, j, int(f.w))
		for si := range int(f.w) {
			if st := ser.stat(t60m, i, si); st.n > 0 {
				ser.put(t, j, si, st)
			}
		}
		// Each series lacks from lf's count as many samples as f's lacked
		// it (all of them for one f has not).
		lf.n += f.n
		for si := range int(lf.w) {
			ser.lack(t, j, si, f.n-ser.count(t60m, i, si))
		}
		ser.dirty[t][j] = true
	}
	ser.sealed[i] = true
	ser.sealedUntil = max(ser.sealedUntil, f.start)
}

// Seal folds the minutes that left the 60m window by now into the long
// tiers and returns the long slots changed since the last call. It also
// forgets hosts silent for longer than the longest window.
func (s *Store) Seal(now time.Time) []Rollup { return s.seal(now, 0) }

// seal is Seal returning at most limit rollups (0: every one); the rest
// stay changed for the next call. Every minute that leaves the 60m
// window changes a slot of each long window of every host: at 2,000
// hosts 6,000 rollups of about 3.7 KB, 22 MB alive at once while they
// were published one by one, which a collection then counted as live.
func (s *Store) seal(now time.Time, limit int) []Rollup {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.foldDue(now)
	var out []Rollup
	each := func(ser *series) {
		for t := firstLong; t < numTiers; t++ {
			for j := range ser.dirty[t] {
				if !ser.dirty[t][j] || (limit > 0 && len(out) >= limit) {
					continue
				}
				ser.dirty[t][j] = false
				out = append(out, s.rollup(ser, t, j))
			}
		}
	}
	for _, ser := range s.hosts {
		each(ser)
	}
	each(s.hub)
	return out
}

// FoldDue folds the minutes that left the 60m window by now into the long
// tiers, as Seal does, and leaves the changed long slots to the next
// Seal. It also forgets hosts silent for longer than the longest window.
func (s *Store) FoldDue(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.foldDue(now)
}

// foldCutoff is the start of the oldest minute of the 60m window at now:
// the minutes before it are due to be folded.
func (s *Store) foldCutoff(now time.Time) int64 {
	minute := s.defs[t60m].res
	return trunc(now.UnixNano(), minute) - (ringSize-1)*minute
}

func (s *Store) foldDue(now time.Time) {
	cutoff := s.foldCutoff(now)
	for name, ser := range s.hosts {
		s.sealBefore(ser, cutoff)
		if ser.newest < now.UnixNano()-int64(MaxRange)-s.defs[t7d].res {
			delete(s.hosts, name)
		}
	}
	s.sealBefore(s.hub, cutoff)
}

func (s *Store) rollup(ser *series, t, j int) Rollup {
	f := &ser.rings[t][j]
	r := Rollup{V: 1, Host: ser.name, Res: s.defs[t].res / int64(time.Second), Start: f.start, Sealed: ser.sealedUntil}
	for si := range int(f.w) {
		st := ser.stat(t, j, si)
		if st.n == 0 {
			continue
		}
		r.Names = append(r.Names, s.wireName(ser.keys[si]))
		r.Sum = append(r.Sum, float64(st.sum))
		r.Max = append(r.Max, st.top())
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
	if err := r.check(s.defs[t].res); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ser := s.hub
	if r.Host != "" {
		ser = s.host(r.Host)
	}
	j := s.idx(r.Start, t)
	if ser.rings[t][j].start > r.Start {
		return nil // a newer slot already holds the place
	}
	s.fill(ser, t, j, r)
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

// check reports a rollup whose columns disagree or whose start is not a
// slot start of resolution res.
func (r *Rollup) check(res int64) error {
	if len(r.Sum) != len(r.Names) || len(r.Max) != len(r.Names) || len(r.N) != len(r.Names) {
		return fmt.Errorf("rollup of %q at %d: %d names, %d sums, %d maxima, %d counts", r.Host, r.Start, len(r.Names), len(r.Sum), len(r.Max), len(r.N))
	}
	if r.Start <= 0 || mod(r.Start, res) != 0 {
		return fmt.Errorf("rollup of %q: start %d is not a slot start", r.Host, r.Start)
	}
	return nil
}

// host returns the series of host, adding it when new.
func (s *Store) host(name string) *series {
	ser := s.hosts[name]
	if ser == nil {
		ser = newSeries(name, len(s.tab.fields), false)
		s.hosts[name] = ser
	}
	return ser
}

// fill sets frame j of tier t of ser to the persisted slot r; unknown
// series names are skipped, so an older hub reads a newer hub's rollups.
func (s *Store) fill(ser *series, t, j int, r *Rollup) {
	ser.reset(t, j, r.Start)
	f := &ser.rings[t][j]
	for _, n := range r.N {
		f.n = max(f.n, n)
	}
	// The series first, so the tier's cells are laid out once.
	slots := make([]int, len(r.Names))
	for i, name := range r.Names {
		slots[i] = -1
		if k, ok := s.tab.parse(name); ok && r.N[i] > 0 {
			slots[i] = ser.slotOf(k)
		}
	}
	ser.fit(t, j, len(ser.keys))
	w := 0
	for _, si := range slots {
		w = max(w, si+1)
	}
	f.w = uint32(w)
	cells := ser.edit(t, j)
	clear(cells)
	// counts[si] is how many samples had series si; a series the rollup
	// does not name (but one after it does) lacked from all of them.
	counts := make([]uint32, w)
	for i, si := range slots {
		if si >= 0 {
			cells[si] = cell{sum: float32(r.Sum[i]), max: float32(r.Max[i])}
			counts[si] = r.N[i]
		}
	}
	for si, n := range counts {
		ser.lack(t, j, si, f.n-n)
	}
}

// The 60m window's side: each host's 1-minute slots are handed out as
// minute rollups (Res 60) with the ids of the samples they hold, and
// handed back after a restart, so the 60m window comes back without
// decoding its hour of samples again (see Covered).

// Minutes returns the hosts' 1-minute slots changed since the last call,
// as minute rollups: those complete (the host has moved on to a later
// minute, or the minute is over by now), or every changed one when all is
// set (the hub is stopping). Slots already folded into the long windows
// are left out: their rollups hold them.
func (s *Store) Minutes(now time.Time, all bool) []Rollup {
	return s.minutes(now, all, 0)
}

// minutes is Minutes returning at most limit rollups (0: every one); the
// rest stay changed for the next call. A fleet's backlog (agents back
// after an outage, or the load tool's prefill) changes every minute of
// every host between two flushes: at 2,000 hosts that was 120,000
// rollups of about 3.7 KB, 0.4 GB alive at once while they were published
// one by one.
func (s *Store) minutes(now time.Time, all bool, limit int) []Rollup {
	s.mu.Lock()
	defer s.mu.Unlock()
	minute := s.defs[t60m].res
	var out []Rollup
	for _, ser := range s.hosts {
		if limit > 0 && len(out) >= limit {
			break
		}
		filling := trunc(ser.newest, minute)
		for i := range ser.rings[t60m] {
			f := &ser.rings[t60m][i]
			if !ser.dirty[t60m][i] {
				continue
			}
			if !all && f.start >= filling && f.start+minute > now.UnixNano() {
				continue
			}
			if limit > 0 && len(out) >= limit {
				break
			}
			ser.dirty[t60m][i] = false
			if f.start == 0 || ser.sealed[i] {
				continue
			}
			r := s.rollup(ser, t60m, i)
			r.IDs = append(ser.idsOf(i, nil), ser.rids[i]...)
			r.Models = ser.models[i]
			out = append(out, r)
		}
	}
	return out
}

// unsent marks host's minute at start as changed again, after its rollup
// could not be published.
func (s *Store) unsent(host string, start int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ser := s.hosts[host]; ser != nil {
		if i := s.idx(start, t60m); ser.rings[t60m][i].start == start {
			ser.dirty[t60m][i] = true
		}
	}
}

// RestoreMinute puts a persisted minute of a host back into its 60m
// window, with the ids of its samples: a replayed sample among them then
// feeds only the 5m and 15m windows, and Covered may skip it altogether.
// A minute the long windows already hold (restored before, with
// RestoreRollup) is skipped.
func (s *Store) RestoreMinute(r *Rollup) error {
	minute := s.defs[t60m].res
	if r.Res*int64(time.Second) != minute || r.Host == "" {
		return fmt.Errorf("minute rollup of %q: resolution %ds, want %ds", r.Host, r.Res, minute/int64(time.Second))
	}
	if err := r.check(minute); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ser := s.host(r.Host)
	i := s.idx(r.Start, t60m)
	f := &ser.rings[t60m][i]
	if r.Start <= ser.sealedUntil || f.start > r.Start {
		return nil
	}
	// The place holds a minute an hour older that the long windows lack:
	// the hub published its long slots last before that minute was
	// folded (Persist publishes them every RollupEvery). Fold it now, as
	// a sample of the newer minute would (add); replaced, it would be
	// lost, as the samples replayed for it are then too old for its place.
	if f.start != 0 && f.start < r.Start && !ser.sealed[i] {
		s.fold(ser, i)
	}
	s.fill(ser, t60m, i, r)
	ser.clearIDs(i)
	delete(ser.rids, i)
	if len(r.IDs) > 0 {
		if ser.rids == nil {
			ser.rids = map[int][]uint64{}
		}
		ser.rids[i] = slices.Clone(r.IDs)
	}
	ser.models[i] = r.Models
	ser.sealed[i], ser.dirty[t60m][i] = false, false
	ser.newest = max(ser.newest, r.Start)
	return nil
}

// Covered reports whether a replayed sample of host (its boot and seq)
// is already counted by a restored minute that only the 60m window
// needs: older than the 15m window, not its host's newest minute (which
// holds the host's current state) and without model figures (which the
// latency tracker reads from the sample). The hub's ingest then need not
// decode it.
func (s *Store) Covered(host, boot string, seq uint64, now time.Time) bool {
	id := sampleID(boot, seq)
	minute, quarter := s.defs[t60m].res, s.defs[t15m].res
	// The 15m window's oldest slot, a minute earlier for clock skew.
	oldest := trunc(now.UnixNano(), quarter) - (ringSize-1)*quarter - minute
	s.mu.Lock()
	defer s.mu.Unlock()
	ser := s.hosts[host]
	if ser == nil {
		return false
	}
	newest := trunc(ser.newest, minute)
	for i := range ser.rids {
		if slices.Contains(ser.rids[i], id) {
			start := ser.rings[t60m][i].start
			return start < newest && start+minute <= oldest && !ser.models[i]
		}
	}
	return false
}
