// Package promtext reads the Prometheus text exposition format (version
// 0.0.4, what model servers answer on /metrics) into what the agent's
// collectors use: families by name, each series' labels, and its value or
// histogram. It replaces prometheus/common's expfmt parser, which brought
// protobuf, the Go parser and printer and an ABNF library into the agent
// binary: about a megabyte of resident memory for a few hundred lines
// read every few seconds.
//
// Accepted: comments, HELP (skipped) and TYPE lines (counter, gauge,
// histogram, summary, untyped); names bare or quoted inside the braces
// ({"name",label="v"}, the UTF-8 form); label values with \\, \" and \n
// escapes; values as Go reads floats, NaN and ±Inf included; an optional
// integer timestamp (ignored). A histogram's _bucket, _sum and _count
// lines are gathered per label set; a summary's samples are checked and
// dropped, as no collector reads them. Anything else is an error naming
// the line.
package promtext

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Type is a family's TYPE; a family without one is Untyped.
type Type uint8

// The types of the 0.0.4 text format.
const (
	Untyped Type = iota
	Counter
	Gauge
	Histogram
	Summary
)

var typeNames = [...]string{Untyped: "untyped", Counter: "counter", Gauge: "gauge", Histogram: "histogram", Summary: "summary"}

func (t Type) String() string { return typeNames[t] }

// Label is one label pair.
type Label struct {
	Name, Value string
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Hist is one histogram series: buckets by bound (the +Inf bucket
// included when exposed; a bound given twice is an error), the _sum, and
// the _count, or, when the series has no _count line, the +Inf bucket's
// count.
type Hist struct {
	Buckets []Bucket
	Sum     float64
	Count   float64
	counted bool // a _count line was read
}

// Series is one label set of a family: its labels sorted by name (a
// histogram's without le), and its value, or for histograms its Hist.
type Series struct {
	Labels []Label
	Value  float64
	Hist   *Hist
}

// Label returns the value of the named label.
func (s Series) Label(name string) (string, bool) {
	for _, l := range s.Labels {
		if l.Name == name {
			return l.Value, true
		}
	}
	return "", false
}

// Family is one metric family. A counter, gauge or untyped family is
// filed under the name its samples carry; a histogram or summary under its
// TYPE name, its samples' _bucket, _sum and _count suffixes removed.
type Family struct {
	Name   string
	Type   Type
	Series []Series

	pos     int  // order of first mention, for writing back in tests
	typed   bool // a TYPE line was read
	sampled bool // a sample was read; a family without is left out
}

// Parse reads an exposition. A family without samples (a TYPE line
// alone) is left out, so that a counter TYPE'd without its _total suffix
// is found under the name its samples carry. Parse keeps nothing of text.
func Parse(text []byte) (map[string]*Family, error) {
	p := parser{fams: map[string]*Family{}, hists: map[string]*Hist{}, strs: map[string]string{}}
	for n := 1; len(text) > 0; n++ {
		var line []byte
		line, text, _ = bytes.Cut(text, []byte{'\n'})
		if err := p.line(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	for name, f := range p.fams {
		if !f.sampled {
			delete(p.fams, name)
			continue
		}
		for _, s := range f.Series {
			if s.Hist != nil {
				if err := s.Hist.finish(); err != nil {
					return nil, fmt.Errorf("%s%v: %w", f.Name, s.Labels, err)
				}
			}
		}
	}
	return p.fams, nil
}

// finish sorts the buckets, refuses a bound given twice, and takes the
// count from the +Inf bucket when there was no _count line.
func (h *Hist) finish() error {
	slices.SortFunc(h.Buckets, func(a, b Bucket) int { return cmp.Compare(a.UpperBound, b.UpperBound) })
	for i := 1; i < len(h.Buckets); i++ {
		if cmp.Compare(h.Buckets[i].UpperBound, h.Buckets[i-1].UpperBound) == 0 {
			return fmt.Errorf("le %v twice", h.Buckets[i].UpperBound)
		}
	}
	if n := len(h.Buckets); !h.counted && n > 0 && math.IsInf(h.Buckets[n-1].UpperBound, +1) {
		h.Count = h.Buckets[n-1].Count
	}
	return nil
}

type parser struct {
	fams  map[string]*Family
	hists map[string]*Hist  // by family name and label set
	strs  map[string]string // names and values seen, so repeats share one string
	c     cursor
	lbuf  []Label // the current sample's labels
	kbuf  []byte  // the current series' key in hists
}

func (p *parser) line(b []byte) error {
	p.c = cursor{b: b}
	p.c.space()
	switch {
	case p.c.done():
		return nil
	case p.c.peek() == '#':
		p.c.i++
		return p.comment()
	}
	return p.sample()
}

// comment reads a TYPE line; HELP and other comments are skipped.
func (p *parser) comment() error {
	c := &p.c
	c.space()
	word := c.word()
	if string(word) != "TYPE" || !c.space() {
		return nil
	}
	name, err := p.name(metricName)
	if err != nil {
		return err
	}
	if !c.space() {
		return fmt.Errorf("TYPE %s: no type", name)
	}
	word = c.word()
	i := slices.Index(typeNames[:], string(word))
	if i < 0 {
		return fmt.Errorf("TYPE %s: unknown type %q", name, word)
	}
	t := Type(i)
	if c.space(); !c.done() {
		return fmt.Errorf("TYPE %s: text after the type", name)
	}
	f := p.fams[name]
	switch {
	case f == nil:
		p.fams[name] = &Family{Name: name, Type: t, typed: true, pos: len(p.fams)}
	case f.typed:
		return fmt.Errorf("second TYPE line for %s", name)
	case f.sampled:
		return fmt.Errorf("TYPE line for %s after its samples", name)
	default:
		f.Type, f.typed = t, true
	}
	return nil
}

// sample reads name{labels} value [timestamp].
func (p *parser) sample() error {
	c := &p.c
	var name string
	switch c.peek() {
	case '"':
		return errors.New("a quoted metric name belongs inside the braces")
	case '{':
	default:
		var err error
		if name, err = p.name(metricName); err != nil {
			return err
		}
	}
	p.lbuf = p.lbuf[:0]
	if c.peek() == '{' {
		c.i++
		var err error
		if name, err = p.labels(name); err != nil {
			return err
		}
	}
	if !c.space() {
		return fmt.Errorf("%s: no value", name)
	}
	tok := c.word()
	v, err := parseFloat(tok)
	if err != nil {
		return fmt.Errorf("%s: value %q is not a number", name, tok)
	}
	if c.space() && !c.done() {
		ts := c.word()
		if _, err := strconv.ParseInt(string(ts), 10, 64); err != nil {
			return fmt.Errorf("%s: timestamp %q is not an integer", name, ts)
		}
		c.space()
	}
	if !c.done() {
		return fmt.Errorf("%s: text after the value", name)
	}
	slices.SortFunc(p.lbuf, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(p.lbuf); i++ {
		if p.lbuf[i].Name == p.lbuf[i-1].Name {
			return fmt.Errorf("%s: label %s twice", name, p.lbuf[i].Name)
		}
	}
	return p.file(name, v)
}

// file adds a sample to its family.
func (p *parser) file(name string, v float64) error {
	f, suffix := p.familyOf(name)
	f.sampled = true
	switch f.Type {
	case Histogram:
		return p.fileHist(f, suffix, v)
	case Summary:
		if suffix != "" {
			return nil
		}
		q, ok := p.take("quantile")
		if !ok {
			return fmt.Errorf("%s: summary sample without quantile", name)
		}
		if _, err := parseFloat([]byte(q)); err != nil {
			return fmt.Errorf("%s: quantile %q is not a number", name, q)
		}
		return nil
	}
	f.Series = append(f.Series, Series{Labels: slices.Clone(p.lbuf), Value: v})
	return nil
}

func (p *parser) fileHist(f *Family, suffix string, v float64) error {
	var le float64
	if suffix == "_bucket" {
		s, ok := p.take("le")
		if !ok {
			return fmt.Errorf("%s_bucket: no le label", f.Name)
		}
		var err error
		if le, err = parseFloat([]byte(s)); err != nil {
			return fmt.Errorf("%s_bucket: le %q is not a number", f.Name, s)
		}
	}
	p.kbuf = append(p.kbuf[:0], f.Name...)
	for _, l := range p.lbuf {
		p.kbuf = append(p.kbuf, 0xff)
		p.kbuf = append(p.kbuf, l.Name...)
		p.kbuf = append(p.kbuf, 0xfe)
		p.kbuf = append(p.kbuf, l.Value...)
	}
	h := p.hists[string(p.kbuf)]
	if h == nil {
		h = &Hist{}
		p.hists[string(p.kbuf)] = h
		f.Series = append(f.Series, Series{Labels: slices.Clone(p.lbuf), Hist: h})
	}
	switch suffix {
	case "_bucket":
		h.Buckets = append(h.Buckets, Bucket{UpperBound: le, Count: v})
	case "_sum":
		h.Sum = v
	case "_count":
		h.Count, h.counted = v, true
	default:
		return fmt.Errorf("%s: histogram sample without _bucket, _sum or _count", f.Name)
	}
	return nil
}

// familyOf finds the family a sample name belongs to, creating an untyped
// one when none has it, and the histogram or summary suffix it carries.
func (p *parser) familyOf(name string) (*Family, string) {
	if f := p.fams[name]; f != nil {
		return f, ""
	}
	for _, suffix := range [...]string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f := p.fams[base]; f != nil && (f.Type == Histogram || f.Type == Summary && suffix != "_bucket") {
			return f, suffix
		}
	}
	f := &Family{Name: name, pos: len(p.fams)}
	p.fams[name] = f
	return f, ""
}

// take removes the named label from the current sample's.
func (p *parser) take(name string) (string, bool) {
	for i, l := range p.lbuf {
		if l.Name == name {
			p.lbuf = slices.Delete(p.lbuf, i, i+1)
			return l.Value, true
		}
	}
	return "", false
}

// labels reads up to and including the closing brace. A quoted string not
// followed by = is the metric name, which name must not already be.
func (p *parser) labels(name string) (string, error) {
	c := &p.c
	for {
		c.space()
		if c.peek() == '}' {
			c.i++
			break
		}
		quoted := c.peek() == '"'
		key, err := p.name(labelName)
		if err != nil {
			return "", err
		}
		c.space()
		if quoted && (c.peek() == ',' || c.peek() == '}') {
			if name != "" || len(p.lbuf) > 0 {
				return "", fmt.Errorf("metric name %q inside braces after a name or label", key)
			}
			name = key
		} else {
			if c.peek() != '=' {
				return "", fmt.Errorf("label %s: no =", key)
			}
			c.i++
			c.space()
			v, err := p.quoted()
			if err != nil {
				return "", fmt.Errorf("label %s: %w", key, err)
			}
			p.lbuf = append(p.lbuf, Label{Name: key, Value: v})
			c.space()
		}
		switch c.peek() {
		case ',':
			c.i++
		case '}':
		default:
			return "", errors.New("labels: want , or }")
		}
	}
	if name == "" {
		return "", errors.New("sample without a metric name")
	}
	return name, nil
}

type nameKind bool

const (
	metricName nameKind = true
	labelName  nameKind = false
)

// name reads a bare name of kind, or a quoted one of any UTF-8.
func (p *parser) name(kind nameKind) (string, error) {
	c := &p.c
	if c.peek() == '"' {
		s, err := p.quoted()
		if err == nil && s == "" {
			err = errors.New("empty quoted name")
		}
		return s, err
	}
	start := c.i
	for !c.done() && nameByte(c.peek(), c.i == start, kind) {
		c.i++
	}
	if c.i == start {
		return "", fmt.Errorf("want a name at %q", clip(c.b[start:]))
	}
	return p.str(c.b[start:c.i]), nil
}

func nameByte(b byte, first bool, kind nameKind) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b == '_':
		return true
	case b >= '0' && b <= '9':
		return !first
	case b == ':':
		return kind == metricName
	}
	return false
}

// quoted reads a double-quoted string with \\, \" and \n escapes.
func (p *parser) quoted() (string, error) {
	c := &p.c
	if c.peek() != '"' {
		return "", errors.New("want a quoted string")
	}
	c.i++
	start := c.i
	escaped := false
	for ; !c.done(); c.i++ {
		switch c.peek() {
		case '\\':
			escaped = true
			c.i++
		case '"':
			raw := c.b[start:c.i]
			c.i++
			if !utf8.Valid(raw) {
				return "", errors.New("not UTF-8")
			}
			if !escaped {
				return p.str(raw), nil
			}
			return unescape(raw)
		}
	}
	return "", errors.New("unterminated string")
}

func unescape(raw []byte) (string, error) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			out = append(out, raw[i])
			continue
		}
		i++
		switch raw[i] {
		case '\\', '"':
			out = append(out, raw[i])
		case 'n':
			out = append(out, '\n')
		default:
			return "", fmt.Errorf(`bad escape \%c`, raw[i])
		}
	}
	return string(out), nil
}

// str returns b as a string, shared with earlier equal ones.
func (p *parser) str(b []byte) string {
	if s, ok := p.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	p.strs[s] = s
	return s
}

// parseFloat reads a value as the format allows: Go's syntax without hex
// or digit separators.
func parseFloat(b []byte) (float64, error) {
	if bytes.ContainsAny(b, "pP_") {
		return 0, errors.New("unsupported character")
	}
	return strconv.ParseFloat(string(b), 64)
}

// IsMetricName reports whether s is a bare metric name.
func IsMetricName(s string) bool { return isName(s, metricName) }

// IsLabelName reports whether s is a bare label name.
func IsLabelName(s string) bool { return isName(s, labelName) }

func isName(s string, kind nameKind) bool {
	for i := range len(s) {
		if !nameByte(s[i], i == 0, kind) {
			return false
		}
	}
	return s != ""
}

func clip(b []byte) string {
	if len(b) > 20 {
		b = b[:20]
	}
	return string(b)
}

// cursor walks one line.
type cursor struct {
	b []byte
	i int
}

func (c *cursor) done() bool { return c.i >= len(c.b) }

func (c *cursor) peek() byte {
	if c.done() {
		return 0
	}
	return c.b[c.i]
}

// space skips blanks and reports whether there were any.
func (c *cursor) space() bool {
	start := c.i
	for !c.done() && (c.b[c.i] == ' ' || c.b[c.i] == '\t') {
		c.i++
	}
	return c.i > start
}

// word reads up to the next blank.
func (c *cursor) word() []byte {
	start := c.i
	for !c.done() && c.b[c.i] != ' ' && c.b[c.i] != '\t' {
		c.i++
	}
	return c.b[start:c.i]
}
