package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/alerts"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// fleetUtil is an update of hosts × 8 GPUs, each at util(host, gpu).
func fleetUtil(hosts int, util func(h, g int) float64) *metrics.Update {
	u := &metrics.Update{}
	for h := range hosts {
		for g := range 8 {
			idx, v := g, util(h, g)
			u.GPUs = append(u.GPUs, metrics.GPUView{Host: fmt.Sprintf("gpu%04d", h), Index: &idx, Utilization: &v})
		}
	}
	return u
}

// key names an alert with what a restart must keep.
func alertKeys(as []metrics.Alert) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s %s %s %s %s %s", a.Rule, a.Host, a.Target, a.State, a.Severity, a.Since.Format(time.RFC3339Nano)))
	}
	slices.Sort(out)
	return out
}

// A fleet's state past NATS's max payload (here 1,500 hosts × 8 GPUs, half
// firing and half pending) is saved in parts under it, and a restarted
// hub restores every alert with its start; once the state is small again
// it is one value and the parts are gone.
func TestLargeStateSavedInParts(t *testing.T) {
	js := natsxtest.JetStream(t)
	cfg := Config{Rules: []alerts.Rule{rule()}}
	s1, stop1 := started(t, js, cfg)
	const hosts = 1500
	even := func(h, g int) float64 {
		if g%2 == 0 {
			return 95
		}
		return 10
	}
	s1.Evaluate(t0, fleetUtil(hosts, even))
	// Odd GPUs start their timer 5 s later: at t0+10s the even ones fire
	// (since t0), the odd ones are still pending (since t0+5s).
	hot := func(int, int) float64 { return 95 }
	s1.Evaluate(t0.Add(5*time.Second), fleetUtil(hosts, hot))
	act := s1.Evaluate(t0.Add(10*time.Second), fleetUtil(hosts, hot))
	if len(act) != hosts*8 || act[0].State != alerts.StateFiring || act[len(act)-1].State != alerts.StatePending {
		t.Fatalf("%d active, first %s, last %s", len(act), act[0].State, act[len(act)-1].State)
	}
	old, err := json.Marshal(s1.engine.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if max := js.Conn().MaxPayload(); int64(len(old)) <= max {
		t.Fatalf("the state is %d bytes, not past the max payload of %d: the test proves nothing", len(old), max)
	}
	stop1() // publishes what is queued: the transitions and the state

	kv, err := js.KeyValue(context.Background(), StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), stateKey)
	if err != nil {
		t.Fatal(err)
	}
	var st stored
	if err := json.Unmarshal(e.Value(), &st); err != nil || st.Parts == nil || len(st.Parts.Revisions) == 0 {
		t.Fatalf("state key holds %.200s (%v), want a manifest of parts", e.Value(), err)
	}
	t.Logf("%d alerts: %d bytes of JSON saved in %d gzipped parts", len(act), len(old), len(st.Parts.Revisions))
	if s1.Stats().Failed != 0 {
		t.Fatalf("%d publishes or saves failed", s1.Stats().Failed)
	}

	s2, stop2 := started(t, js, cfg)
	if got, want := alertKeys(s2.Active()), alertKeys(act); !slices.Equal(got, want) {
		t.Fatalf("restored %d alerts, want %d; first %q, want %q", len(got), len(want), got[:min(1, len(got))], want[0])
	}
	// The restored timers run on: the pending ones fire at t0+15s.
	if a := s2.Evaluate(t0.Add(15*time.Second), fleetUtil(hosts, hot)); a[len(a)-1].State != alerts.StateFiring || !a[len(a)-1].Since.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("restored pending alert at its for: %+v", a[len(a)-1])
	}
	// Small again (every host but one cools down): one value, the parts
	// deleted.
	s2.Evaluate(t0.Add(20*time.Second), fleetUtil(hosts, func(h, _ int) float64 {
		if h == 0 {
			return 95
		}
		return 10
	}))
	stop2()
	e, err = kv.Get(context.Background(), stateKey)
	if err != nil {
		t.Fatal(err)
	}
	var small stored
	if err := json.Unmarshal(e.Value(), &small); err != nil || small.Parts != nil || len(small.Alerts) != 8 {
		t.Fatalf("state key holds %.200s (%v), want 8 alerts in it", e.Value(), err)
	}
	if _, err := kv.Get(context.Background(), partKey("a", 0)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("a part left behind: %v", err)
	}
	s3, _ := started(t, js, cfg)
	if got := s3.Active(); len(got) != 8 || !got[0].Since.Equal(t0) {
		t.Fatalf("restored %+v, want the 8 GPUs of one host firing since t0", got)
	}
}

// persisted is a service of rule() on a JetStream of its own, not run:
// the test publishes what it queues itself.
func persisted(t *testing.T) *Service {
	t.Helper()
	s, err := New(Config{Rules: []alerts.Rule{rule()}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Persist(context.Background(), natsxtest.JetStream(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

// Saves alternate between two sets of parts, so the state a manifest names
// stays whole while the next is written, and a reader holding a manifest
// whose parts were saved over finds out instead of mixing two states.
func TestStatePartsAreReadWholeOrNotAtAll(t *testing.T) {
	s := persisted(t)
	// Small parts, so a few KB of state takes several.
	s.partSize = 1 << 10
	ctx := context.Background()
	state := func(n int) []byte {
		snap := alerts.Snapshot{}
		for i := range n {
			snap.Alerts = append(snap.Alerts, alerts.SavedAlert{
				Rule: "util", Host: fmt.Sprintf("h%d-%d", n, i), Target: "gpu0", State: alerts.StatePending,
				Severity: alerts.SeverityWarning, Since: t0.Add(time.Duration(i) * time.Millisecond), Value: 95 + float64(i)/7,
			})
		}
		b, err := json.Marshal(snap)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	manifest := func() partSet {
		e, err := s.kv.Get(ctx, stateKey)
		if err != nil {
			t.Fatal(err)
		}
		var st stored
		if err := json.Unmarshal(e.Value(), &st); err != nil || st.Parts == nil {
			t.Fatalf("state key holds %.200s (%v)", e.Value(), err)
		}
		return *st.Parts
	}
	first := state(200)
	if err := s.saveState(ctx, first); err != nil {
		t.Fatal(err)
	}
	m1 := manifest()
	if len(m1.Revisions) < 2 {
		t.Fatalf("%d parts, want several", len(m1.Revisions))
	}
	// The next save writes the other set: m1's parts are untouched.
	if err := s.saveState(ctx, state(201)); err != nil {
		t.Fatal(err)
	}
	if m := manifest(); m.Set == m1.Set {
		t.Fatalf("two saves in a row wrote set %q", m.Set)
	}
	if raw, err := s.readParts(ctx, m1); err != nil || string(raw) != string(first) {
		t.Fatalf("the previous state, read during the next save: %v", err)
	}
	// The save after that writes m1's set again: a reader still holding m1
	// is told, not handed a mix.
	third := state(202)
	if err := s.saveState(ctx, third); err != nil {
		t.Fatal(err)
	}
	if _, err := s.readParts(ctx, m1); !errors.Is(err, errMoved) {
		t.Fatalf("parts saved over read as %v, want errMoved", err)
	}
	_, raw, err := s.loadState(ctx)
	if err != nil || string(raw) != string(third) {
		t.Fatalf("load after three saves: %v", err)
	}
	// A part lost (deleted by hand) is an unreadable state, which a hub
	// starts without, not a half-restored one.
	if err := s.kv.Delete(ctx, partKey(manifest().Set, 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.loadState(ctx); !errors.Is(err, errUnreadable) {
		t.Fatalf("a state missing a part loads with %v", err)
	}
	if partLimit(1<<20) != maxPart || partLimit(64<<10) != 56<<10 {
		t.Fatalf("part limits %d, %d", partLimit(1<<20), partLimit(64<<10))
	}
}

// BenchmarkSaveState is what a fleet's alert state costs each save: the
// snapshot's JSON (on the hub's loop, at each evaluation) and the save
// (gzip, parts, manifest, on the publisher's goroutine), for 2,000 hosts ×
// 8 GPUs with six in ten GPU alerts pending or firing.
func BenchmarkSaveState(b *testing.B) {
	js := natsxtest.JetStream(b)
	s, err := New(Config{Rules: []alerts.Rule{rule()}}, quiet())
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Persist(context.Background(), js); err != nil {
		b.Fatal(err)
	}
	s.engine.Evaluate(t0, fleetUtil(2000, func(h, g int) float64 { return 85 + float64((h*8+g)%10)*1.5 }))
	snap := s.engine.Snapshot().AppendJSON(nil)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.engine.Snapshot().AppendJSON(nil)
		}
		b.ReportMetric(float64(len(snap)), "json-bytes")
	})
	b.Run("save", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.saveState(context.Background(), snap); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(s.partsKnown[s.partsIn]), "parts")
	})
}

// The state is saved when an alert's timers change, and otherwise at
// most once a minute: a hot GPU's alert whose value moves every tick is
// not written to the bucket every tick, yet the saved value catches up.
func TestStateSavedOnTimerChangesAndOnceAMinute(t *testing.T) {
	s := persisted(t)
	ctx := context.Background()
	// step evaluates v at t0+at and publishes what the evaluation queued,
	// as Run does when woken; it returns the saved state's revision and
	// the saved alert's state and value.
	step := func(at time.Duration, v float64) (uint64, alerts.State, float64) {
		t.Helper()
		s.Evaluate(t0.Add(at), gpu(v))
		s.publish(ctx)
		e, err := s.kv.Get(ctx, stateKey)
		if err != nil {
			t.Fatal(err)
		}
		snap, _, err := s.loadState(ctx)
		if err != nil || len(snap.Alerts) != 1 {
			t.Fatalf("saved state %+v (%v), want one alert", snap, err)
		}
		return e.Revision(), snap.Alerts[0].State, snap.Alerts[0].Value
	}
	r0, st, v := step(0, 95)
	if st != alerts.StatePending || v != 95 {
		t.Fatalf("first save: %s %v, want pending 95", st, v)
	}
	// Only the value moved: nothing saved.
	if r, _, v := step(5*time.Second, 96); r != r0 || v != 95 {
		t.Fatalf("a value-only change was saved (revision %d→%d, value %v)", r0, r, v)
	}
	// The warning fires (its for is 10s): saved, with the newest value.
	r1, st, v := step(10*time.Second, 93)
	if r1 == r0 || st != alerts.StateFiring || v != 93 {
		t.Fatalf("firing not saved: revision %d, %s %v", r1, st, v)
	}
	for at := 15 * time.Second; at < 70*time.Second; at += 5 * time.Second {
		if r, _, _ := step(at, 92+float64(at/time.Second)/100); r != r1 {
			t.Fatalf("saved at t0+%s while only the value moved", at)
		}
	}
	// A minute after the last save the value catches up.
	if r, st, v := step(70*time.Second, 94); r == r1 || st != alerts.StateFiring || v != 94 {
		t.Fatalf("no save a minute on: revision %d, %s %v", r, st, v)
	}
}
