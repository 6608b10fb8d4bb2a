package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// The prefill against a real JetStream and a stand-in hub that counts the
// stream's messages as consumed: every host's span of samples is stored,
// stamped over the past span up to the prefill's start, without a
// de-duplication id, and the prefill returns once the "hub" has them.
func TestPrefillFillsThePast(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	srv, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Open: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	js := natsxtest.Connect(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := natsx.EnsureSamplesStream(ctx, js, natsx.SamplesStream{})
	if err != nil {
		t.Fatal(err)
	}
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := st.Info(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "sysperf_ingest_samples_total %d\n", info.State.Msgs)
	}))
	t.Cleanup(hub.Close)

	cfg := Config{NATSURL: srv.ClientURL(), HubURL: hub.URL, Header: http.Header{}, Hosts: 3, GPUs: 2, Procs: 1, Interval: 5 * time.Second}
	began := time.Now()
	r, err := Prefill(ctx, cfg, 4, time.Minute, log)
	if err != nil {
		t.Fatal(err)
	}
	// One pass: it takes far less than two intervals, so no second.
	if r.Stored != 36 || r.Consumed != 36 || r.Passes != 1 {
		t.Fatalf("result %+v, want 36 samples stored and consumed in one pass", r)
	}
	for n := range 3 {
		m, err := st.GetLastMsgForSubject(ctx, metrics.SampleSubject(HostName(n)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := metrics.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		ts := time.Unix(0, s.TS)
		if ts.Before(began.Add(-cfg.Interval)) || ts.After(began.Add(time.Second)) || s.Seq != 11 {
			t.Fatalf("host %d's last sample: seq %d at %s, want seq 11 within an interval before %s", n, s.Seq, ts, began)
		}
		if id := m.Header.Get(jetstream.MsgIDHeader); id != "" {
			t.Fatalf("host %d's sample carries a de-duplication id %q", n, id)
		}
	}
}

// TestSettleWaitsForIdle: settling ends at the first quiet window of the
// hub's process, and not before most while it stays busy.
func TestSettleWaitsForIdle(t *testing.T) {
	ctx := context.Background()
	pid := os.Getpid()
	if took, err := settle(ctx, pid, 0.5, 50*time.Millisecond, time.Minute); err != nil || took > 10*time.Second {
		t.Fatalf("an idle process settled after %s, %v", took, err)
	}
	var done atomic.Bool
	defer done.Store(true)
	go func() {
		// Spins on purpose: the process must read busy.
		n := 0
		for !done.Load() {
			n++
		}
		_ = n
	}()
	const most = 500 * time.Millisecond
	if took, err := settle(ctx, pid, 0.01, 50*time.Millisecond, most); err != nil || took < most {
		t.Fatalf("a busy process settled after %s, %v", took, err)
	}
}
