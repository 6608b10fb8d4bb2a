package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// The ingest mode against a real JetStream and a stand-in hub whose
// /metrics counts the stream's messages as consumed: every sample the
// hosts publish is stored once, with the stamps asked for, and the run
// ends once the "hub" has them all.
func TestIngestStoresWhatItCounts(t *testing.T) {
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
		fmt.Fprintf(w, "# HELP x\nsysperf_ingest_samples_total %d\nsysperf_ingest_dropped_samples_total{cause=\"too_old\"} 0\n", info.State.Msgs)
	}))
	t.Cleanup(hub.Close)

	base := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	cfg := IngestConfig{
		Config: Config{NATSURL: srv.ClientURL(), HubURL: hub.URL, Header: http.Header{}, Hosts: 3, GPUs: 8, Procs: 2, Interval: 5 * time.Second, Duration: time.Minute},
		Window: 4, PerHost: 7,
		Stamp: func(n int, seq uint64) time.Time {
			return base.Add(time.Duration(seq)*time.Minute + time.Duration(n)*time.Second)
		},
	}
	r, err := Ingest(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stored != 21 || r.Errors != 0 || r.Consumed != 21 || !r.Complete {
		t.Fatalf("result %+v, want 21 stored and consumed", r)
	}
	m, err := st.GetLastMsgForSubject(ctx, metrics.SampleSubject(HostName(2)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := metrics.Decode(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if want := base.Add(6*time.Minute + 2*time.Second); s.TS != want.UnixNano() || s.Seq != 6 || len(s.GPUs) != 8 || metrics.PublicMsgID(m.Header.Get(jetstream.MsgIDHeader)) != metrics.PublicMsgID(metrics.MsgID(s, "")) {
		t.Fatalf("last sample of host 2: ts %s seq %d, %d GPUs, id %q; want ts %s seq 6", time.Unix(0, s.TS).UTC(), s.Seq, len(s.GPUs), m.Header.Get(jetstream.MsgIDHeader), want)
	}
}

// TestHubMemoryReadsGoMemstats: the end-of-run memory figures come from
// the runtime's samples on the hub's /metrics, labels and comments
// aside; a /metrics without them reports none.
func TestHubMemoryReadsGoMemstats(t *testing.T) {
	body := "# HELP go_memstats_heap_alloc_bytes x\ngo_memstats_heap_alloc_bytes 3.5e+08\ngo_memstats_heap_inuse_bytes 4e+08\n" +
		"go_memstats_stack_inuse_bytes 8.4e+07\ngo_memstats_sys_bytes 6e+08\ngo_memstats_next_gc_bytes 4.5e+08\n" +
		"go_gc_gomemlimit_bytes 4.69762048e+08\ngo_goroutines 4084\ngo_info{version=\"go1.26\"} 1\n"
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(hub.Close)
	cfg := Config{HubURL: hub.URL, Header: http.Header{"Authorization": {"Bearer t"}}}
	m, ok := hubMemory(context.Background(), cfg)
	want := HubMemory{HeapAlloc: 3.5e8, HeapInuse: 4e8, StackInuse: 8.4e7, Sys: 6e8, NextGC: 4.5e8, Limit: 469762048, Goroutines: 4084}
	if !ok || m != want {
		t.Fatalf("hubMemory = %+v, %v; want %+v", m, ok, want)
	}
	body = "sysperf_ingest_samples_total 3\n"
	if m, ok := hubMemory(context.Background(), cfg); ok {
		t.Fatalf("hubMemory of a /metrics without go_memstats = %+v, ok", m)
	}
}
