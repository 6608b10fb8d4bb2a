package alerts

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Transition is one change of an alert: inactive → pending, pending →
// firing, a severity change while firing, firing → resolved, or pending →
// inactive when the condition ends before its `for`. The embedded Alert
// is the alert after the change, with At the time of the change; From and
// FromSeverity say what it was.
type Transition struct {
	metrics.Alert
	From         State    `json:"from"`
	FromSeverity Severity `json:"from_severity,omitempty"`
}

// Engine evaluates a rule set against successive updates. It is safe for
// concurrent use: the hub evaluates from its loop while the HTTP server
// reads the active alerts.
type Engine struct {
	mu    sync.Mutex
	rules []*compiled
	// states[i] holds the alerts of rules[i] that are not inactive, by
	// host and target.
	states []map[targetKey]*entry
	// seen[i] remembers the targets of a no_data: alert rule, so a target
	// that vanishes can raise its alert.
	seen []map[targetKey]struct{}
	// obs is the rules' observations of the update being evaluated, one
	// rule at a time; cleared after each, so it holds no update.
	obs []observation
}

type targetKey struct{ host, target string }

// entry is one alert of one rule on one target.
type entry struct {
	levels []levelState // parallel to compiled.levels
	// state and severity are what was last reported in a transition.
	state    State
	severity Severity
	since    time.Time
	value    float64
	detail   string
	noData   bool
}

// levelState tracks one severity level of an alert.
type levelState struct {
	// since is when the level's condition started holding; zero when not.
	since time.Time
	// clearedAt is when an active level's condition ended, for
	// keep_firing_for; zero while it holds.
	clearedAt time.Time
	// active means the condition held for the level's `for`.
	active bool
}

// New validates rules and returns an engine for them. An invalid rule
// returns an error naming the rule and the field.
func New(rules []Rule) (*Engine, error) {
	e := &Engine{}
	names := map[string]bool{}
	for _, r := range rules {
		c, err := compile(r)
		if err != nil {
			return nil, err
		}
		if names[r.Name] {
			return nil, ruleError(&r, "name", "is used by more than one rule")
		}
		names[r.Name] = true
		e.rules = append(e.rules, c)
		e.states = append(e.states, map[targetKey]*entry{})
		e.seen = append(e.seen, map[targetKey]struct{}{})
	}
	return e, nil
}

// Rules returns the engine's rules, validated and with defaults applied.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, c := range e.rules {
		out[i] = c.Rule
	}
	return out
}

// Evaluate applies every rule to u, taken at now, and returns the
// transitions it caused, in rule order. now must not go backwards between
// calls; an update older than the last is evaluated as if it were now.
func (e *Engine) Evaluate(now time.Time, u *metrics.Update) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Transition
	for i, r := range e.rules {
		states, seen := e.states[i], e.seen[i]
		// present holds only the targets the loops below look up: those
		// with an entry, and every target of a no_data: alert rule. A
		// fleet's thousands of quiet GPUs are not inserted rule by rule.
		present := map[targetKey]bool{}
		e.obs = r.extract(u, e.obs[:0])
		for _, o := range e.obs {
			if !r.selects(o.host, o.target) {
				continue
			}
			k := targetKey{o.host, o.target}
			// A fleet's rules see thousands of targets each tick and hold
			// an alert on few: a rule with none looks nothing up.
			var en *entry
			if len(states) > 0 {
				en = states[k]
			}
			if en != nil || r.NoData == NoDataAlert {
				present[k] = true
			}
			// NaN and ±Inf measure nothing: they are no data, never a
			// value that breaches, clears or is kept as the alert's.
			if o.value == nil || bad(*o.value) {
				out = e.noData(out, r, states, seen, k, now)
				continue
			}
			if r.NoData == NoDataAlert {
				seen[k] = struct{}{}
			}
			if en == nil {
				if !r.breachesAny(*o.value) {
					continue
				}
				en = &entry{levels: make([]levelState, len(r.levels)), state: StateInactive}
				states[k] = en
				present[k] = true
			}
			out = r.step(out, en, k, *o.value, o.detail, false, now)
			if en.state == StateInactive {
				delete(states, k)
			}
		}
		clear(e.obs)
		// Targets that vanished from the update have no data either.
		for k := range states {
			if !present[k] {
				out = e.noData(out, r, states, seen, k, now)
			}
		}
		for k := range seen {
			if !present[k] && states[k] == nil {
				out = e.noData(out, r, states, seen, k, now)
			}
		}
	}
	return out
}

// noData applies r's no-data policy to target k.
func (e *Engine) noData(out []Transition, r *compiled, states map[targetKey]*entry, seen map[targetKey]struct{}, k targetKey, now time.Time) []Transition {
	en := states[k]
	switch r.NoData {
	case NoDataKeep:
		return out
	case NoDataResolve:
		if en == nil {
			return out
		}
		for i := range en.levels {
			en.levels[i] = levelState{}
		}
		r.changes++
		out = r.report(out, en, k, now)
		delete(states, k)
		return out
	}
	// NoDataAlert: only for targets seen with data before, so a rule does
	// not alert on a GPU that never existed.
	if _, ok := seen[k]; !ok && en == nil {
		return out
	}
	if en == nil {
		en = &entry{levels: make([]levelState, len(r.levels)), state: StateInactive}
		states[k] = en
	}
	return r.step(out, en, k, 0, "", true, now)
}

func (c *compiled) breachesAny(v float64) bool {
	for _, l := range c.levels {
		if c.breaches(v, l.threshold) {
			return true
		}
	}
	return false
}

// step advances every level of en with value v (or with "no data", which
// the alert policy counts as a breach of the first level) and reports.
func (c *compiled) step(out []Transition, en *entry, k targetKey, v float64, detail string, noData bool, now time.Time) []Transition {
	for i, l := range c.levels {
		ls := &en.levels[i]
		was := *ls
		var holds bool
		switch {
		case noData:
			holds = i == 0
		case ls.since.IsZero():
			holds = c.breaches(v, l.threshold)
		default:
			// Once started, a condition holds until the value crosses the
			// clear value: hysteresis for pending timers as for firing.
			holds = !c.cleared(v, l)
		}
		switch {
		case holds:
			if ls.since.IsZero() {
				ls.since = now
			}
			ls.clearedAt = time.Time{}
			if now.Sub(ls.since) >= l.forDur {
				ls.active = true
			}
		case ls.active:
			if ls.clearedAt.IsZero() {
				ls.clearedAt = now
			}
			if now.Sub(ls.clearedAt) >= c.KeepFiringFor {
				*ls = levelState{}
			}
		default:
			*ls = levelState{}
		}
		if *ls != was {
			c.changes++
		}
	}
	en.noData = noData
	if !noData {
		en.value, en.detail = v, detail
	}
	return c.report(out, en, k, now)
}

// report derives the alert's state from its levels and appends the
// transitions from what was last reported.
func (c *compiled) report(out []Transition, en *entry, k targetKey, now time.Time) []Transition {
	state, severity := StateInactive, Severity("")
	var since time.Time
	for i := len(c.levels) - 1; i >= 0; i-- {
		if en.levels[i].active {
			state, severity = StateFiring, c.levels[i].severity
			break
		}
	}
	for i := len(c.levels) - 1; i >= 0 && state == StateInactive; i-- {
		if !en.levels[i].since.IsZero() {
			state, severity = StatePending, c.levels[i].severity
		}
	}
	for _, ls := range en.levels {
		if !ls.since.IsZero() && (since.IsZero() || ls.since.Before(since)) {
			since = ls.since
		}
	}
	if state == en.state && severity == en.severity {
		return out
	}
	from, fromSev := en.state, en.severity
	if from == StateFiring && state != StateFiring {
		// Leaving firing is always a resolution, even when a level is
		// still pending; the pending part is reported after it.
		en.state = StateResolved
		out = append(out, c.transition(en, k, from, fromSev, now))
		from = StateResolved
		if state == StateInactive {
			en.state, en.severity = StateInactive, ""
			return out
		}
	}
	if state == StateInactive {
		// A pending alert whose condition ended before its `for`.
		en.state = StateInactive
		out = append(out, c.transition(en, k, from, fromSev, now))
		en.severity = ""
		return out
	}
	if from == StateInactive || from == StateResolved {
		en.since = since
	}
	en.state, en.severity = state, severity
	return append(out, c.transition(en, k, from, fromSev, now))
}

func (c *compiled) transition(en *entry, k targetKey, from State, fromSev Severity, now time.Time) Transition {
	a := c.alert(en, k)
	a.At = now
	return Transition{Alert: a, From: from, FromSeverity: fromSev}
}

// alert renders en as the wire alert.
func (c *compiled) alert(en *entry, k targetKey) metrics.Alert {
	a := metrics.Alert{
		Severity: en.severity,
		Metric:   c.Metric,
		Host:     k.host,
		Target:   k.target,
		State:    en.state,
		Since:    en.since,
		Rule:     c.Name,
	}
	if !en.noData {
		a.Value = en.value
	}
	for _, l := range c.levels {
		if l.severity == en.severity {
			a.Threshold = l.threshold
		}
	}
	var b strings.Builder
	data := MessageData{
		Rule: c.Name, Metric: c.Metric, Severity: string(a.Severity), Host: k.host, Target: k.target,
		Value: formatNumber(a.Value), Threshold: formatNumber(a.Threshold), NoData: en.noData, Detail: en.detail,
	}
	if c.plain != nil {
		c.plain.render(&b, &data)
	} else if err := c.msg.Execute(&b, data); err != nil {
		// compile executed the template once, so this is a template that
		// fails on some values only; say so rather than send nothing.
		b.Reset()
		fmt.Fprintf(&b, "%s %s on %s/%s: %s (message template: %v)", c.Name, a.Severity, k.host, k.target, data.Value, err)
	}
	a.Message = b.String()
	if en.noData {
		a.Message += " (no data)"
	}
	return a
}

// formatNumber prints v with at most two decimals and no trailing zeros.
func formatNumber(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// Active returns the alerts now pending or firing in SortAlerts' order.
func (e *Engine) Active() []metrics.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []metrics.Alert{}
	for i, r := range e.rules {
		for k, en := range e.states[i] {
			if en.state == StatePending || en.state == StateFiring {
				out = append(out, r.alert(en, k))
			}
		}
	}
	SortAlerts(out)
	return out
}

// SortAlerts orders alerts by severity, critical first, then by age, the
// oldest (earliest Since) first, so what is worst and has lasted longest
// leads. Ties go to the newest transition (At: one alert's transitions
// read newest first), then to a firing alert before a pending one, then
// rule, host and target, so lists are stable.
func SortAlerts(list []metrics.Alert) {
	if len(list) < 2 {
		return
	}
	// Sorted by index, then moved once each: sorting the alerts
	// themselves (a few hundred bytes each) moved them at every swap,
	// most of a fleet's alert work per tick with thousands active.
	idx := make([]int32, len(list))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(i, j int32) int { return compareAlerts(&list[i], &list[j]) })
	// idx[k] is where the alert that belongs at k is now: follow each
	// cycle of the permutation, marking what is placed with -1.
	for k := range idx {
		if idx[k] < 0 {
			continue
		}
		tmp, j := list[k], k
		for {
			src := int(idx[j])
			idx[j] = -1
			if src == k {
				list[j] = tmp
				break
			}
			list[j] = list[src]
			j = src
		}
	}
}

// compareAlerts is SortAlerts' order, each key compared only when the
// ones before it tie.
func compareAlerts(a, b *metrics.Alert) int {
	if c := cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)); c != 0 {
		return c
	}
	if c := a.Since.Compare(b.Since); c != 0 {
		return c
	}
	if c := b.At.Compare(a.At); c != 0 { // the newest transition first
		return c
	}
	if fa, fb := a.State == StateFiring, b.State == StateFiring; fa != fb {
		if fa {
			return -1
		}
		return 1
	}
	return cmp.Or(strings.Compare(a.Rule, b.Rule), strings.Compare(a.Host, b.Host), strings.Compare(a.Target, b.Target))
}

func severityRank(s Severity) int {
	switch s {
	case SeverityCritical:
		return 0
	case SeverityWarning:
		return 1
	}
	return 2
}

// Snapshot is the engine's alert state, for the hub to save and hand back
// after a restart: only alerts that are pending or firing (or whose levels
// have started) are in it.
type Snapshot struct {
	Alerts []SavedAlert `json:"alerts"`
}

// SavedAlert is one alert's state.
type SavedAlert struct {
	Rule     string       `json:"rule"`
	Host     string       `json:"host,omitempty"`
	Target   string       `json:"target,omitempty"`
	State    State        `json:"state"`
	Severity Severity     `json:"severity,omitempty"`
	Since    time.Time    `json:"since,omitzero"`
	Value    float64      `json:"value"`
	Detail   string       `json:"detail,omitempty"`
	NoData   bool         `json:"no_data,omitempty"`
	Levels   []SavedLevel `json:"levels"`
}

// SavedLevel is one severity level's timers.
type SavedLevel struct {
	Severity  Severity  `json:"severity"`
	Since     time.Time `json:"since,omitzero"`
	ClearedAt time.Time `json:"cleared_at,omitzero"`
	Active    bool      `json:"active,omitempty"`
}

// Changes counts the changes of the alerts' timers so far: an alert
// started, cleared, went active or started its keep-firing time. Between
// two equal counts a Snapshot differs only in the alerts' values and
// details, which the next evaluation after a Restore brings up to date
// anyway, so a caller saving the state may skip saving it (internal/
// alerting saves it at least once a minute).
func (e *Engine) Changes() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n uint64
	for _, r := range e.rules {
		n += r.changes
	}
	return n
}

// Snapshot returns the engine's state: its pending and firing alerts,
// all Restore takes back (an entry between states carries nothing a
// restarted engine needs, and a fleet's saved state is kept small).
func (e *Engine) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Sorted by reference, then copied out once: sorting the saved
	// alerts themselves moved large structs around.
	type ref struct {
		r  *compiled
		k  targetKey
		en *entry
	}
	var refs []ref
	levels := 0
	for i, r := range e.rules {
		for k, en := range e.states[i] {
			if en.state == StatePending || en.state == StateFiring {
				refs = append(refs, ref{r, k, en})
				levels += len(r.levels)
			}
		}
	}
	slices.SortFunc(refs, func(a, b ref) int {
		return cmp.Or(strings.Compare(a.r.Name, b.r.Name), strings.Compare(a.k.host, b.k.host), strings.Compare(a.k.target, b.k.target))
	})
	st := Snapshot{Alerts: make([]SavedAlert, len(refs))}
	saved := make([]SavedLevel, 0, levels)
	for i, x := range refs {
		en := x.en
		from := len(saved)
		for j, l := range x.r.levels {
			ls := en.levels[j]
			saved = append(saved, SavedLevel{Severity: l.severity, Since: ls.since, ClearedAt: ls.clearedAt, Active: ls.active})
		}
		st.Alerts[i] = SavedAlert{
			Rule: x.r.Name, Host: x.k.host, Target: x.k.target, State: en.state, Severity: en.severity,
			Since: en.since, Value: en.value, Detail: en.detail, NoData: en.noData,
		}
		if len(saved) > from {
			st.Alerts[i].Levels = saved[from:len(saved):len(saved)]
		}
	}
	return st
}

// Restore replaces the engine's state with st, as saved by Snapshot. A
// firing alert stays firing and a pending timer keeps its start. Alerts of
// rules the engine no longer has are dropped; levels a changed rule no
// longer has are ignored. The next Evaluate reports whatever changed.
func (e *Engine) Restore(st Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.states {
		e.states[i] = map[targetKey]*entry{}
	}
	for _, sa := range st.Alerts {
		i := e.ruleIndex(sa.Rule)
		if i < 0 {
			continue
		}
		switch sa.State {
		case StatePending, StateFiring:
		default:
			continue
		}
		r := e.rules[i]
		en := &entry{
			levels: make([]levelState, len(r.levels)), state: sa.State, severity: sa.Severity,
			since: sa.Since, value: sa.Value, detail: sa.Detail, noData: sa.NoData,
		}
		for _, sl := range sa.Levels {
			for j, l := range r.levels {
				if l.severity == sl.Severity {
					en.levels[j] = levelState{since: sl.Since, clearedAt: sl.ClearedAt, active: sl.Active}
				}
			}
		}
		e.states[i][targetKey{sa.Host, sa.Target}] = en
		if r.NoData == NoDataAlert {
			e.seen[i][targetKey{sa.Host, sa.Target}] = struct{}{}
		}
	}
}

func (e *Engine) ruleIndex(name string) int {
	for i, r := range e.rules {
		if r.Name == name {
			return i
		}
	}
	return -1
}
