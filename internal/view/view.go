// Package view cuts the hub's full update into the views a browser asks
// for: one host's update, and the fleet's compact rows. It is pure: the
// server builds each view once a tick and sends the same bytes to every
// client of it.
package view

import (
	"math"
	"strings"
	"time"

	"github.com/sysperf/sysperf/pkg/alerts"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Site indexes one full update by host, so that each host view costs only
// that host's share of it. It must not be modified, nor u while it is used.
type Site struct {
	u     *metrics.Update
	hosts map[string]int
	// gpus is where each host's GPUs are in u.GPUs, which the hub sorts
	// by host: views share that array rather than copy GPUs. A host whose
	// GPUs are not in one run (split) is filtered when asked for.
	gpus   map[string][2]int
	split  map[string]bool
	alerts map[string][]metrics.Alert
	site   []metrics.Alert // alerts of no host
	// shared is the site-wide part of every host view, encoded on the
	// first HostJSON.
	shared shared
}

// New indexes u.
func New(u *metrics.Update) *Site {
	s := &Site{
		u:      u,
		hosts:  make(map[string]int, len(u.Hosts)),
		gpus:   make(map[string][2]int, len(u.Hosts)),
		alerts: map[string][]metrics.Alert{},
	}
	for i, h := range u.Hosts {
		s.hosts[h.Host] = i
	}
	for lo := 0; lo < len(u.GPUs); {
		host := u.GPUs[lo].Host
		hi := lo + 1
		for hi < len(u.GPUs) && u.GPUs[hi].Host == host {
			hi++
		}
		if _, seen := s.gpus[host]; seen {
			if s.split == nil {
				s.split = map[string]bool{}
			}
			s.split[host] = true
		}
		s.gpus[host] = [2]int{lo, hi}
		lo = hi
	}
	for _, a := range u.Alerts {
		if a.Host == "" {
			s.site = append(s.site, a)
		} else {
			s.alerts[a.Host] = append(s.alerts[a.Host], a)
		}
	}
	return s
}

// Update is the full update s indexes.
func (s *Site) Update() *metrics.Update { return s.u }

// Has reports whether host is one of the update's hosts.
func (s *Site) Has(host string) bool {
	_, ok := s.hosts[host]
	return ok
}

// Known lists the hosts, by name, for an error message: at most max names,
// then how many more there are.
func (s *Site) Known(max int) string {
	names := make([]string, 0, min(max, len(s.u.Hosts)))
	for i, h := range s.u.Hosts {
		if i == max {
			break
		}
		names = append(names, h.Host)
	}
	out := strings.Join(names, ", ")
	if n := len(s.u.Hosts) - len(names); n > 0 {
		out += ", and " + itoa(n) + " more"
	}
	if out == "" {
		return "none yet"
	}
	return out
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// Host is the seed's update for one host: its GPUs in gpu and gpus, its
// models (ai_models and the models list), its host section, hosts holding
// it alone, and what is site-wide
// (databases, containers, inference, and the alerts of no host) plus the
// host's own alerts. A section a non-agent source filled (Prometheus)
// stays as the full update has it. ok is false for an unknown host.
func (s *Site) Host(host string) (v metrics.Update, ok bool) {
	v, _, ok = s.host(host)
	return v, ok
}

// own says which of a host view's sections Host replaced with the host's
// own; the others are the full update's, as they are (HostJSON splices
// those in encoded once).
type own struct{ gpu, host, aiModels bool }

func (s *Site) host(host string) (v metrics.Update, o own, ok bool) {
	i, ok := s.hosts[host]
	if !ok {
		return metrics.Update{}, o, false
	}
	u := s.u
	st := u.Hosts[i]
	v = *u
	v.Hosts = u.Hosts[i : i+1 : i+1]
	v.GPUs = s.gpusOf(host)
	v.Sources = clone(u.Sources)
	v.Stale = clone(u.Stale)
	v.Errors = clone(u.Errors)
	if v.Sources == nil {
		v.Sources = map[string]string{}
	}
	if v.Stale == nil {
		v.Stale = map[string]bool{}
	}
	if v.Errors == nil {
		v.Errors = map[string]string{}
	}
	stale := !st.Online
	agent := "agent:" + host
	byAgent := func(sec string) bool {
		src, set := u.Sources[sec]
		return !set || src == "none" || strings.HasPrefix(src, "agent:")
	}
	set := func(sec string, have bool, why string) {
		if have {
			v.Sources[sec], v.Stale[sec] = agent, stale
			delete(v.Errors, sec)
			return
		}
		v.Sources[sec], v.Stale[sec] = "none", false
		v.Errors[sec] = why
	}
	if byAgent(metrics.SectionGPU) {
		o.gpu = true
		v.GPU = metrics.GPUView{}
		if len(v.GPUs) > 0 {
			v.GPU = v.GPUs[0]
		}
		set(metrics.SectionGPU, len(v.GPUs) > 0, orElse(st.Errors[metrics.CollectorGPU], "no GPU reported"))
	}
	if byAgent(metrics.SectionHost) {
		o.host = true
		sys := st.System
		have := sys.CPUPercent != nil || sys.RAMTotalGB != nil || sys.DiskTotalGB != nil || sys.PerCore != nil
		v.Host = metrics.HostView{}
		if have {
			v.Host = sys
		}
		set(metrics.SectionHost, have, orElse(st.Errors[metrics.CollectorHost], "no host section reported"))
	}
	for _, m := range []struct {
		role, sec string
		dst       *metrics.ModelView
	}{
		{metrics.RoleRTDETR, metrics.SectionRTDETR, &v.AIModels.RTDETR},
		{metrics.RoleNemotron, metrics.SectionNemotron, &v.AIModels.Nemotron},
	} {
		if !byAgent(m.sec) {
			continue
		}
		o.aiModels = true
		mv, have := st.Models[m.role]
		switch {
		case have:
			*m.dst = mv
			set(m.sec, true, "")
			if mv.Reason != "" && mv.Status != metrics.StatusHealthy {
				v.Errors[m.sec] = mv.Reason
			}
		case st.Online && st.Errors[m.role] != "":
			e := st.Errors[m.role]
			*m.dst = metrics.ModelView{Status: metrics.StatusUnreachable, Reason: e, Host: host}
			set(m.sec, false, e)
		default:
			*m.dst = metrics.ModelView{Status: "unconfigured"}
			set(m.sec, false, "no agent reports "+m.role)
		}
	}
	// The models list is the host's own too: every host's model servers
	// in every host view grew it with the fleet (180 KB at 200 hosts of
	// two servers each), past the 32 KB a host view may cost.
	v.Models = make([]metrics.ModelEntry, 0, 4)
	for _, m := range u.Models {
		if m.Host == "" || m.Host == host {
			v.Models = append(v.Models, m)
		}
	}
	v.Alerts = make([]metrics.Alert, 0, len(s.site)+len(s.alerts[host]))
	for _, a := range u.Alerts { // the full update's order
		if a.Host == "" || a.Host == host {
			v.Alerts = append(v.Alerts, a)
		}
	}
	return v, o, true
}

// gpusOf is host's GPUs; the caller must not modify them.
func (s *Site) gpusOf(host string) []metrics.GPUView {
	if s.split[host] {
		var out []metrics.GPUView
		for _, g := range s.u.GPUs {
			if g.Host == host {
				out = append(out, g)
			}
		}
		return out
	}
	r, ok := s.gpus[host]
	if !ok {
		return []metrics.GPUView{}
	}
	return s.u.GPUs[r[0]:r[1]:r[1]]
}

func orElse(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

func clone[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Fleet is the fleet view: a row per host, in the update's order (by
// name), and the site's totals.
func (s *Site) Fleet() metrics.FleetUpdate {
	u := s.u
	f := metrics.FleetUpdate{
		Type:      metrics.TypeFleet,
		Timestamp: u.Timestamp,
		Hosts:     make([]metrics.FleetRow, 0, len(u.Hosts)),
	}
	var t sums
	// Every row's figures in one allocation, not ten per row.
	figs := make([]rowFigures, len(u.Hosts))
	for i, h := range u.Hosts {
		r, hs := row(u, h, s.gpusOf(h.Host), s.alerts[h.Host], &figs[i])
		f.Hosts = append(f.Hosts, r)
		t.add(hs)
		f.Totals.Hosts++
		if h.Online {
			f.Totals.Online++
		}
		f.Totals.GPUs += r.GPUs
	}
	var tf rowFigures
	f.Totals.UtilMean = t.util.mean(&tf.utilMean, 1)
	f.Totals.UtilMax = t.util.top(&tf.utilMax, 1)
	f.Totals.VRAMUsed = t.vramUsed.total(&tf.vramUsed, 1)
	f.Totals.VRAMTotal = t.vramTotal.total(&tf.vramTotal, 1)
	f.Totals.Power = t.power.total(&tf.power, 0)
	f.Totals.PowerLimit = t.limit.total(&tf.limit, 0)
	for _, a := range u.Alerts {
		crit, warn := firing(a)
		f.Totals.Critical += crit
		f.Totals.Warning += warn
	}
	return f
}

// acc sums one figure over the GPUs that report it.
type acc struct {
	sum, max float64
	n        int
}

func (a *acc) add(p *float64) {
	if p == nil {
		return
	}
	if a.n == 0 || *p > a.max {
		a.max = *p
	}
	a.sum += *p
	a.n++
}

func (a *acc) merge(b acc) {
	if b.n == 0 {
		return
	}
	if a.n == 0 || b.max > a.max {
		a.max = b.max
	}
	a.sum += b.sum
	a.n += b.n
}

// mean, total and top write the figure rounded to dec decimals to dst
// and return dst; nil when no GPU reported it.
func (a acc) mean(dst *float64, dec int) *float64 {
	if a.n == 0 {
		return nil
	}
	return roundIn(dst, a.sum/float64(a.n), dec)
}

func (a acc) total(dst *float64, dec int) *float64 {
	if a.n == 0 {
		return nil
	}
	return roundIn(dst, a.sum, dec)
}

func (a acc) top(dst *float64, dec int) *float64 {
	if a.n == 0 {
		return nil
	}
	return roundIn(dst, a.max, dec)
}

// rowFigures holds what a fleet row's figures point at.
type rowFigures struct {
	utilMean, utilMax, vramUsed, vramTotal, tempMax float64
	power, limit, cpu, ramUsed, ramTotal            float64
}

type sums struct{ util, vramUsed, vramTotal, temp, power, limit acc }

func (s *sums) add(o sums) {
	s.util.merge(o.util)
	s.vramUsed.merge(o.vramUsed)
	s.vramTotal.merge(o.vramTotal)
	s.temp.merge(o.temp)
	s.power.merge(o.power)
	s.limit.merge(o.limit)
}

func row(u *metrics.Update, h metrics.HostStatus, gpus []metrics.GPUView, al []metrics.Alert, fig *rowFigures) (metrics.FleetRow, sums) {
	var s sums
	for i := range gpus {
		g := &gpus[i]
		s.util.add(g.Utilization)
		s.vramUsed.add(g.VRAMUsedGB)
		s.vramTotal.add(g.VRAMTotalGB)
		s.temp.add(g.Temperature)
		s.power.add(g.PowerWatts)
		s.limit.add(g.PowerLimitWatts)
	}
	r := metrics.FleetRow{
		Host:       h.Host,
		Offline:    !h.Online,
		Ago:        max(0, int64(u.Timestamp.Sub(h.LastSeen)/time.Second)),
		GPUs:       max(h.GPUCount, len(gpus)),
		UtilMean:   s.util.mean(&fig.utilMean, 0),
		UtilMax:    s.util.top(&fig.utilMax, 0),
		VRAMUsed:   s.vramUsed.total(&fig.vramUsed, 0),
		VRAMTotal:  s.vramTotal.total(&fig.vramTotal, 0),
		TempMax:    s.temp.top(&fig.tempMax, 0),
		Power:      s.power.total(&fig.power, 0),
		PowerLimit: s.limit.total(&fig.limit, 0),
		CPU:        round0(&fig.cpu, h.System.CPUPercent),
		RAMUsed:    round0(&fig.ramUsed, h.System.RAMUsedGB),
		RAMTotal:   round0(&fig.ramTotal, h.System.RAMTotalGB),
		Models:     len(h.Models),
	}
	for role, m := range h.Models {
		if m.Status != metrics.StatusHealthy {
			if r.ModelsNotHealthy == nil {
				r.ModelsNotHealthy = map[string]metrics.Status{}
			}
			r.ModelsNotHealthy[role] = m.Status
		}
	}
	for _, a := range al {
		crit, warn := firing(a)
		r.Critical += crit
		r.Warning += warn
	}
	return r, s
}

// firing counts a firing alert by severity. An alert with no state is a
// firing one (the evaluator's Active list leaves it out for pending ones
// only when it says so).
func firing(a metrics.Alert) (crit, warn int) {
	if a.State != "" && a.State != alerts.StateFiring {
		return 0, 0
	}
	switch a.Severity {
	case alerts.SeverityCritical:
		return 1, 0
	case alerts.SeverityWarning:
		return 0, 1
	}
	return 0, 0
}

// round0 writes *p rounded to a whole number to dst and returns dst; nil
// when p is.
func round0(dst, p *float64) *float64 {
	if p == nil {
		return nil
	}
	return roundIn(dst, *p, 0)
}

func round(x float64, dec int) *float64 {
	return roundIn(new(float64), x, dec)
}

// roundIn writes x rounded to dec decimals to dst and returns dst; nil
// for NaN and ±Inf.
func roundIn(dst *float64, x float64, dec int) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	p := math.Pow10(dec)
	*dst = math.Round(x*p) / p
	return dst
}
