package hub

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

func TestVanishedConsumerAndStreamAreRecreatedAndReported(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	log, logs := logtest.New(slog.LevelInfo)
	h, err := Start(context.Background(), cfg, Plugs{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	auth := as(t, "gpu01", enrol(t, h, "gpu01", enroll.Agent))
	base := time.Now()
	sample := func(seq int) *metrics.Sample {
		return &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: uint64(seq), TS: base.Add(time.Duration(seq) * time.Millisecond).UnixNano()}
	}
	publish(t, h.NATSURL(), sample(1), auth...)
	performance(t, h, hasHost("gpu01"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The consumer is deleted (by an attacker before auth, or by hand):
	// samples published meanwhile must still arrive, once, after repair.
	if err := h.js.DeleteConsumer(ctx, metrics.StreamSamples, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	publish(t, h.NATSURL(), sample(2), auth...)
	if err := h.repairIngest(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "consumer vanished") {
		t.Fatalf("no ERROR about the consumer in:\n%s", logs)
	}
	performance(t, h, func(u metrics.Update) bool { return len(u.Hosts) == 1 && u.Hosts[0].Seq == 2 })
	if got := h.Stats().Samples; got != 2 {
		t.Fatalf("samples %d after the consumer came back, want 2 (none lost, none twice)", got)
	}

	// The stream is deleted: /healthz says so until the watch repairs it.
	if err := h.js.DeleteStream(ctx, metrics.StreamSamples); err != nil {
		t.Fatal(err)
	}
	h.checkIngest(ctx)
	if !strings.Contains(logs.String(), "samples stream vanished") || !strings.Contains(logs.String(), "lost") {
		t.Fatalf("no ERROR naming the lost stream in:\n%s", logs)
	}
	if err := h.health(); err != nil {
		t.Fatalf("health after the repair: %v", err)
	}
	publish(t, h.NATSURL(), sample(3), auth...)
	performance(t, h, func(u metrics.Update) bool { return len(u.Hosts) == 1 && u.Hosts[0].Seq == 3 })
}

func TestFullStoreIsUnhealthyWithTheReason(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.NATSMaxStore = 48 << 20
	log, logs := logtest.New(slog.LevelInfo)
	h, err := Start(context.Background(), cfg, Plugs{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })

	// Junk in a stream of its own fills what the samples stream left.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, metrics.MaxMessage)
	for i := 0; ; i++ {
		if _, err := h.js.Publish(ctx, "fill", junk); err != nil {
			break
		}
		if i > 100 {
			t.Fatal("48 MiB store took 100 MiB")
		}
	}
	h.checkIngest(ctx)
	resp, err := http.Get("http://" + h.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "store full") {
		t.Fatalf("/healthz %d %s, want 503 saying the store is full", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "refused and lost") {
		t.Fatalf("no ERROR saying what is lost in:\n%s", logs)
	}

	// Room again: healthy again.
	if err := h.js.DeleteStream(ctx, "FILL"); err != nil {
		t.Fatal(err)
	}
	h.checkIngest(ctx)
	if err := h.health(); err != nil {
		t.Fatalf("health once the store has room: %v", err)
	}
}
