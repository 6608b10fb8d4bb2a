package tsgen

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestGeneratedFilesAreCurrent fails when a Go type or default of the
// contract changed and the page's generated files were not regenerated.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("%d files, want %s and %s", len(files), TypesFile, RulesFile)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("read %s: %v (run `make generate`)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the Go code (first difference at line %d): run `make generate` and commit it", name, firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

type Level string

type inner struct {
	N int `json:"n"`
}

type Embedded struct {
	E string `json:"e"`
}

type Sample struct {
	Embedded
	Name     string             `json:"name"`
	Ptr      *float64           `json:"ptr"`
	OptPtr   *float64           `json:"opt_ptr,omitempty"`
	When     time.Time          `json:"when"`
	Since    time.Time          `json:"since,omitzero"`
	Took     time.Duration      `json:"took"`
	List     []int              `json:"list"`
	OptList  []int              `json:"opt_list,omitempty"`
	Ptrs     []*int             `json:"ptrs,omitempty"`
	ByName   map[string]Child   `json:"by_name"`
	Any      any                `json:"any"`
	Level    Level              `json:"level"`
	Raw      []byte             `json:"raw,omitempty"`
	Anon     struct{ X bool }   `json:"anon"`
	Counted  int64              `json:"counted,string"`
	Skipped  string             `json:"-"`
	hidden   string             //nolint:unused // must not appear
	NoTag    string             //
	Children [2]inner           `json:"children"`
	Nested   map[string][]Child `json:"nested,omitempty"`
}

type Child struct {
	Up bool `json:"up"`
}

func TestGenerateMapsLikeEncodingJSON(t *testing.T) {
	_ = Sample{}.hidden
	out, err := Generate(Spec{
		Header: []string{"generated"},
		Roots:  []reflect.Type{reflect.TypeFor[Sample]()},
		Enums:  []Enum{{Type: reflect.TypeFor[Level](), Values: []string{"low", "high", "<=", "a\"b"}}},
		Consts: []Const{{Name: "Keys", Doc: "keys", Keys: []string{"A"}, Values: []string{"a.b"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		"// generated\n",
		`export type Level = "low" | "high" | "<=" | "a\"b" | (string & {});`,
		"export const Keys = {\n  A: \"a.b\",\n} as const;",
		"export interface Sample {\n  e: string;\n  name: string;\n",
		"  ptr: number | null;\n",
		"  opt_ptr?: number;\n",
		"  when: string;\n",
		"  since?: string;\n",
		"  took: number;\n",
		"  list: number[] | null;\n",
		"  opt_list?: number[];\n",
		"  ptrs?: (number | null)[];\n",
		"  by_name: Record<string, Child> | null;\n",
		"  any: unknown;\n",
		"  level: Level;\n",
		"  raw?: string;\n",
		"  anon: {\n    X: boolean;\n  };\n",
		"  counted: string;\n",
		"  NoTag: string;\n",
		"  children: inner[];\n",
		"  nested?: Record<string, Child[] | null>;\n",
		"export interface Child {\n  up: boolean;\n}",
		"export interface inner {\n  n: number;\n}",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q; it is:\n%s", want, got)
		}
	}
	for _, absent := range []string{"Skipped", "hidden", "Embedded"} {
		if strings.Contains(got, absent) {
			t.Errorf("output has %q; it is:\n%s", absent, got)
		}
	}
	again, err := Generate(Spec{
		Header: []string{"generated"},
		Roots:  []reflect.Type{reflect.TypeFor[Sample]()},
		Enums:  []Enum{{Type: reflect.TypeFor[Level](), Values: []string{"low", "high", "<=", "a\"b"}}},
		Consts: []Const{{Name: "Keys", Doc: "keys", Keys: []string{"A"}, Values: []string{"a.b"}}},
	})
	if err != nil || !bytes.Equal(out, again) {
		t.Fatalf("a second run differs (err %v)", err)
	}
}

type clash struct{ C Child }

// Child in another scope: a second Go type with the name Child.
func otherChild() reflect.Type {
	type Child struct{ B int }
	return reflect.TypeFor[Child]()
}

type custom struct{}

func (custom) MarshalJSON() ([]byte, error) { return []byte("1"), nil }

func TestGenerateRejects(t *testing.T) {
	for _, c := range []struct {
		name, want string
		spec       Spec
	}{
		{"name clash", "would both be Child", Spec{Roots: []reflect.Type{reflect.TypeFor[clash](), otherChild()}}},
		{"MarshalJSON", "has its own MarshalJSON", Spec{Roots: []reflect.Type{reflect.TypeFor[withCustom]()}}},
		{"unnamed root", "not a named struct", Spec{Roots: []reflect.Type{reflect.TypeFor[struct{}]()}}},
		{"func field", "no JSON form", Spec{Roots: []reflect.Type{reflect.TypeFor[withFunc]()}}},
		{"duplicate JSON name", `two fields are "e"`, Spec{Roots: []reflect.Type{reflect.TypeFor[dup]()}}},
		{"enum of an int", "not a named string type", Spec{Enums: []Enum{{Type: reflect.TypeFor[time.Duration]()}}}},
	} {
		_, err := Generate(c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}

type withFunc struct{ F func() }

type withCustom struct{ C custom }

// dup's E hides Embedded's in encoding/json; the generator does not
// model that rule and says so.
type dup struct {
	Embedded
	E int `json:"e"`
}
