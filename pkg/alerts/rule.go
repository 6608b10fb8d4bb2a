// Package alerts holds sysperf's alert rules, the default rule set and the
// sustained-duration state machine that turns performance updates into
// pending, firing and resolved alerts.
//
// The package is pure: it does no I/O and has no clock of its own. The
// caller passes the time of every evaluation, so tests drive it with an
// injected clock and a restarted hub can hand back the state it saved.
// internal/alerting runs it in the hub and does the publishing, saving and
// notifying.
package alerts

import (
	"fmt"
	"math"
	"path"
	"text/template"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Kind says what a rule is evaluated against; each kind has its own
// metrics (see Metrics).
type Kind string

// Target kinds.
const (
	// KindGPU evaluates every GPU of every host (update.gpus).
	KindGPU Kind = "gpu"
	// KindHost evaluates every host (update.hosts).
	KindHost Kind = "host"
	// KindModel evaluates the model servers and their latency stages
	// ("rtdetr", "nemotron", "pipeline").
	KindModel Kind = "model"
	// KindDatabase evaluates "postgresql" and "redis".
	KindDatabase Kind = "database"
	// KindContainer evaluates every container on its own.
	KindContainer Kind = "container"
	// KindContainersCount evaluates the whole container list as one target.
	KindContainersCount Kind = "containers-count"
)

// Comparison is the operator a rule compares its metric with.
type Comparison string

// Comparison operators a rule may use.
const (
	Above        Comparison = ">"
	AboveOrEqual Comparison = ">="
	Below        Comparison = "<"
	BelowOrEqual Comparison = "<="
)

// No-data policies: what happens to an alert whose target has no value in
// an update (the source is unreachable, the field is null, the target is
// gone).
const (
	// NoDataKeep leaves the alert as it is: a firing alert keeps firing and
	// a pending timer neither advances to firing nor restarts.
	NoDataKeep = "keep"
	// NoDataResolve resolves a firing alert and drops a pending one.
	NoDataResolve = "resolve"
	// NoDataAlert treats missing data as a breach of the first configured
	// level, for targets the engine has seen before.
	NoDataAlert = "alert"
)

// Severity is an alert's level. It is metrics.Severity under this
// package's name: metrics.Alert carries it, and pkg/metrics stays a leaf
// that imports nothing of sysperf's, so the type is declared there.
type Severity = metrics.Severity

// Severities, in increasing order.
const (
	SeverityWarning  = metrics.SeverityWarning
	SeverityCritical = metrics.SeverityCritical
)

// State is where an alert is in its life, as in metrics.Alert.State and
// in transition subjects (sysperf.v1.alert.<state>); declared in
// pkg/metrics for the same reason as Severity.
type State = metrics.AlertState

// Alert states.
const (
	StateInactive = metrics.StateInactive
	StatePending  = metrics.StatePending
	StateFiring   = metrics.StateFiring
	StateResolved = metrics.StateResolved
)

// Level is one severity's condition.
type Level struct {
	// Threshold the value is compared against with the rule's comparison.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// For is how long the condition must hold before the alert fires at
	// this level; 0 fires on the first breaching sample.
	For time.Duration `json:"for" yaml:"for"`
	// Clear, when set, is the value the metric must cross back over for
	// the condition to end (">" rules: value <= Clear). It overrides the
	// rule's Hysteresis for this level.
	Clear *float64 `json:"clear,omitempty" yaml:"clear,omitempty"`
}

// Rule is one alert rule.
type Rule struct {
	// Name identifies the rule; it is the Alertmanager alertname and the
	// key a rules file overrides.
	Name string `json:"name" yaml:"name"`
	// Metric is one of Metrics()[Target]; it is also metrics.Alert.Metric.
	Metric string `json:"metric" yaml:"metric"`
	// Target is the kind of thing the rule watches.
	Target Kind `json:"target" yaml:"target"`
	// Host restricts the rule to hosts matching this glob (path.Match);
	// empty matches every host.
	Host string `json:"host,omitempty" yaml:"host,omitempty"`
	// Match restricts the rule to targets whose name matches this glob
	// ("gpu0", "rtdetr", "postgresql", a container name); empty matches all.
	Match string `json:"match,omitempty" yaml:"match,omitempty"`
	// Comparison is ">", ">=", "<" or "<=".
	Comparison Comparison `json:"comparison" yaml:"comparison"`
	// Warning and Critical are the two levels; at least one is required.
	Warning  *Level `json:"warning,omitempty" yaml:"warning,omitempty"`
	Critical *Level `json:"critical,omitempty" yaml:"critical,omitempty"`
	// Hysteresis is how far past a threshold, on the healthy side, the
	// value must go for a condition to end, so a value hovering around a
	// threshold does not flap. A level's Clear overrides it.
	Hysteresis float64 `json:"hysteresis,omitempty" yaml:"hysteresis,omitempty"`
	// KeepFiringFor keeps a firing level firing for this long after its
	// condition ended, so one good sample does not resolve it.
	KeepFiringFor time.Duration `json:"keep_firing_for,omitempty" yaml:"keep_firing_for,omitempty"`
	// NoData is "keep" (default), "resolve" or "alert".
	NoData string `json:"no_data,omitempty" yaml:"no_data,omitempty"`
	// Message is a text/template for metrics.Alert.Message with the fields
	// of MessageData.
	Message string `json:"message" yaml:"message"`
}

// MessageData is what a rule's message template sees. Value and
// Threshold are formatted numbers ("82", "0.5"). Detail says what failed,
// for the status metrics: a model's or database's status and reason
// ("unreachable: connection refused"), the failing containers by name
// ("backend (unhealthy: HTTP 500), worker (exited)"), a GPU's throttle
// reasons; it is empty for the other metrics.
type MessageData struct {
	Rule, Metric, Severity, Host, Target string
	Value, Threshold                     string
	Detail                               string
	NoData                               bool
}

// ruleError names the rule and field a validation error is about.
func ruleError(r *Rule, field, format string, args ...any) error {
	name := r.Name
	if name == "" {
		name = "(unnamed)"
	}
	return fmt.Errorf("alert rule %q: %s: %s", name, field, fmt.Sprintf(format, args...))
}

// compiled is a validated rule ready for evaluation.
type compiled struct {
	Rule
	msg     *template.Template
	plain   message // msg without text/template, when it can be
	extract extractFunc
	levels  []level // warning first, then critical, those that are set
	// changes counts the changes of this rule's alerts' level timers
	// (Engine.Changes); only the engine's Evaluate writes it, under its
	// lock.
	changes uint64
}

type level struct {
	severity  Severity
	threshold float64
	clear     float64
	forDur    time.Duration
}

// compile validates r and prepares it for evaluation.
func compile(r Rule) (*compiled, error) {
	if r.Name == "" {
		return nil, ruleError(&r, "name", "is empty")
	}
	kindMetrics, ok := Metrics()[r.Target]
	if !ok {
		return nil, ruleError(&r, "target", "unknown kind %q (want gpu, host, model, database, container or containers-count)", r.Target)
	}
	extract := extractor(r.Target, r.Metric)
	if extract == nil {
		return nil, ruleError(&r, "metric", "%q is not a %s metric (have %v)", r.Metric, r.Target, kindMetrics)
	}
	for field, glob := range map[string]string{"host": r.Host, "match": r.Match} {
		if _, err := path.Match(glob, ""); err != nil {
			return nil, ruleError(&r, field, "bad pattern %q: %v", glob, err)
		}
	}
	switch r.Comparison {
	case Above, AboveOrEqual, Below, BelowOrEqual:
	default:
		return nil, ruleError(&r, "comparison", "%q (want >, >=, < or <=)", r.Comparison)
	}
	if r.Warning == nil && r.Critical == nil {
		return nil, ruleError(&r, "warning", "a rule needs a warning or a critical level")
	}
	if bad(r.Hysteresis) || r.Hysteresis < 0 {
		return nil, ruleError(&r, "hysteresis", "%v must be a finite number >= 0", r.Hysteresis)
	}
	if r.KeepFiringFor < 0 {
		return nil, ruleError(&r, "keep_firing_for", "%s is negative", r.KeepFiringFor)
	}
	switch r.NoData {
	case "":
		r.NoData = NoDataKeep
	case NoDataKeep, NoDataResolve, NoDataAlert:
	default:
		return nil, ruleError(&r, "no_data", "%q (want keep, resolve or alert)", r.NoData)
	}
	if r.Message == "" {
		return nil, ruleError(&r, "message", "is empty")
	}
	msg, err := template.New(r.Name).Option("missingkey=error").Parse(r.Message)
	if err != nil {
		return nil, ruleError(&r, "message", "%v", err)
	}
	// Execute once so a template naming an unknown field fails at start-up,
	// not on the first alert.
	if err := msg.Execute(discard{}, MessageData{}); err != nil {
		return nil, ruleError(&r, "message", "%v", err)
	}
	c := &compiled{Rule: r, msg: msg, plain: plainMessage(msg), extract: extract}
	upward := r.Comparison == Above || r.Comparison == AboveOrEqual
	for _, l := range []struct {
		name Severity
		l    *Level
	}{{SeverityWarning, r.Warning}, {SeverityCritical, r.Critical}} {
		if l.l == nil {
			continue
		}
		if bad(l.l.Threshold) {
			return nil, ruleError(&r, string(l.name)+".threshold", "%v is not a finite number", l.l.Threshold)
		}
		if l.l.For < 0 {
			return nil, ruleError(&r, string(l.name)+".for", "%s is negative", l.l.For)
		}
		clear := l.l.Threshold - r.Hysteresis
		if !upward {
			clear = l.l.Threshold + r.Hysteresis
		}
		if l.l.Clear != nil {
			clear = *l.l.Clear
			if bad(clear) {
				return nil, ruleError(&r, string(l.name)+".clear", "%v is not a finite number", clear)
			}
			if upward && clear > l.l.Threshold || !upward && clear < l.l.Threshold {
				return nil, ruleError(&r, string(l.name)+".clear", "%v is on the alerting side of threshold %v", clear, l.l.Threshold)
			}
		}
		c.levels = append(c.levels, level{severity: l.name, threshold: l.l.Threshold, clear: clear, forDur: l.l.For})
	}
	if len(c.levels) == 2 {
		w, k := c.levels[0].threshold, c.levels[1].threshold
		if upward && k < w || !upward && k > w {
			return nil, ruleError(&r, "critical.threshold", "%v is less severe than warning threshold %v", k, w)
		}
	}
	return c, nil
}

func bad(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

// breaches reports whether v is on the alerting side of threshold t.
func (c *compiled) breaches(v, t float64) bool {
	switch c.Comparison {
	case Above:
		return v > t
	case AboveOrEqual:
		return v >= t
	case Below:
		return v < t
	default:
		return v <= t
	}
}

// cleared reports whether v has crossed back over the clear value of l.
// With no hysteresis that is simply "no longer breaching".
func (c *compiled) cleared(v float64, l level) bool {
	if l.clear == l.threshold {
		return !c.breaches(v, l.threshold)
	}
	switch c.Comparison {
	case Above, AboveOrEqual:
		return v <= l.clear
	default:
		return v >= l.clear
	}
}

func (c *compiled) selects(host, target string) bool {
	if c.Host != "" {
		if ok, _ := path.Match(c.Host, host); !ok {
			return false
		}
	}
	if c.Match != "" {
		if ok, _ := path.Match(c.Match, target); !ok {
			return false
		}
	}
	return true
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
