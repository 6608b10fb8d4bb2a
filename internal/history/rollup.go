package history

import (
	"fmt"
	"time"
)

// This file is the long windows' side of the store: minutes leaving the
// 60m window are folded ("sealed") into the 6h, 24h and 7d slots, which
// are handed out as Rollups to persist and handed back after a restart.

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
		lf.fit(len(f.cells))
		for si := range f.cells {
			if st := f.stat(si); st.n > 0 {
				lf.put(si, st)
			}
		}
		// Each series lacks from lf's count as many samples as f's lacked
		// it (all of them for one f has not).
		lf.n += f.n
		for si := range lf.cells {
			lf.lack(si, f.n-f.count(si))
		}
		ser.dirty[t][j] = true
	}
	ser.sealed[i] = true
	ser.sealedUntil = max(ser.sealedUntil, f.start)
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
	for si := range f.cells {
		st := f.stat(si)
		if st.n == 0 {
			continue
		}
		r.Names = append(r.Names, s.tab.wireName(ser.keys[si]))
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
			ser = newSeries(r.Host, len(s.tab.fields))
			s.hosts[r.Host] = ser
		}
	}
	f := &ser.rings[t][s.idx(r.Start, t)]
	if f.start > r.Start {
		return nil // a newer slot already holds the place
	}
	f.reset(r.Start)
	f.fit(len(r.Names))
	f.n = 0
	for _, n := range r.N {
		f.n = max(f.n, n)
	}
	for i, name := range r.Names {
		k, ok := s.tab.parse(name)
		if !ok || r.N[i] == 0 {
			continue
		}
		si := ser.slotOf(k)
		f.grow(si) // lacking from all f.n samples
		f.cells[si] = cell{sum: float32(r.Sum[i]), max: float32(r.Max[i])}
		delete(f.lag, int32(si))
		f.lack(si, f.n-r.N[i])
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
