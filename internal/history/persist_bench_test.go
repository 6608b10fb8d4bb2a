package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkPublishRollups is one flush's batch: 512 minute rollups of
// 8-GPU hosts published to the embedded server, each awaited in turn
// (how flush published them before) or all sent before their acks are
// awaited (publishRollups). cpu-µs/rollup is the process's CPU, the
// server's storing and acking included.
func BenchmarkPublishRollups(b *testing.B) {
	js := natsxtest.JetStream(b)
	ctx := context.Background()
	now := time.Now().Truncate(time.Minute)
	p, err := Open(ctx, js, New(), PersistConfig{}, quiet())
	if err != nil {
		b.Fatal(err)
	}
	for h := range minuteBatch {
		for i := range 12 {
			add(p, sample(fmt.Sprintf("gpu%04d", h), uint64(i+1), now.Add(time.Duration(i-12)*5*time.Second), cpuAt(i), 8))
		}
	}
	batch := p.minutes(now, true, minuteBatch)
	if len(batch) != minuteBatch {
		b.Fatalf("%d minutes, want %d", len(batch), minuteBatch)
	}
	b.Run("awaited", func(b *testing.B) {
		cpu := cpuTime()
		for b.Loop() {
			for i := range batch {
				m, err := msgpack.Marshal(&batch[i])
				if err == nil {
					err = p.publish(ctx, RollupSubject(&batch[i]), m)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N*len(batch)), "cpu-µs/rollup")
	})
	b.Run("batch", func(b *testing.B) {
		cpu := cpuTime()
		for b.Loop() {
			if failed := p.publishRollups(ctx, batch); len(failed) > 0 {
				b.Fatalf("%d not stored", len(failed))
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N*len(batch)), "cpu-µs/rollup")
	})
}
