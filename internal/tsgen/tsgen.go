// Package tsgen writes the TypeScript types of the hub's JSON from the Go
// types that encode it, so the page and the hub share one contract: a Go
// change that is not regenerated fails the test in this package.
//
// The mapping follows encoding/json: the json tag names a field, "-"
// drops it, omitempty or omitzero make it optional (absent, never null),
// and a pointer, slice, map or interface without them may be null. Each
// named struct becomes an interface of the same name, in the order the
// roots reach them, so the output is the same on every run.
package tsgen

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Enum gives a named string type the values it may take; the generator
// writes it as a union of those literals (open, as a newer hub may send
// another value).
type Enum struct {
	Type   reflect.Type
	Values []string
}

// Const is a set of string constants written as a TypeScript const object,
// such as the section keys of Update.sources.
type Const struct {
	Name string
	// Doc is the comment written above it.
	Doc    string
	Keys   []string
	Values []string
}

// Spec is what to generate: the roots, in order, and what the types they
// reach cannot say themselves.
type Spec struct {
	// Header is written, as line comments, at the top of the file.
	Header []string
	Roots  []reflect.Type
	Enums  []Enum
	Consts []Const
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
	textType      = reflect.TypeFor[encoding.TextMarshaler]()
)

type gen struct {
	enums map[reflect.Type]Enum
	names map[string]reflect.Type // TS name → the Go type that has it
	queue []reflect.Type
	seen  map[reflect.Type]bool
}

// Generate returns the TypeScript for s.
func Generate(s Spec) ([]byte, error) {
	g := &gen{enums: map[reflect.Type]Enum{}, names: map[string]reflect.Type{}, seen: map[reflect.Type]bool{}}
	var b bytes.Buffer
	for _, h := range s.Header {
		b.WriteString("// " + h + "\n")
	}
	for _, e := range s.Enums {
		if e.Type.Kind() != reflect.String || e.Type.Name() == "" {
			return nil, fmt.Errorf("enum %v: not a named string type", e.Type)
		}
		if err := g.claim(e.Type); err != nil {
			return nil, err
		}
		g.enums[e.Type] = e
		lits := make([]string, 0, len(e.Values)+1)
		for _, v := range e.Values {
			lits = append(lits, quote(v))
		}
		lits = append(lits, "(string & {})")
		fmt.Fprintf(&b, "\n/** %s */\nexport type %s = %s;\n", e.Type.String(), e.Type.Name(), strings.Join(lits, " | "))
	}
	for _, c := range s.Consts {
		if len(c.Keys) != len(c.Values) {
			return nil, fmt.Errorf("const %s: %d keys, %d values", c.Name, len(c.Keys), len(c.Values))
		}
		fmt.Fprintf(&b, "\n/** %s */\nexport const %s = {\n", c.Doc, c.Name)
		for i, k := range c.Keys {
			fmt.Fprintf(&b, "  %s: %s,\n", k, quote(c.Values[i]))
		}
		b.WriteString("} as const;\n")
	}
	for _, r := range s.Roots {
		if r.Kind() != reflect.Struct || r.Name() == "" {
			return nil, fmt.Errorf("root %v: not a named struct", r)
		}
		g.enqueue(r)
	}
	for len(g.queue) > 0 {
		t := g.queue[0]
		g.queue = g.queue[1:]
		if err := g.claim(t); err != nil {
			return nil, err
		}
		body, err := g.object(t, "")
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n/** %s */\nexport interface %s %s\n", t.String(), t.Name(), body)
	}
	return b.Bytes(), nil
}

// claim gives t its TypeScript name, or fails when another Go type has it.
func (g *gen) claim(t reflect.Type) error {
	if o, ok := g.names[t.Name()]; ok && o != t {
		return fmt.Errorf("%v and %v would both be %s in TypeScript", o, t, t.Name())
	}
	g.names[t.Name()] = t
	return nil
}

func (g *gen) enqueue(t reflect.Type) {
	if !g.seen[t] {
		g.seen[t] = true
		g.queue = append(g.queue, t)
	}
}

type field struct {
	name     string
	optional bool
	typ      string
}

// fields lists t's JSON fields in declaration order, embedded structs'
// fields in place.
func (g *gen) fields(t reflect.Type) ([]field, error) {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if f.Type.Kind() != reflect.Struct {
				return nil, fmt.Errorf("%v.%s: only embedded structs (not pointers) are supported", t, f.Name)
			}
			sub, err := g.fields(f.Type)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fd := field{name: name}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "omitempty", "omitzero":
				fd.optional = true
			case "string":
				fd.typ = "string"
			}
		}
		if fd.typ == "" {
			ts, err := g.expr(f.Type)
			if err != nil {
				return nil, fmt.Errorf("%v.%s: %w", t, f.Name, err)
			}
			fd.typ = ts
			if !fd.optional && nullable(f.Type) {
				fd.typ += " | null"
			}
		}
		out = append(out, fd)
	}
	seen := map[string]bool{}
	for _, f := range out {
		if seen[f.name] {
			return nil, fmt.Errorf("%v: two fields are %q in JSON", t, f.name)
		}
		seen[f.name] = true
	}
	return out, nil
}

// object is the TypeScript object type of struct t, indented by indent.
func (g *gen) object(t reflect.Type, indent string) (string, error) {
	fs, err := g.fields(t)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("{\n")
	for _, f := range fs {
		opt := ""
		if f.optional {
			opt = "?"
		}
		fmt.Fprintf(&b, "%s  %s%s: %s;\n", indent, key(f.name), opt, f.typ)
	}
	b.WriteString(indent + "}")
	return b.String(), nil
}

// nullable reports whether encoding/json writes null for t's zero value.
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		return true
	}
	return false
}

// expr is the TypeScript type of a non-null value of t.
func (g *gen) expr(t reflect.Type) (string, error) {
	if t == timeType {
		return "string", nil // RFC 3339
	}
	if e, ok := g.enums[t]; ok {
		return e.Type.Name(), nil
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) {
		return "", fmt.Errorf("%v has its own MarshalJSON: its shape is not its fields", t)
	}
	if t.Implements(textType) || reflect.PointerTo(t).Implements(textType) {
		return "string", nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean", nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number", nil
	case reflect.String:
		return "string", nil
	case reflect.Interface:
		return "unknown", nil
	case reflect.Pointer:
		return g.expr(t.Elem())
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return "string", nil // base64
		}
		el, err := g.expr(t.Elem())
		if err != nil {
			return "", err
		}
		if nullable(t.Elem()) {
			el = "(" + el + " | null)"
		}
		return el + "[]", nil
	case reflect.Map:
		el, err := g.expr(t.Elem())
		if err != nil {
			return "", err
		}
		if nullable(t.Elem()) {
			el += " | null"
		}
		return "Record<string, " + el + ">", nil
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t, "  ")
		}
		g.enqueue(t)
		return t.Name(), nil
	}
	return "", fmt.Errorf("%v: no JSON form", t)
}

func quote(s string) string {
	// Without HTML escaping, so a comparison reads ">" rather than "\u003e".
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// key writes a property name, quoted unless it is an identifier.
func key(s string) string {
	for i, r := range s {
		ok := r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}
