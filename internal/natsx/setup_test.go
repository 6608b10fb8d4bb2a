package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Two clients on one node of a three-node cluster create the same R3
// stream, bucket and consumer at the same instant, as two hubs started
// together do, on each node in turn. Plain, the cluster left both create
// requests unanswered in about half such rounds (the test's first
// version: a 3 s timeout each); through Retrying every call is answered
// well within the start-up deadline. A second round on the existing
// stream takes the update path.
func TestRetryingConcurrentCreate(t *testing.T) {
	urls := natsxtest.Cluster(t, 3)
	log := slog.New(slog.DiscardHandler)
	for node, url := range urls {
		for _, round := range []string{"create", "update"} {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			start := make(chan struct{})
			for i := range errs {
				js := natsx.Retrying(natsxtest.Connect(t, url), log)
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					<-start
					if _, errs[i] = natsx.EnsureSamplesStream(ctx, js, natsx.SamplesStream{Replicas: 3}); errs[i] != nil {
						return
					}
					if _, errs[i] = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "B", Replicas: 3}); errs[i] != nil {
						return
					}
					_, errs[i] = js.CreateConsumer(ctx, metrics.StreamSamples, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, Replicas: 3})
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("node %d, %s, client %d: %v", node, round, i, err)
				}
			}
		}
		js := natsxtest.Connect(t, url)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := js.DeleteStream(ctx, metrics.StreamSamples); err != nil {
			t.Fatal(err)
		}
		if err := js.DeleteKeyValue(ctx, "B"); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}

// A call JetStream refuses for good is not retried; one it never answers
// is retried, with longer attempts, until the caller's deadline, and the
// error then says how many attempts over how long.
func TestRetryingGivesUp(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	plain := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	_, err := natsx.Retrying(plain, log).CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "bad.name"})
	if err == nil || time.Since(began) > 2*time.Second {
		t.Fatalf("an invalid stream: %v after %s, want a prompt error", err, time.Since(began))
	}

	// A JetStream API that something receives and never answers.
	nc := plain.Conn()
	var asked atomic.Int32
	if _, err := nc.Subscribe("SILENT.>", func(*nats.Msg) { asked.Add(1) }); err != nil {
		t.Fatal(err)
	}
	silent, err := jetstream.NewWithAPIPrefix(nc, "SILENT")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	_, err = natsx.EnsureSamplesStream(short, natsx.Retrying(silent, log), natsx.SamplesStream{})
	// Attempts of 1 s and 2 s with a 0.1 s pause, the third cut short
	// (on a slow machine the third may not start).
	n := asked.Load()
	want := fmt.Sprintf("stream SYSPERF_SAMPLES: no answer from JetStream in %d attempts over 3.", n)
	if err == nil || n < 2 || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v after %d requests, want %q…", err, n, want)
	}
}
