package alerting

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/notify"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/alerts"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// leased starts a service that shares js with other hubs as name.
func leased(t *testing.T, js jetstream.JetStream, hook, name string) (*Service, func()) {
	t.Helper()
	return started(t, js, Config{
		Rules: []alerts.Rule{rule()}, Webhooks: []string{hook}, GeneratorURL: "http://hub/system",
		Lease: name, LeaseTTL: 2 * time.Second,
	})
}

func (w *webhook) count(severity string, resolved bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.alerts {
		if a.Labels["severity"] == severity && a.EndsAt.IsZero() != resolved {
			n++
		}
	}
	return n
}

// Two services on one JetStream: both evaluate, one notifies. The holder
// stops after publishing the firing transition, and the state it leaves
// is the one from before it (as if it died between the publish and the
// save; the e2e test SIGKILLs a hub process). The other takes over, evaluates the firing again from that
// state, and the stream drops the repeat; the resolution comes from the
// new holder; each reaches the webhook once, with the same startsAt.
func TestLeaseTakeoverSendsEachTransitionOnce(t *testing.T) {
	js := natsxtest.JetStream(t)
	wh := &webhook{}
	srv := httptest.NewServer(wh)
	defer srv.Close()

	a, stopA := leased(t, js, srv.URL, "a")
	b, stopB := leased(t, js, srv.URL, "b")
	poll.Until(t, "a lease holder", func() bool { return a.notifying() || b.notifying() })
	holder, other, stopHolder := a, b, stopA
	if b.notifying() {
		holder, other, stopHolder = b, a, stopB
	}
	if other.notifying() {
		t.Fatal("both services hold the lease")
	}

	kv, err := js.KeyValue(context.Background(), StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	savedState := func(st alerts.State) []byte {
		state := string(st)
		var v []byte
		poll.Until(t, "the state saved with the alert "+state, func() bool {
			e, err := kv.Get(context.Background(), stateKey)
			if err != nil || !strings.Contains(string(e.Value()), `"state":"`+state+`"`) {
				return false
			}
			v = e.Value()
			return true
		})
		return v
	}
	for _, s := range []*Service{holder, other} {
		s.Evaluate(t0, gpu(95))
	}
	pending := savedState(alerts.StatePending)
	for _, s := range []*Service{holder, other} {
		if act := s.Evaluate(t0.Add(10*time.Second), gpu(95)); len(act) != 1 || act[0].State != alerts.StateFiring {
			t.Fatalf("active %+v, want firing on both hubs", act)
		}
	}
	wh.waitFor(t, func(a notify.Alert) bool { return a.Labels["severity"] == "warning" && a.EndsAt.IsZero() })
	savedState(alerts.StateFiring)
	// The holder saves only after an evaluation, so this stays.
	if _, err := kv.Put(context.Background(), stateKey, pending); err != nil {
		t.Fatal(err)
	}
	stopHolder()
	// A holder that shuts down releases the lease rather than let it age.
	lease, err := js.KeyValue(context.Background(), LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := lease.Get(context.Background(), leaseKey); err == nil && string(e.Value()) == holder.cfg.Lease {
		t.Fatalf("lease still names the stopped holder %q", e.Value())
	}

	poll.Until(t, "the other service taking the lease", other.notifying)
	other.Evaluate(t0.Add(20*time.Second), gpu(10))
	res := wh.waitFor(t, func(a notify.Alert) bool { return a.Labels["severity"] == "warning" && !a.EndsAt.IsZero() })
	if !res.StartsAt.Equal(t0) || !res.EndsAt.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("resolution %+v, want startsAt t0 and endsAt t0+20s", res)
	}

	// Nothing is owed once the receiver's position is at the stream's last
	// resolution; by then each transition arrived once.
	st, err := js.Stream(context.Background(), metrics.StreamAlerts)
	if err != nil {
		t.Fatal(err)
	}
	last, err := st.GetLastMsgForSubject(context.Background(), metrics.AlertSubject(alerts.StateResolved))
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the delivery position at the resolution", func() bool {
		e, err := kv.Get(context.Background(), deliveredKey(srv.URL))
		if err != nil {
			return false
		}
		pos, _ := strconv.ParseUint(string(e.Value()), 10, 64)
		return pos >= last.Sequence
	})
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(metrics.AlertSubject(alerts.StateFiring)))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[metrics.AlertSubject(alerts.StateFiring)]; n != 1 {
		t.Fatalf("stream holds %d firing transitions, want the repeat dropped", n)
	}
	if f, r := wh.count("warning", false), wh.count("warning", true); f != 1 || r != 1 {
		t.Fatalf("webhook got firing %d and resolved %d times, want once each: %+v", f, r, wh.alerts)
	}
}

// A hub that is the only one on its NATS (no lease) notifies at once, as
// before: the lease bucket is not even created.
func TestNoLeaseWithoutName(t *testing.T) {
	js := natsxtest.JetStream(t)
	s, _ := running(t, js, "http://127.0.0.1:1/unused")
	if !s.notifying() {
		t.Fatal("a lone hub does not notify")
	}
	if _, err := js.KeyValue(context.Background(), LeaseBucket); err == nil {
		t.Fatal("lease bucket created without a lease name")
	}
}
