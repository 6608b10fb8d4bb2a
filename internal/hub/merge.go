package hub

import (
	"fmt"
	"maps"
	"slices"
	"strings"
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

// merge builds the agent-fed part of an update from the newest sample of
// each host. It is pure: the loop adds latency, sources and alerts.
func merge(now time.Time, newest map[string]*metrics.Sample, interval time.Duration) metrics.Update {
	u := metrics.Update{
		Type:       metrics.TypeUpdate,
		Timestamp:  now.UTC(),
		Containers: []metrics.Container{},
		Alerts:     []metrics.Alert{},
		GPUs:       []metrics.GPUView{},
		Hosts:      []metrics.HostStatus{},
		Sources:    map[string]string{},
		Stale:      map[string]bool{},
		Errors:     map[string]string{},
		Models:     []metrics.ModelEntry{},
	}
	hosts := make([]string, 0, len(newest))
	gpus := 0
	for h, s := range newest {
		hosts = append(hosts, h)
		gpus += len(s.GPUs)
	}
	slices.Sort(hosts)
	// Sized once: grown by append, a fleet's GPU views (large structs) were
	// copied over and over, most of merge's cost at 200 hosts.
	u.GPUs = make([]metrics.GPUView, 0, gpus)
	u.Hosts = make([]metrics.HostStatus, 0, len(newest))

	// Online hosts first, each group by name: the seed's single "gpu",
	// "host" and model sections come from the first that has them.
	on, off := make([]*metrics.Sample, 0, len(hosts)), []*metrics.Sample(nil)
	for _, h := range hosts {
		s := newest[h]
		if online(now, s, interval) {
			on = append(on, s)
		} else {
			off = append(off, s)
		}
	}
	// ordered[:len(on)] are the online hosts.
	ordered := append(on, off...)

	for i, s := range ordered {
		isOn := i < len(on)
		st := metrics.HostStatus{
			Host:     s.Host,
			Online:   isOn,
			LastSeen: time.Unix(0, s.TS).UTC(),
			Boot:     s.Boot,
			Seq:      s.Seq,
			System:   view.System(s.System),
			GPUCount: len(s.GPUs),
			// A copy: patches and alert rules may touch the update, never
			// the stored sample.
			Errors: maps.Clone(s.Errors),
		}
		if len(s.Models) > 0 {
			st.Models = map[string]metrics.ModelView{}
			for role, m := range s.Models {
				st.Models[role] = view.Model(s, role, m, !isOn)
			}
		}
		u.Hosts = append(u.Hosts, st)
		for _, g := range s.GPUs {
			u.GPUs = append(u.GPUs, view.GPU(s.Host, g, !isOn))
		}
	}
	// u.Hosts follows the online-first order; the list reads better by name.
	slices.SortFunc(u.Hosts, func(a, b metrics.HostStatus) int { return strings.Compare(a.Host, b.Host) })
	slices.SortFunc(u.GPUs, func(a, b metrics.GPUView) int {
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return *a.Index - *b.Index
	})

	mergeGPU(&u, ordered, len(on))
	mergeHost(&u, ordered, len(on))
	u.AIModels.RTDETR = mergeModel(&u, ordered, len(on), metrics.RoleRTDETR, metrics.SectionRTDETR)
	u.AIModels.Nemotron = mergeModel(&u, ordered, len(on), metrics.RoleNemotron, metrics.SectionNemotron)
	u.Models = modelEntries(ordered, len(on))
	return u
}

// The merge functions fill a section from the first host of ordered that
// has it; the first nOn hosts are online.
func mergeGPU(u *metrics.Update, ordered []*metrics.Sample, nOn int) {
	const sec = metrics.SectionGPU
	for i, s := range ordered {
		if len(s.GPUs) == 0 {
			continue
		}
		stale := i >= nOn
		u.GPU = view.GPU(s.Host, s.GPUs[0], stale)
		u.Sources[sec] = "agent:" + s.Host
		u.Stale[sec] = stale
		return
	}
	u.Sources[sec] = SourceNone
	u.Stale[sec] = false
	u.Errors[sec] = sectionError(ordered, metrics.CollectorGPU, "no GPU reported")
}

func mergeHost(u *metrics.Update, ordered []*metrics.Sample, nOn int) {
	const sec = metrics.SectionHost
	for i, s := range ordered {
		if s.System == nil {
			continue
		}
		stale := i >= nOn
		u.Host = view.System(s.System)
		u.Sources[sec] = "agent:" + s.Host
		u.Stale[sec] = stale
		return
	}
	u.Sources[sec] = SourceNone
	u.Stale[sec] = false
	u.Errors[sec] = sectionError(ordered, metrics.CollectorHost, "no host section reported")
}

// sectionError explains an empty section with the first agent's own error
// for that collector, so the UI can say "NVML unavailable: ..." verbatim.
func sectionError(ordered []*metrics.Sample, collector, fallback string) string {
	if len(ordered) == 0 {
		return "no agent reporting"
	}
	for _, s := range ordered {
		if e := s.Errors[collector]; e != "" {
			if len(ordered) > 1 {
				return s.Host + ": " + e
			}
			return e
		}
	}
	return fallback
}

func mergeModel(u *metrics.Update, ordered []*metrics.Sample, nOn int, role, sec string) metrics.ModelView {
	for i, s := range ordered {
		m, ok := s.Models[role]
		if !ok {
			continue
		}
		stale := i >= nOn
		u.Sources[sec] = "agent:" + s.Host
		u.Stale[sec] = stale
		if m.Reason != "" && m.Status != metrics.StatusHealthy {
			u.Errors[sec] = m.Reason
		}
		return view.Model(s, role, m, stale)
	}
	u.Sources[sec] = SourceNone
	u.Stale[sec] = false
	// An agent that failed to read the model without reporting a section
	// still says why in its errors.
	for _, s := range ordered[:nOn] {
		if e := s.Errors[role]; e != "" {
			u.Errors[sec] = e
			return metrics.ModelView{Status: metrics.StatusUnreachable, Reason: e, Host: s.Host}
		}
	}
	u.Errors[sec] = fmt.Sprintf("no agent reports %s", role)
	return metrics.ModelView{Status: metrics.StatusUnconfigured}
}
