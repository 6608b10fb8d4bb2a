package hub

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// merge builds the agent-fed part of an update from the newest sample of
// each host with a merger of its own, converting every sample afresh, as
// the tests want it.
func merge(now time.Time, newest map[string]*metrics.Sample, interval time.Duration) metrics.Update {
	var m merger
	return m.merge(now, newest, interval)
}

// The merger keeps each host's conversion between ticks; every update it
// builds must be the one a fresh merge of the same samples builds, through
// new samples, hosts going silent, joining and being forgotten.
func TestMergerMatchesAFreshMerge(t *testing.T) {
	t.Parallel()
	host := func(name string, age time.Duration, seq uint64) *metrics.Sample {
		s := agentSample(name, 0, 2)
		s.TS, s.Seq = now.Add(-age).UnixNano(), seq
		s.Interval = int64(5 * time.Second)
		s.Errors = map[string]string{metrics.CollectorHost: "partial"}
		return s
	}
	a1, b1 := host("a", time.Second, 1), host("b", time.Second, 1)
	b2, c1 := host("b", 0, 2), host("c", 0, 1)
	steps := []struct {
		name   string
		at     time.Time
		newest map[string]*metrics.Sample
	}{
		{"two hosts", now, map[string]*metrics.Sample{"a": a1, "b": b1}},
		{"b sends again", now, map[string]*metrics.Sample{"a": a1, "b": b2}},
		{"a falls silent", now.Add(time.Minute), map[string]*metrics.Sample{"a": a1, "b": b2}},
		{"c joins, a is forgotten", now.Add(time.Minute), map[string]*metrics.Sample{"b": b2, "c": c1}},
		{"b silent too", now.Add(2 * time.Minute), map[string]*metrics.Sample{"b": b2, "c": c1}},
	}
	var m merger
	for _, st := range steps {
		got, err := json.Marshal(m.merge(st.at, st.newest, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(merge(st.at, st.newest, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the merger's update\n%s\na fresh merge's\n%s", st.name, got, want)
		}
		if len(m.parts) != len(st.newest) || len(m.names) != len(st.newest) {
			t.Fatalf("%s: the merger keeps %d parts (%v) for %d hosts", st.name, len(m.parts), m.names, len(st.newest))
		}
	}
}

// A sample is converted once: a tick that finds a host's sample unchanged
// reuses its conversion, and a new sample replaces it.
func TestMergerConvertsEachSampleOnce(t *testing.T) {
	t.Parallel()
	a1 := agentSample("a", 0, 2)
	a1.TS = now.UnixNano()
	var m merger
	m.merge(now, map[string]*metrics.Sample{"a": a1}, 5*time.Second)
	first := m.parts["a"].on
	u := m.merge(now, map[string]*metrics.Sample{"a": a1}, 5*time.Second)
	if m.parts["a"].on != first {
		t.Fatal("an unchanged sample was converted again")
	}
	if &u.GPUs[0] == &first.gpus[0] {
		t.Fatal("the update shares the merger's GPU list: a source appending to it would write into the merger's")
	}
	a2 := agentSample("a", 1, 2)
	a2.TS = now.UnixNano()
	m.merge(now, map[string]*metrics.Sample{"a": a2}, 5*time.Second)
	if m.parts["a"].on == first || m.parts["a"].s != a2 {
		t.Fatal("a new sample kept the old conversion")
	}
}
