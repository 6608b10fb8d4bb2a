package alerts

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// rulesFile is the YAML rules file:
//
//	rules:
//	  - name: gpu_temperature        # a default: only the fields given change
//	    warning: {threshold: 70, for: 2m}
//	    critical: {clear: 80}
//	  - name: redis_hit_ratio
//	    disabled: true               # drop a default
//	  - name: gpu_fan                 # a new rule: every field it needs
//	    metric: gpu_utilization
//	    target: gpu
//	    host: "gpu0*"
//	    comparison: ">"
//	    warning: {threshold: 50, for: 30s}
//	    keep_firing_for: 1m
//	    no_data: resolve
//	    message: "GPU {{.Target}} busy on {{.Host}}: {{.Value}}%"
type rulesFile struct {
	Rules []ruleOverride `yaml:"rules"`
}

// ruleOverride has pointer fields so an override of a default rule changes
// only what it names.
type ruleOverride struct {
	Name          string         `yaml:"name"`
	Disabled      bool           `yaml:"disabled"`
	Metric        *string        `yaml:"metric"`
	Target        *Kind          `yaml:"target"`
	Host          *string        `yaml:"host"`
	Match         *string        `yaml:"match"`
	Comparison    *Comparison    `yaml:"comparison"`
	Warning       *levelOverride `yaml:"warning"`
	Critical      *levelOverride `yaml:"critical"`
	Hysteresis    *float64       `yaml:"hysteresis"`
	KeepFiringFor *time.Duration `yaml:"keep_firing_for"`
	NoData        *string        `yaml:"no_data"`
	Message       *string        `yaml:"message"`
}

type levelOverride struct {
	// Disabled removes the level from the rule.
	Disabled  bool           `yaml:"disabled"`
	Threshold *float64       `yaml:"threshold"`
	For       *time.Duration `yaml:"for"`
	Clear     *float64       `yaml:"clear"`
}

// LoadRules reads a YAML rules file and applies it to defaults: a rule
// whose name is a default's changes the fields it gives (or, with
// `disabled: true`, removes the rule); any other rule is added. Unknown
// keys and invalid rules return an error naming the line or the rule; an
// empty file returns the defaults.
func LoadRules(r io.Reader, defaults []Rule) ([]Rule, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f rulesFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	out := make([]Rule, 0, len(defaults)+len(f.Rules))
	index := map[string]int{}
	for _, d := range defaults {
		index[d.Name] = len(out)
		out = append(out, cloneRule(d))
	}
	removed := map[string]bool{}
	named := map[string]bool{}
	for i, o := range f.Rules {
		if o.Name == "" {
			return nil, fmt.Errorf("rules file: rule #%d: name is empty", i+1)
		}
		if named[o.Name] {
			return nil, fmt.Errorf("rules file: rule %q: given twice", o.Name)
		}
		named[o.Name] = true
		j, ok := index[o.Name]
		if !ok {
			// A misspelt default would otherwise become a new rule: an
			// incomplete one (a puzzling "target" error) or, with
			// disabled: true, nothing at all, leaving the default on.
			if o.Metric == nil {
				return nil, fmt.Errorf("rules file: rule %q: not a default rule (%s), and a new rule needs metric, target and comparison", o.Name, ruleNames(defaults))
			}
			index[o.Name] = len(out)
			j = len(out)
			out = append(out, Rule{Name: o.Name})
		}
		if o.Disabled {
			removed[o.Name] = true
			continue
		}
		o.apply(&out[j])
	}
	rules := out[:0]
	for _, r := range out {
		if removed[r.Name] {
			continue
		}
		if _, err := compile(r); err != nil {
			return nil, fmt.Errorf("rules file: %w", err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// ruleNames lists the rules' names for an error message.
func ruleNames(rules []Rule) string {
	names := make([]string, len(rules))
	for i, r := range rules {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

func (o *ruleOverride) apply(r *Rule) {
	set(&r.Metric, o.Metric)
	set(&r.Target, o.Target)
	set(&r.Host, o.Host)
	set(&r.Match, o.Match)
	set(&r.Comparison, o.Comparison)
	set(&r.Hysteresis, o.Hysteresis)
	set(&r.KeepFiringFor, o.KeepFiringFor)
	set(&r.NoData, o.NoData)
	set(&r.Message, o.Message)
	r.Warning = o.Warning.apply(r.Warning)
	r.Critical = o.Critical.apply(r.Critical)
}

func (o *levelOverride) apply(l *Level) *Level {
	if o == nil {
		return l
	}
	if o.Disabled {
		return nil
	}
	if l == nil {
		l = &Level{}
	}
	set(&l.Threshold, o.Threshold)
	set(&l.For, o.For)
	if o.Clear != nil {
		l.Clear = o.Clear
	}
	return l
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// cloneRule copies r so overriding a level does not change the caller's
// defaults.
func cloneRule(r Rule) Rule {
	if r.Warning != nil {
		w := *r.Warning
		r.Warning = &w
	}
	if r.Critical != nil {
		c := *r.Critical
		r.Critical = &c
	}
	return r
}
