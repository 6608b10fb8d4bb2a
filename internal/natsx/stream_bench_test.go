package natsx_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// BenchmarkSamplesStreamMemory is what the embedded server's heap holds
// per stored sample, with and without a de-duplication id: the server
// keeps every Nats-Msg-Id of the stream's window in memory. Run with a
// fixed count so each case stores as many messages, e.g.
// -bench SamplesStreamMemory -benchtime 100000x. The run is far shorter
// than either window, so both hold all b.N ids, and heap-B/msg of a
// window less that of ids=none (the same header under another name, not
// de-duplicated: the store's index and block cache alone) is what one id
// costs; a hub holds rate × window of them.
func BenchmarkSamplesStreamMemory(b *testing.B) {
	for _, window := range []time.Duration{0, natsx.DefaultDuplicates, 2 * time.Hour} {
		name, header := "ids=none", "Sysperf-Ids"
		if window > 0 {
			name, header = "duplicates="+window.String(), jetstream.MsgIDHeader
		}
		b.Run(name, func(b *testing.B) {
			js := natsxtest.JetStream(b)
			ctx := context.Background()
			if _, err := natsx.EnsureSamplesStream(ctx, js, natsx.SamplesStream{Duplicates: window}); err != nil {
				b.Fatal(err)
			}
			// A sample's size does not matter here, its id does: one as
			// long as an agent's (host/boot/seq and a 32-digit key).
			body := []byte(strings.Repeat("x", 200))
			key := strings.Repeat("0123456789abcdef", 2)
			before := heapInuse()
			i := 0
			for b.Loop() {
				host := fmt.Sprintf("gpu%04d", i%2000)
				msg := &nats.Msg{Subject: metrics.SampleSubject(host), Data: body, Header: nats.Header{}}
				msg.Header.Set(header, fmt.Sprintf("%s/%s/%d/%s", host, "5f0c6a2e-boot", i/2000, key))
				if _, err := js.PublishMsgAsync(msg); err != nil {
					b.Fatal(err)
				}
				i++
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("publishes not acked")
			}
			after := heapInuse()
			b.ReportMetric(float64(int64(after)-int64(before))/float64(b.N), "heap-B/msg")
		})
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
