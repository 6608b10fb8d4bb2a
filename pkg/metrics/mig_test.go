package metrics

import (
	"encoding/json"
	"reflect"
	"testing"
)

// fillNonZero sets every settable field of v that is zero to a value that
// is not, following pointers and one element of each slice, and returns the
// names of the fields it set.
func fillNonZero(t *testing.T, v reflect.Value, path string) []string {
	t.Helper()
	var set []string
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return fillNonZero(t, v.Elem(), path)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() {
				set = append(set, fillNonZero(t, v.Field(i), path+"."+f.Name)...)
			}
		}
		return set
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
		}
		return fillNonZero(t, v.Index(0), path+"[0]")
	case reflect.String:
		v.SetString("x" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint(9)
	case reflect.Float64:
		v.SetFloat(12.5)
	default:
		t.Fatalf("%s: no test value for a %s", path, v.Kind())
	}
	return append(set, path)
}

// Every field of a MIG instance, the new ones included, survives the wire
// and the hub's decoder: a field the encoder or Decode drops fails here by
// name.
func TestMIGInstanceEveryFieldDecoded(t *testing.T) {
	var m MIGInstance
	fields := fillNonZero(t, reflect.ValueOf(&m), "MIGInstance")
	if len(fields) < 8 {
		t.Fatalf("filled only %v", fields)
	}
	s := &Sample{Host: "h", Boot: "b", TS: 1, GPUs: []GPU{{Index: 0, MIGMode: ptr(true), MIG: []MIGInstance{m}, Processes: []Process{}}}}
	got, err := Decode(mustEncode(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GPUs) != 1 || len(got.GPUs[0].MIG) != 1 {
		t.Fatalf("decoded GPUs %+v", got.GPUs)
	}
	back := got.GPUs[0].MIG[0]
	want, have := reflect.ValueOf(m), reflect.ValueOf(back)
	for i := range want.NumField() {
		if name := want.Type().Field(i).Name; !reflect.DeepEqual(have.Field(i).Interface(), want.Field(i).Interface()) {
			g, _ := json.Marshal(have.Field(i).Interface())
			w, _ := json.Marshal(want.Field(i).Interface())
			t.Errorf("MIGInstance.%s: decoded %s, sent %s", name, g, w)
		}
	}
}
