package alerts

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Snapshot's encoder writes what encoding/json writes from the tags, byte
// for byte, so a state saved by either reads back the same.
func TestSnapshotJSONIsEncodingJSONs(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
	for _, st := range []Snapshot{
		{},
		{Alerts: []SavedAlert{}},
		{Alerts: []SavedAlert{
			{Rule: "gpu_temperature", Host: "gpu0001", Target: "gpu3", State: StateFiring, Severity: SeverityCritical, Since: at, Value: 86.25,
				Levels: []SavedLevel{{Severity: SeverityWarning, Since: at, Active: true}, {Severity: SeverityCritical, Since: at.Add(time.Second), ClearedAt: at.Add(time.Minute)}}},
			{Rule: "model_down", Host: "box", Target: "nemotron", State: StatePending, Severity: SeverityWarning, Since: at.In(time.FixedZone("x", 3600)),
				Value: 1, Detail: `unreachable: "dial tcp" <refused> & \ gone` + "\n\x01 é \u2028", NoData: true, Levels: []SavedLevel{{Severity: SeverityWarning}}},
			{Rule: "database_unreachable", State: StatePending, Value: 0},
			{Rule: "tiny", State: StatePending, Value: 1e-9, Levels: []SavedLevel{}},
			{Rule: "huge", State: StatePending, Value: -3.5e22},
			{Rule: "whole", State: StatePending, Value: 1e20},
			{Rule: "bad\xffutf8", State: StatePending, Value: math.SmallestNonzeroFloat64},
		}},
	} {
		got, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		type plain Snapshot // the tags without the method
		want, err := json.Marshal(plain(st))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encoded\n%s\nencoding/json\n%s", got, want)
		}
		if app := st.AppendJSON([]byte("x")); !bytes.Equal(app[1:], want) || app[0] != 'x' {
			t.Fatalf("appended\n%s\nencoding/json\n%s", app, want)
		}
	}
}

// A snapshot holds the pending and firing alerts by rule, host and
// target, each with its rule's levels, whatever order the engine keeps
// them in.
func TestSnapshotOrder(t *testing.T) {
	t.Parallel()
	hot := utilRule()
	hot.Name = "a_hot"
	e := mustNew(t, utilRule(), hot)
	u := &metrics.Update{}
	for _, h := range []string{"h2", "h1", "h3"} {
		for i := range 3 {
			u.GPUs = append(u.GPUs, metrics.GPUView{Host: h, Index: ptr(2 - i), Utilization: f(95)})
		}
	}
	cool := 10.0
	u.GPUs[0].Utilization = &cool // h2 gpu2: nothing to save
	e.Evaluate(t0, u)
	st := e.Snapshot()
	var got []string
	for _, a := range st.Alerts {
		if a.State != StatePending || len(a.Levels) != 1 || !a.Levels[0].Since.Equal(t0) {
			t.Fatalf("saved %+v", a)
		}
		got = append(got, a.Rule+"/"+a.Host+"/"+a.Target)
	}
	if len(got) != 16 || !slices.IsSorted(got) || slices.Contains(got, "util/h2/gpu2") || got[0] != "a_hot/h1/gpu0" {
		t.Fatalf("snapshot order %q", got)
	}
}
