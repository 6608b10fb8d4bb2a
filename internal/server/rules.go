package server

import (
	"net/http"

	"github.com/sysperf/sysperf/pkg/alerts"
)

// RuleLister serves GET /api/v1/rules; *alerts.Engine satisfies it.
type RuleLister interface {
	// Rules returns the rules being evaluated: the defaults with the rules
	// file applied.
	Rules() []alerts.Rule
}

// RulesBody is GET /api/v1/rules: the effective rule set, so the
// dashboard colours its bars at the thresholds the hub alerts on.
type RulesBody struct {
	Rules []RuleView `json:"rules"`
}

// RuleView is one rule of RulesBody: its levels' durations as Go
// duration strings, for people as much as for the page.
type RuleView struct {
	Name       string            `json:"name"`
	Metric     string            `json:"metric"`
	Target     alerts.Kind       `json:"target"`
	Host       string            `json:"host,omitempty"`
	Match      string            `json:"match,omitempty"`
	Comparison alerts.Comparison `json:"comparison"`
	Warning    *LevelView        `json:"warning,omitempty"`
	Critical   *LevelView        `json:"critical,omitempty"`
	// Disabled marks a default rule the rules file turned off; it has no
	// levels.
	Disabled bool `json:"disabled,omitempty"`
}

// LevelView is one level of a RuleView.
type LevelView struct {
	Threshold float64 `json:"threshold"`
	// For is a Go duration ("2m0s").
	For string `json:"for"`
}

func levelOf(l *alerts.Level) *LevelView {
	if l == nil {
		return nil
	}
	return &LevelView{Threshold: l.Threshold, For: l.For.String()}
}

// effectiveRules lists the rules in evaluation order, then each default
// rule that is not among them (the rules file disabled it), so a client
// can tell "turned off" from "not known to this hub".
func effectiveRules(rules, defaults []alerts.Rule) []RuleView {
	out := make([]RuleView, 0, len(rules)+len(defaults))
	have := make(map[string]bool, len(rules))
	for _, r := range rules {
		have[r.Name] = true
		out = append(out, RuleView{
			Name: r.Name, Metric: r.Metric, Target: r.Target, Host: r.Host, Match: r.Match, Comparison: r.Comparison,
			Warning: levelOf(r.Warning), Critical: levelOf(r.Critical),
		})
	}
	for _, d := range defaults {
		if !have[d.Name] {
			out = append(out, RuleView{
				Name: d.Name, Metric: d.Metric, Target: d.Target, Host: d.Host, Match: d.Match, Comparison: d.Comparison, Disabled: true,
			})
		}
	}
	return out
}

// RulesBodyOf is the body GET /api/v1/rules serves for rules evaluated
// out of defaults; internal/tsgen writes the defaults' own for the page.
func RulesBodyOf(rules, defaults []alerts.Rule) RulesBody {
	return RulesBody{Rules: effectiveRules(rules, defaults)}
}

func (s *Server) rules(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.Rules == nil {
		writeError(w, http.StatusNotImplemented, "alert rules not configured")
		return
	}
	writeJSON(w, http.StatusOK, RulesBodyOf(s.cfg.Rules.Rules(), alerts.Defaults()))
}
