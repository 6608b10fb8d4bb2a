package hub

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// BenchmarkIngestConsumerState is the process's CPU per sample stored in
// an embedded server's file stream and delivered by the hub's consumer to
// ingest, with the consumer's state in the store (state=file, the hub
// before) or in memory (state=memory, consumeFrom's). The server writes a
// file consumer's state at most 10 times a second, so what it costs
// depends on the rate: rate=400 publishes b.N 8-GPU samples at 400 a
// second (2,000 hosts at 5 s; a paced run of b.N/400 seconds), rate=max
// as fast as they are acked. cpu-ns/msg counts publishing, the server's
// storing, delivery and state keeping, the client and ingest.
func BenchmarkIngestConsumerState(b *testing.B) {
	for _, rate := range []int{400, 0} {
		for _, memory := range []bool{false, true} {
			name := fmt.Sprintf("rate=%d,state=file", rate)
			if memory {
				name = fmt.Sprintf("rate=%d,state=memory", rate)
			}
			b.Run(name, func(b *testing.B) { benchConsumerState(b, rate, memory) })
		}
	}
}

func benchConsumerState(b *testing.B, rate int, memory bool) {
	js := natsxtest.JetStream(b)
	ctx := context.Background()
	if _, err := natsx.EnsureSamplesStream(ctx, js, natsx.SamplesStream{}); err != nil {
		b.Fatal(err)
	}
	s := agentSample("gpu0001", 0, 8)
	s.TS = time.Now().UnixNano()
	body, err := metrics.Encode(s)
	if err != nil {
		b.Fatal(err)
	}
	at := stampsOf(b, body)
	in := newIngest(slog.New(slog.DiscardHandler), nil, nil)
	cc, _, err := in.consumeFrom(ctx, js, "bench", func(c *jetstream.ConsumerConfig) {
		c.DeliverPolicy, c.MemoryStorage = jetstream.DeliverNewPolicy, memory
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	var pace <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		pace = t.C
	}
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		if pace != nil {
			<-pace
		}
		at.restamp(body, 0, 1)
		if _, err := js.PublishAsync(metrics.SampleSubject(s.Host), body); err != nil {
			b.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !in.waitCaughtUp(wctx, uint64(b.N)) {
		b.Fatalf("%d of %d handled", in.handled.Load(), b.N)
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/msg")
	if st := in.Stats(); st.Samples != uint64(b.N) {
		b.Fatalf("%d samples accepted of %d: %v", st.Samples, b.N, st.Dropped)
	}
}
