package hub

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// SourceNone is Update.Sources' value for a section nothing filled.
const SourceNone = "none"

// staleAfter is how many of its intervals a host may stay silent before it
// is offline and its sections are stale.
const staleAfter = 3

// sampleInterval is the interval the agent declares, else the hub's.
func sampleInterval(s *metrics.Sample, fallback time.Duration) time.Duration {
	if s.Interval > 0 {
		return time.Duration(s.Interval)
	}
	return fallback
}

// online reports whether a host's newest sample is recent enough: it is
// judged by the sample's own timestamp, so a backlog replayed after an
// outage does not make a host look live.
func online(now time.Time, s *metrics.Sample, fallback time.Duration) bool {
	return now.Sub(time.Unix(0, s.TS)) <= staleAfter*sampleInterval(s, fallback)
}

// latest is a host's newest sample with its figures in the dashboard's
// units (view.Of), converted once, by the ingest: the merger builds the
// host's part from the figures and reads the sample only for what they
// do not hold (errors, interval, the model entries' raw fields). The
// ingest keeps only those of the sample (merged): its GPUs, host section
// and inference series are nil there; the figures hold them converted.
type latest struct {
	s *metrics.Sample
	f *view.Figures
	// v is the host's part as it reports (fresh), built by the ingest
	// while the sample's figures are still in the CPU's cache: built by
	// the merger at the tick, it read each host's figures, models and
	// model entries back from memory, most of a 2,000-host merge. Never
	// modified once placed. nil: the merger builds it (tests).
	v *hostView
	// e is the entry s, f and v are in, for the merger to give back to
	// sp once a newer sample replaces it (spares); nil: not reused.
	e  *held
	sp *spares
}

// hostView is one host's sample in the dashboard's units, marked online
// or stale: what a tick copies into the update.
type hostView struct {
	status metrics.HostStatus
	// gpus are by index; gpus[first] is the sample's first GPU, the
	// seed's "gpu" (an index, not a copy: a copy was 384 bytes more to
	// write and read per host and tick).
	gpus  []metrics.GPUView
	first int
	// hasSystem: the sample has a host section.
	hasSystem bool
	// models are the host's model entries, by name.
	models []metrics.ModelEntry
}

// part is one host's newest sample: on as the host is while it reports,
// built by the ingest from its figures; off, the same marked stale, made
// from on when the host is first found silent.
type part struct {
	latest
	on, off *hostView
	seen    uint64 // the merge that last saw it
}

func (p *part) view(online bool) *hostView {
	if online {
		return p.on
	}
	if p.off == nil {
		p.off = p.on.stale()
	}
	return p.off
}

// fresh is a host's part as it reports, from its figures: it shares
// them (the GPU views are copied into each update, the rest is only
// read), so nothing is converted again.
func fresh(l latest) *hostView {
	return l.into(&hostView{})
}

// into builds l's part in v, which must be zero (fresh) but for its
// model list, whose memory it reuses (spares): its fields are
// set one by one (a composite literal was built on the stack, then
// copied over v). An update gets copies of a part's status, GPU views
// and model entries, never the part itself nor its model array.
func (l latest) into(v *hostView) *hostView {
	s, f := l.s, l.f
	st := &v.status
	st.Host, st.Online, st.LastSeen = s.Host, true, time.Unix(0, s.TS).UTC()
	st.Boot, st.Seq, st.GPUCount = s.Boot, s.Seq, len(f.GPUs)
	// A copy: patches and alert rules may touch the update, never the
	// stored sample.
	st.Errors = maps.Clone(s.Errors)
	st.Models = f.Models
	v.gpus, v.hasSystem = f.GPUs, f.System != nil
	if f.System != nil {
		v.status.System = *f.System
	}
	if !f.ByIndex && len(v.gpus) > 1 {
		// Sorted in a copy: the figures are history's too. The sample's
		// first GPU goes after the GPUs of lower index (a stable sort).
		first := *v.gpus[0].Index
		for i := range v.gpus {
			if *v.gpus[i].Index < first {
				v.first++
			}
		}
		v.gpus = slices.Clone(v.gpus)
		slices.SortStableFunc(v.gpus, func(a, b metrics.GPUView) int { return *a.Index - *b.Index })
	}
	if n := len(s.Models); n > 0 {
		if cap(v.models) >= n {
			// A reused entry's (spares): modelEntryTo writes only the
			// fields a model has.
			v.models = v.models[:n]
			clear(v.models)
		} else {
			v.models = make([]metrics.ModelEntry, n)
		}
		// A host runs a few models: their names are sorted on the stack
		// (sorting maps.Keys' iterator allocated twice per host), by
		// insertion (slices.Sort's generic sort cost more than the
		// entries for two names).
		var buf [8]string
		names := buf[:0]
		for name := range s.Models {
			i := len(names)
			names = append(names, name)
			for ; i > 0 && names[i-1] > name; i-- {
				names[i] = names[i-1]
			}
			names[i] = name
		}
		for i, name := range names {
			// Written in place: an entry is some 400 bytes.
			modelEntryTo(&v.models[i], s, name, s.Models[name], f.Models[name])
		}
	}
	return v
}

// stale is v as a silent host's: offline, every section marked stale.
// Only the flags differ, so it is a copy, not a conversion.
func (v *hostView) stale() *hostView {
	o := *v
	o.status.Online = false
	if v.status.Models != nil {
		o.status.Models = make(map[string]metrics.ModelView, len(v.status.Models))
		for role, m := range v.status.Models {
			m.Stale = true
			o.status.Models[role] = m
		}
	}
	o.gpus = make([]metrics.GPUView, len(v.gpus))
	for i, g := range v.gpus {
		g.Stale = true
		o.gpus[i] = g
	}
	o.models = make([]metrics.ModelEntry, len(v.models))
	for i, e := range v.models {
		e.Stale = true
		o.models[i] = e
	}
	return &o
}

// merger builds the agent-fed part of each update from the newest sample
// of each host. It converts nothing and builds nothing per host: a host's
// part comes built by the ingest with its figures (latest.v); a tick only
// marks hosts online or stale and copies their parts in. It is not safe
// for concurrent use: the hub's loop owns it.
type merger struct {
	parts  map[string]*part
	names  []string // of parts, sorted
	byName []*part  // parts[names[i]], so a tick looks each host up once
	gen    uint64
	// views is the tick's scratch list of host views, by name then
	// online first: the merger's own, never part of an update.
	views []*hostView
}

// merge builds the update at now; the loop adds latency, sources and
// alerts. The parts it copies in are shared with the next updates: what
// holds them must not modify them.
func (m *merger) merge(now time.Time, newest map[string]latest, interval time.Duration) metrics.Update {
	u := metrics.Update{
		Type:       metrics.TypeUpdate,
		Timestamp:  now.UTC(),
		Containers: []metrics.Container{},
		Alerts:     []metrics.Alert{},
		Sources:    map[string]string{},
		Stale:      map[string]bool{},
		Errors:     map[string]string{},
		Models:     []metrics.ModelEntry{},
	}
	if m.parts == nil {
		m.parts = make(map[string]*part, len(newest))
	}
	m.gen++
	hostsChanged := false
	for h, l := range newest {
		p := m.parts[h]
		if p == nil {
			hostsChanged = true
			p = &part{}
			m.parts[h] = p
		}
		if p.f != l.f {
			on := l.v
			if on == nil {
				on = fresh(l)
			}
			// The replaced entry is read no more: the update holds
			// copies of its part, and the ingest has a newer one.
			if p.e != nil {
				p.sp.put(p.e, len(newest))
			}
			p.latest, p.on, p.off = l, on, nil
		}
		p.seen = m.gen
	}
	if hostsChanged || len(m.parts) != len(newest) {
		for h, p := range m.parts {
			if p.seen != m.gen {
				delete(m.parts, h)
			}
		}
		m.names = slices.Sorted(maps.Keys(m.parts))
		m.byName = m.byName[:0]
		for _, h := range m.names {
			m.byName = append(m.byName, m.parts[h])
		}
	}

	// Online hosts first, each group by name: the seed's single "gpu",
	// "host" and model sections come from the first that has them. One
	// scratch list holds both orders: views[:n] by name, then the online
	// hosts and the silent ones after them.
	n := len(m.byName)
	m.views = slices.Grow(m.views[:0], 2*n)[:2*n]
	byName, ordered := m.views[:n], m.views[n:]
	nOn := 0
	gpus, models := 0, 0
	for i, p := range m.byName {
		v := p.view(online(now, p.s, interval))
		byName[i] = v
		if v.status.Online {
			ordered[nOn] = v
			nOn++
		}
		gpus += len(v.gpus)
		models += len(v.models)
	}
	nOff := nOn
	for _, v := range byName {
		if !v.status.Online {
			ordered[nOff] = v
			nOff++
		}
	}
	// Sized once: grown by append, a fleet's GPU views (large structs) were
	// copied over and over.
	u.GPUs = make([]metrics.GPUView, 0, gpus)
	u.Hosts = make([]metrics.HostStatus, 0, len(m.names))
	u.Models = make([]metrics.ModelEntry, 0, models)
	// By name, each host's GPUs by index.
	for _, v := range byName {
		u.Hosts = append(u.Hosts, v.status)
		u.GPUs = append(u.GPUs, v.gpus...)
	}
	// ordered[:nOn] are the online hosts.
	for _, v := range ordered {
		u.Models = append(u.Models, v.models...)
	}
	mergeGPU(&u, ordered, nOn)
	mergeHost(&u, ordered, nOn)
	u.AIModels.RTDETR = mergeModel(&u, ordered, nOn, metrics.RoleRTDETR, metrics.SectionRTDETR)
	u.AIModels.Nemotron = mergeModel(&u, ordered, nOn, metrics.RoleNemotron, metrics.SectionNemotron)
	// The scratch list must not keep views of hosts that go.
	clear(m.views)
	return u
}

// The merge functions fill a section from the first host of ordered that
// has it; the first nOn hosts are online.
func mergeGPU(u *metrics.Update, ordered []*hostView, nOn int) {
	const sec = metrics.SectionGPU
	for i, v := range ordered {
		if len(v.gpus) == 0 {
			continue
		}
		stale := i >= nOn
		u.GPU = v.gpus[v.first]
		u.Sources[sec] = "agent:" + v.status.Host
		u.Stale[sec] = stale
		return
	}
	u.Sources[sec] = SourceNone
	u.Stale[sec] = false
	u.Errors[sec] = sectionError(ordered, metrics.CollectorGPU, "no GPU reported")
}

func mergeHost(u *metrics.Update, ordered []*hostView, nOn int) {
	const sec = metrics.SectionHost
	for i, v := range ordered {
		if !v.hasSystem {
			continue
		}
		stale := i >= nOn
		u.Host = v.status.System
		u.Sources[sec] = "agent:" + v.status.Host
		u.Stale[sec] = stale
		return
	}
	u.Sources[sec] = SourceNone
	u.Stale[sec] = false
	u.Errors[sec] = sectionError(ordered, metrics.CollectorHost, "no host section reported")
}

// sectionError explains an empty section with the first agent's own error
// for that collector, so the UI can say "NVML unavailable: ..." verbatim.
func sectionError(ordered []*hostView, collector, fallback string) string {
	if len(ordered) == 0 {
		return "no agent reporting"
	}
	for _, v := range ordered {
		if e := v.status.Errors[collector]; e != "" {
			if len(ordered) > 1 {
				return v.status.Host + ": " + e
			}
			return e
		}
	}
	return fallback
}

func mergeModel(u *metrics.Update, ordered []*hostView, nOn int, role, sec string) metrics.ModelView {
	for i, v := range ordered {
		m, ok := v.status.Models[role]
		if !ok {
			continue
		}
		stale := i >= nOn
		u.Sources[sec] = "agent:" + v.status.Host
		u.Stale[sec] = stale
		if m.Reason != "" && m.Status != metrics.StatusHealthy {
			u.Errors[sec] = m.Reason
		}
		return m
	}
	u.Sources[sec] = SourceNone
	u.Stale[sec] = false
	// An agent that failed to read the model without reporting a section
	// still says why in its errors.
	for _, v := range ordered[:nOn] {
		if e := v.status.Errors[role]; e != "" {
			u.Errors[sec] = e
			return metrics.ModelView{Status: metrics.StatusUnreachable, Reason: e, Host: v.status.Host}
		}
	}
	u.Errors[sec] = fmt.Sprintf("no agent reports %s", role)
	return metrics.ModelView{Status: metrics.StatusUnconfigured}
}
