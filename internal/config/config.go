// Package config fills a program's settings from, in rising precedence, the
// struct's defaults, an optional YAML file, SYSPERF_* environment variables
// and command-line flags. Every way names the setting the same: the flag
// "nats-url" is SYSPERF_NATS_URL and the YAML key nats-url.
//
// A settings struct tags each field with `flag:"name" usage:"..."`; fields
// tagged `flag:"-" yaml:"key"` are lists or structures that only the YAML
// file can set. Unknown keys and bad values are errors that name the key
// and where it came from, so start-up stops instead of guessing.
package config

import (
	"encoding"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrHelp is returned when the user asked for -h or --help; the usage has
// been printed and the program should exit 0.
var ErrHelp = flag.ErrHelp

// ErrVersion is returned when the user asked for --version; nothing else
// was read (no file, no environment), so the program prints its version
// and exits 0 whatever its configuration.
var ErrVersion = errors.New("version requested")

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "SYSPERF_"

// configFlag names the file to read when the struct declares no field for it.
const configFlag = "config"

// Validator is implemented by settings that check themselves after loading.
type Validator interface {
	Validate() error
}

// ConfigEnver is implemented by settings whose config file path comes from
// an environment variable other than SYSPERF_CONFIG. The agent's is
// SYSPERF_AGENT_CONFIG: the hub and the agent run side by side (`make
// run`), and one program must never read the other's file.
type ConfigEnver interface {
	ConfigEnv() string
}

type field struct {
	name  string // flag and YAML key
	usage string
	value reflect.Value
	yaml  bool // YAML-only
}

// Load fills cfg, a pointer to a settings struct, for the program name from
// args (without the program name), the environment and the file named by
// --config. Output of -h goes to stderr.
func Load(name string, args []string, cfg any) error {
	return load(name, args, os.LookupEnv, readFile, os.Stderr, cfg)
}

// maxFile bounds a config file: a real one is a few KiB, and a path such
// as /dev/zero, or a file grown by accident, must not take all memory.
const maxFile = 1 << 20

// readFile reads the config file at path, refusing one over maxFile.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s: over %d bytes, too large for a config file", path, maxFile)
	}
	return b, nil
}

func load(name string, args []string, env func(string) (string, bool), readFile func(string) ([]byte, error), out io.Writer, cfg any) error {
	fields, err := fieldsOf(cfg)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package would print a parse error and the whole usage; the
	// caller prints the error once, and the usage only on -h.
	fs.SetOutput(io.Discard)
	raw := map[string]string{}
	var order []string
	record := func(n string) func(string) error {
		return func(s string) error {
			if _, seen := raw[n]; !seen {
				order = append(order, n)
			}
			raw[n] = s
			return nil
		}
	}
	configEnv := envName(configFlag)
	if c, ok := cfg.(ConfigEnver); ok {
		configEnv = c.ConfigEnv()
	}
	var configPath string
	hasConfigField := false
	for _, f := range fields {
		if f.yaml {
			continue
		}
		if f.name == configFlag {
			hasConfigField = true
		}
		env := envName(f.name)
		if f.name == configFlag {
			env = configEnv
		}
		usage := fmt.Sprintf("%s (env %s", f.usage, env)
		if _, text := f.value.Interface().(encoding.TextMarshaler); text || !f.value.IsZero() {
			usage += ", default " + formatValue(f.value)
		}
		usage += ")"
		if f.value.Kind() == reflect.Bool {
			fs.BoolFunc(f.name, usage, record(f.name))
		} else {
			fs.Func(f.name, usage, record(f.name))
		}
	}
	if !hasConfigField {
		fs.Func(configFlag, "YAML config file (env "+configEnv+")", func(s string) error {
			configPath = s
			return nil
		})
	}
	wantVersion := false
	fs.BoolFunc("version", "print the version and commit, and exit", func(string) error {
		wantVersion = true
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(out, name, fs, fields)
			return err
		}
		return fmt.Errorf("%w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (settings are flags: --name=value)", fs.Arg(0))
	}
	if wantVersion {
		return ErrVersion
	}

	if hasConfigField {
		configPath = raw[configFlag]
	}
	if configPath == "" {
		configPath, _ = env(configEnv)
	}
	if configPath != "" {
		data, err := readFile(configPath)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := applyFile(configPath, data, fields); err != nil {
			return err
		}
	}
	for _, f := range fields {
		if f.yaml {
			continue
		}
		name := envName(f.name)
		if f.name == configFlag {
			name = configEnv
		}
		if s, ok := env(name); ok {
			if err := set(f.value, s); err != nil {
				return fmt.Errorf("environment %s=%q: %w", name, s, err)
			}
		}
	}
	byName := map[string]field{}
	for _, f := range fields {
		byName[f.name] = f
	}
	for _, n := range order {
		if err := set(byName[n].value, raw[n]); err != nil {
			return fmt.Errorf("flag --%s=%q: %w", n, raw[n], err)
		}
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// printUsage is -h: every flag with the kind of value it takes (the flag
// package says "value" for all of them), then the keys only the file sets.
func printUsage(out io.Writer, name string, fs *flag.FlagSet, fields []field) {
	kinds := map[string]string{}
	var fileOnly []string
	for _, f := range fields {
		if f.yaml {
			fileOnly = append(fileOnly, f.name)
			continue
		}
		kinds[f.name] = valueKind(f.value)
	}
	fmt.Fprintf(out, "Usage of %s:\n", name)
	fs.VisitAll(func(fl *flag.Flag) {
		kind, ok := kinds[fl.Name]
		if !ok && fl.Name == configFlag {
			kind = "file" // the --config the loader adds
		}
		fmt.Fprintf(out, "  --%s", fl.Name)
		if kind != "" {
			fmt.Fprintf(out, " %s", kind)
		}
		fmt.Fprintf(out, "\n    \t%s\n", strings.ReplaceAll(fl.Usage, "\n", "\n    \t"))
	})
	if len(fileOnly) > 0 {
		fmt.Fprintf(out, "Only in the --config file: %s\n", strings.Join(fileOnly, ", "))
	}
}

// valueKind names what a flag takes in its usage line; "" for a bool.
func valueKind(v reflect.Value) string {
	if _, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return "string"
	}
	switch {
	case v.Type() == durationType:
		return "duration"
	case v.Kind() == reflect.Bool:
		return ""
	case v.Kind() == reflect.Int:
		return "int"
	case v.Kind() == reflect.Float64:
		return "number"
	case v.Kind() == reflect.Slice:
		return "list"
	}
	return "string"
}

// envName is the environment variable of a flag: nats-url → SYSPERF_NATS_URL.
func envName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func fieldsOf(cfg any) ([]field, error) {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: Load needs a pointer to a struct, got %T", cfg)
	}
	var fields []field
	if err := collectFields(v.Elem(), &fields); err != nil {
		return nil, err
	}
	return fields, nil
}

// collectFields walks embedded structs too, so a program can compose the
// settings of its parts.
func collectFields(v reflect.Value, out *[]field) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, tagged := sf.Tag.Lookup("flag")
		if !tagged {
			if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
				if err := collectFields(v.Field(i), out); err != nil {
					return err
				}
			}
			continue
		}
		if name == "-" {
			key := strings.Split(sf.Tag.Get("yaml"), ",")[0]
			if key == "" || key == "-" {
				continue
			}
			*out = append(*out, field{name: key, value: v.Field(i), yaml: true})
			continue
		}
		if !settable(sf.Type) {
			return fmt.Errorf("config: field %s (--%s) has unsupported type %s", sf.Name, name, sf.Type)
		}
		*out = append(*out, field{name: name, usage: sf.Tag.Get("usage"), value: v.Field(i)})
	}
	return nil
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// settable reports whether a flag can hold t: the plain kinds, lists of
// strings, and any type that parses itself from text (slog.Level, say).
func settable(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// set parses s into v by v's type; []string takes a comma-separated list.
func set(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(strings.TrimSpace(s)))
	}
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 5s, 2m): %w", err)
		}
		if d < 0 {
			return errors.New("duration must not be negative")
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return errors.New("not an integer")
		}
		v.SetInt(n)
	case v.Kind() == reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return errors.New("not a non-negative integer")
		}
		v.SetUint(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return errors.New("not a number")
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice:
		var items []string
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				items = append(items, part)
			}
		}
		v.Set(reflect.ValueOf(items))
	}
	return nil
}

func formatValue(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		if b, err := m.MarshalText(); err == nil {
			return string(b)
		}
	}
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		return strings.Join(v.Interface().([]string), ",")
	}
	return fmt.Sprint(v.Interface())
}

// applyFile sets fields from a YAML mapping whose keys are flag names or the
// keys of YAML-only fields.
func applyFile(path string, data []byte, fields []field) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s line %d: the top level must be a mapping of key: value", path, root.Line)
	}
	byName := map[string]field{}
	for _, f := range fields {
		byName[f.name] = f
	}
	lines := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		// Two values for one key: which one was meant is a guess.
		if first, dup := lines[key.Value]; dup {
			return fmt.Errorf("config file %s line %d: key %q set twice (first on line %d)", path, key.Line, key.Value, first)
		}
		lines[key.Value] = key.Line
		if key.Value == configFlag {
			return fmt.Errorf("config file %s line %d: %q cannot be set from the file itself", path, key.Line, key.Value)
		}
		f, ok := byName[key.Value]
		if !ok {
			return fmt.Errorf("config file %s line %d: unknown key %q", path, key.Line, key.Value)
		}
		if err := applyNode(f, val); err != nil {
			// An error inside a list or structure names its own line and
			// key path.
			if ne, ok := errors.AsType[*nodeError](err); ok {
				return fmt.Errorf("config file %s line %d: key %q: %s", path, ne.line, key.Value+ne.path, ne.msg)
			}
			return fmt.Errorf("config file %s line %d: key %q: %w", path, val.Line, key.Value, err)
		}
	}
	return nil
}

func applyNode(f field, val *yaml.Node) error {
	if f.yaml {
		// Decoding the node itself keeps the file's line numbers, which a
		// re-encoded copy (the only way to get the decoder's KnownFields)
		// would lose; so misspelt keys are found by checkKeys first.
		if err := checkKeys(val, f.value.Type(), ""); err != nil {
			return err
		}
		target := reflect.New(f.value.Type())
		if err := val.Decode(target.Interface()); err != nil {
			if te, ok := errors.AsType[*yaml.TypeError](err); ok {
				return errors.New(strings.Join(te.Errors, "; "))
			}
			return err
		}
		f.value.Set(target.Elem())
		return nil
	}
	switch val.Kind {
	case yaml.ScalarNode:
		return set(f.value, val.Value)
	case yaml.SequenceNode:
		if f.value.Kind() != reflect.Slice {
			return errors.New("expects a single value, not a list")
		}
		items := make([]string, 0, len(val.Content))
		for _, item := range val.Content {
			if item.Kind != yaml.ScalarNode {
				return errors.New("list items must be plain values")
			}
			items = append(items, item.Value)
		}
		f.value.Set(reflect.ValueOf(items))
		return nil
	}
	return errors.New("expects a plain value")
}

// nodeError is a misspelt key inside a YAML-only field: its line and its
// path below the top-level key, such as "[1].helth_url".
type nodeError struct {
	line int
	path string
	msg  string
}

func (e *nodeError) Error() string { return fmt.Sprintf("line %d: %s: %s", e.line, e.path, e.msg) }

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkKeys reports the first mapping key in n that t has no field for,
// the way the decoder's KnownFields would. A merge key (<<) brings its
// mappings' keys in, and they are checked as if written in place.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	return keyCheck{}.check(n, t, path)
}

// keyCheck is the nodes already checked, by type: anchors may point at a
// node from many places, or from inside itself (a mapping merging itself),
// and each node is walked once for a type, so the walk ends and stays
// linear in the file. The decoder then refuses the loop.
type keyCheck map[keyVisit]bool

type keyVisit struct {
	n *yaml.Node
	t reflect.Type
}

func (seen keyCheck) check(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // it decodes itself
	}
	if seen[keyVisit{n, t}] {
		return nil
	}
	seen[keyVisit{n, t}] = true
	switch {
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, item := range n.Content {
			if err := seen.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var err error
			if isMerge(k) {
				err = seen.merge(v, t, path)
			} else {
				err = seen.check(v, t.Elem(), path+"."+k.Value)
			}
			if err != nil {
				return err
			}
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		known := map[string]reflect.Type{}
		if !yamlKeys(t, known) {
			return nil // an inlined map takes any key
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if isMerge(k) {
				if err := seen.merge(v, t, path); err != nil {
					return err
				}
				continue
			}
			ft, ok := known[k.Value]
			if !ok {
				return &nodeError{line: k.Line, path: path + "." + k.Value, msg: "unknown key"}
			}
			if err := seen.check(v, ft, path+"."+k.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// isMerge reports whether k is the merge key <<, as the decoder tells it.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

// merge checks what a merge key brings in: one mapping or a list of them.
func (seen keyCheck) merge(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		return seen.check(n, t, path)
	}
	for _, item := range n.Content {
		if err := seen.check(item, t, path); err != nil {
			return err
		}
	}
	return nil
}

// yamlKeys adds the keys yaml.v3 decodes into struct t: the tag's name, or
// the lower-cased field name, and the fields of inlined structs. It is
// false when an inlined map makes every key known.
func yamlKeys(t reflect.Type, known map[string]reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			if sf.Type.Kind() != reflect.Struct || !yamlKeys(sf.Type, known) {
				return false
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		known[name] = sf.Type
	}
	return true
}
