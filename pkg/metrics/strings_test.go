package metrics

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// eachString calls f with every string v holds: fields, elements, map
// keys and values, through pointers and interfaces.
func eachString(v reflect.Value, f func(string)) {
	switch v.Kind() {
	case reflect.String:
		f(v.String())
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			eachString(v.Elem(), f)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			eachString(v.Field(i), f)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			eachString(v.Index(i), f)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			eachString(it.Key(), f)
			eachString(it.Value(), f)
		}
	}
}

func inBytes(s string, b []byte) bool {
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return len(s) > 0 && p >= lo && p < lo+uintptr(len(b))
}

// With Strings, a Decoder's sample reads as Decode's and holds no string
// of its message; the next message of the same strings gets the same
// copies, so nothing more is kept.
func TestDecoderStringsKeepNoMessage(t *testing.T) {
	d := Decoder{Strings: NewStrings(1<<10, 1<<20)}
	var first []string
	held := 0
	for round := range 2 {
		b := mustEncode(t, fullSample(8))
		want, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.DecodeOwned(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatal("the sample read with Strings differs from Decode's")
		}
		eachString(reflect.ValueOf(got), func(s string) {
			if inBytes(s, b) {
				t.Errorf("round %d: %q is the message's bytes", round, s)
			}
		})
		kept := []string{got.Host, got.Boot, got.GPUs[7].Name, got.GPUs[7].UUID, got.GPUs[1].Processes[0].Name}
		if round == 0 {
			first, held = kept, d.Strings.Len()
			continue
		}
		for i, s := range kept {
			if s == "" || unsafe.StringData(s) != unsafe.StringData(first[i]) {
				t.Fatalf("%q: a second copy for the second message", s)
			}
		}
		if held == 0 || d.Strings.Len() != held {
			t.Fatal("the second message added strings")
		}
	}
}

// Strings that change every sample cannot grow a Strings past two
// generations, by count or by bytes; one looked up all along is kept, the
// same copy.
func TestStringsBounded(t *testing.T) {
	for _, c := range []struct {
		name           string
		max, maxBytes  int
		size, boundLen int
	}{
		{"count", 100, 1 << 20, 8, 200},
		{"bytes", 1 << 20, 1000, 100, 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := NewStrings(c.max, c.maxBytes)
			kept := k.get(strings.Repeat("k", c.size))
			for i := range 10_000 {
				s := strconv.Itoa(i)
				k.get(s + strings.Repeat("x", c.size-len(s)))
				if got := k.get(strings.Repeat("k", c.size)); unsafe.StringData(got) != unsafe.StringData(kept) {
					t.Fatalf("after %d strings the one looked up all along was copied again", i)
				}
			}
			if n := k.Len(); n > c.boundLen {
				t.Fatalf("%d strings held, at most %d", n, c.boundLen)
			}
		})
	}
}
