package history

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestPersistRestart runs a hub's history against a real JetStream,
// stops it, and rebuilds a second one from the streams plus the samples a
// hub replays from ReplayStart: every window must come back the same.
func TestPersistRestart(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	now := time.Now()
	start := now.Add(-3 * time.Hour).Truncate(5 * time.Second)
	st1 := New()
	p1, err := Open(ctx, js, st1, PersistConfig{SealEvery: 20 * time.Millisecond}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p1.Run(runCtx); close(done) }()

	var samples []*metrics.Sample
	for i := range 3 * 720 {
		s := sample("gpu-1", uint64(i+1), start.Add(time.Duration(i)*5*time.Second), cpuAt(i), 2)
		if s.TS > now.UnixNano() {
			break
		}
		add(p1, s)
		samples = append(samples, s)
	}
	for i := range 180 {
		p1.Record(hubUpdate(now.Add(-time.Duration(180-i)*time.Minute), float64(i)))
	}
	stop()
	<-done
	if p1.Failed() != 0 || p1.Dropped() != 0 {
		t.Fatalf("%d publishes failed, %d readings dropped", p1.Failed(), p1.Dropped())
	}

	// Garbage in the rollup stream is skipped, not fatal.
	if _, err := js.Publish(ctx, "sysperf.v1.rollup.360.bad.1", []byte("not msgpack")); err != nil {
		t.Fatal(err)
	}

	st2 := New()
	p2, err := Open(ctx, js, st2, PersistConfig{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	from := p2.ReplayStart(now)
	if from.After(now.Add(-time.Hour)) {
		t.Fatalf("replay from %v, later than an hour ago", from)
	}
	replayed := 0
	for _, s := range samples {
		if !time.Unix(0, s.TS).Before(from) {
			add(p2, s)
			replayed++
		}
	}
	if replayed >= len(samples) {
		t.Fatalf("replayed all %d samples: the rollups were not used", replayed)
	}
	sameWindows(t, "restart", st1, st2, now)
	// The hub's readings came back from SYSPERF_HUB.
	h, _ := st2.Window(now, "60m", "")
	if p := h.Points[58]; p.Databases == nil || p.Inference == nil || p.Containers == nil {
		t.Fatalf("hub readings not restored: %+v", p)
	}
	h, _ = st2.FleetWindow(now, "60m")
	if p := h.Points[58]; p.Fleet == nil || p.Fleet.UtilMax == nil {
		t.Fatalf("fleet figures not restored: %+v", p)
	}
}

func TestRecordNeverBlocks(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx := context.Background()
	p, err := Open(ctx, js, New(), PersistConfig{Queue: 2}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	// Nothing publishes (Run is not running): the queue overflows.
	for i := range 5 {
		p.Record(hubUpdate(base.Add(time.Duration(i)*time.Second), 1))
	}
	if p.Dropped() != 3 {
		t.Fatalf("dropped %d, want 3", p.Dropped())
	}
}
