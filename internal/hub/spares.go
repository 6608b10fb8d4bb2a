package hub

import (
	"sync"

	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// held is one accepted sample as the hub keeps it: its figures, what
// the merger reads of the sample (merged) and its host's part, in one
// allocation. latest points into it.
//
// Its memory is reused (spares), with its GPU view list and its part's
// model entries: of some 6 KB a sample they were 4.5, and a 2,000-host
// fleet's ingest allocated them 400 times a second. An entry is reused
// only when nothing can read it any more:
//
//   - The ingest gives history its figures before it places the entry
//     as its host's newest, and reads nothing of it after: an entry it
//     does not place (a late sample) it gives back at once.
//   - A placed entry is read by the merger, from the snapshots, until a
//     newer one of its host replaces it in the merger's part: the
//     merger gives it back then (merger.merge). By then it is no longer
//     the ingest's newest either (the newest only moves on), and no
//     snapshot holds it but the merger's earlier ones, which are gone.
//   - One merger reads an ingest's snapshots (the hub's loop): a second
//     would read entries the first gave back.
//   - An update never points into an entry: it holds copies of the
//     part's status, GPU views and model entries (merge), and what
//     those point at (the figures' arena, the model views, the errors)
//     is never reused. So a published update, read for as long as its
//     readers like, never changes (TestPublishedUpdateNeverChanges,
//     TestSparesReuse).
type held struct {
	f view.Figures
	s metrics.Sample
	v hostView
}

// spares are entries given back, for the ingest to reuse. Safe for
// concurrent use: the ingest takes, the merger gives back.
type spares struct {
	mu   sync.Mutex
	free []*held
}

// minSpares is how many entries put keeps whatever the fleet's size.
const minSpares = 64

// get returns an entry to fill: a reused one holds its old figures and
// part, which the caller overwrites (fill).
func (sp *spares) get() *held {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if n := len(sp.free); n > 0 {
		e := sp.free[n-1]
		sp.free[n-1] = nil
		sp.free = sp.free[:n-1]
		return e
	}
	return &held{}
}

// put gives e back; nothing may read it afterwards. At most keep
// entries are kept, at least minSpares: the merger passes its hosts, as
// it gives back one per host and tick and the ingest takes them over the
// next interval. An entry kept holds what its old views point at (its
// figures, its message), so a fleet that shrinks sheds the surplus.
func (sp *spares) put(e *held, keep int) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	keep = max(keep, minSpares)
	if len(sp.free) < keep {
		sp.free = append(sp.free, e)
		return
	}
	clear(sp.free[keep:])
	sp.free = sp.free[:keep]
}

// fill converts s into e, which nothing else reads: the figures, the
// envelope and errors the merger reads (merged). The part is left zero
// but for its model list's memory, for into to fill.
func (e *held) fill(s *metrics.Sample) {
	e.f = view.OfIn(s, e.f.GPUs)
	e.s = merged(s)
	e.v = hostView{models: e.v.models[:0]}
}
