package hub

import (
	"math"
	"reflect"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// scrub removes NaN and ±Inf from v (a pointer) in place and returns how
// many it removed. JSON has no such numbers: one in an update would make
// it unencodable and stop the feed. Samples arrive finite (metrics.Decode
// removes them, without reflection); scrub is for the update, once per
// tick, whose figures also come from databases, containers and latency. A pointer becomes nil (unknown),
// a map entry is deleted, a slice holding one is dropped whole; a plain
// float field, which has no "unknown", becomes 0.
func scrub(v any) int {
	return scrubValue(reflect.ValueOf(v))
}

func bad(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

func scrubValue(v reflect.Value) int {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		if e := v.Elem(); e.Kind() == reflect.Float64 || e.Kind() == reflect.Float32 {
			if bad(e.Float()) && v.CanSet() {
				v.SetZero()
				return 1
			}
			return 0
		}
		return scrubValue(v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		return scrubValue(v.Elem())
	case reflect.Struct:
		n := 0
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() {
				n += scrubValue(f)
			}
		}
		return n
	case reflect.Float64, reflect.Float32:
		if bad(v.Float()) && v.CanSet() {
			v.SetFloat(0)
			return 1
		}
		return 0
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return 0
		}
		if k := v.Type().Elem().Kind(); k == reflect.Float64 || k == reflect.Float32 {
			for i := 0; i < v.Len(); i++ {
				if bad(v.Index(i).Float()) {
					if v.Kind() == reflect.Slice && v.CanSet() {
						v.SetZero()
					}
					return 1
				}
			}
			return 0
		}
		n := 0
		for i := 0; i < v.Len(); i++ {
			n += scrubValue(v.Index(i))
		}
		return n
	case reflect.Map:
		n := 0
		iter := v.MapRange()
		var del []reflect.Value
		for iter.Next() {
			val := iter.Value()
			for val.Kind() == reflect.Interface && !val.IsNil() {
				val = val.Elem()
			}
			switch val.Kind() {
			case reflect.Float64, reflect.Float32:
				if bad(val.Float()) {
					del = append(del, iter.Key())
				}
			case reflect.Map, reflect.Slice, reflect.Pointer:
				n += scrubValue(val)
			case reflect.Struct:
				// Map values are not addressable: scrub a copy, store it back.
				c := reflect.New(val.Type()).Elem()
				c.Set(val)
				if k := scrubValue(c); k > 0 {
					v.SetMapIndex(iter.Key(), c)
					n += k
				}
			}
		}
		for _, k := range del {
			v.SetMapIndex(k, reflect.Value{})
		}
		return n + len(del)
	}
	return 0
}

// scrubUpdate is scrub for an update whose first agentGPUs GPUs and whose
// hosts came from the agents: Decode made the samples finite, their
// conversion keeps them so, and the merger shares them with later updates,
// so only what the sources and windows added is walked (the agents' GPUs
// were most of a fleet's scrub).
func scrubUpdate(u *metrics.Update, agentGPUs int) int {
	gpus, hosts := u.GPUs, u.Hosts
	u.GPUs, u.Hosts = gpus[agentGPUs:], nil
	n := scrub(u)
	u.GPUs, u.Hosts = gpus, hosts
	return n
}
