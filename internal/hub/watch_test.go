package hub

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

func TestVanishedStreamIsRecreatedAndReported(t *testing.T) {
	t.Parallel()
	h, logs, auth, sample := watchedHub(t)
	publish(t, h.NATSURL(), sample(1), auth...)
	performance(t, h, hasHost("gpu01"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Ingest keeps no consumer that could vanish: not even the durable
	// one of earlier versions is left.
	if _, err := h.js.Consumer(ctx, metrics.StreamSamples, h.cfg.Consumer); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer %s: %v, want none", h.cfg.Consumer, err)
	}
	publish(t, h.NATSURL(), sample(2), auth...)
	performance(t, h, func(u metrics.Update) bool { return len(u.Hosts) == 1 && u.Hosts[0].Seq == 2 })
	h.checkIngest(ctx)

	// The stream is deleted: /healthz says so until the watch repairs it.
	if err := h.js.DeleteStream(ctx, metrics.StreamSamples); err != nil {
		t.Fatal(err)
	}
	h.checkIngest(ctx)
	if !strings.Contains(logs.String(), "stream vanished") || !strings.Contains(logs.String(), "stream="+metrics.StreamSamples) || !strings.Contains(logs.String(), "lost") {
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
	h, logs := loggedHub(t, cfg, Plugs{})

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

// ownStreams is the hub's streams by name, with their state.
func ownStreams(t *testing.T, h *Hub) map[string]*jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := map[string]*jetstream.StreamInfo{}
	list := h.js.ListStreams(ctx)
	for info := range list.Info() {
		if ownStream(info.Config.Name) {
			out[info.Config.Name] = info
		}
	}
	if err := list.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// healthz is /healthz's status and body.
func healthz(t *testing.T, h *Hub) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + h.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestEveryVanishedStreamIsRecreated(t *testing.T) {
	t.Parallel()
	log, logs := logtest.New(slog.LevelInfo)
	h, err := Start(context.Background(), testConfig(t), Plugs{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.checkIngest(ctx)
	before := ownStreams(t, h)
	// The samples, history, alert and alert-state streams, at least.
	for _, name := range []string{metrics.StreamSamples, metrics.StreamAlerts, "SYSPERF_ROLLUPS", "SYSPERF_HUB", "KV_SYSPERF_ALERT_STATE"} {
		if before[name] == nil {
			t.Fatalf("no stream %s among %v", name, before)
		}
	}
	// Deleted with the hub's own credential: every one.
	for name := range before {
		if err := h.js.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	h.checkIngest(ctx)
	after := ownStreams(t, h)
	for name, b := range before {
		a := after[name]
		if a == nil {
			t.Errorf("stream %s not recreated", name)
			continue
		}
		if a.Created.Equal(b.Created) {
			t.Errorf("stream %s not deleted", name)
		}
		if a.Config.MaxAge != b.Config.MaxAge || a.Config.Description != b.Config.Description || !slices.Equal(a.Config.Subjects, b.Config.Subjects) {
			t.Errorf("stream %s recreated as %+v, was %+v", name, a.Config, b.Config)
		}
		if !strings.Contains(logs.String(), "stream vanished") || !strings.Contains(logs.String(), "stream="+name) {
			t.Errorf("no ERROR naming %s", name)
		}
	}
	if err := h.health(); err != nil {
		t.Fatalf("health once every stream is back: %v", err)
	}
	// Alert state is kept again.
	if _, err := h.js.KeyValue(ctx, "SYSPERF_ALERT_STATE"); err != nil {
		t.Fatalf("alert state bucket: %v", err)
	}
}

func TestStreamRecreatedEmptyOrPurgedIsReported(t *testing.T) {
	t.Parallel()
	h, logs, auth, sample := watchedHub(t)
	publish(t, h.NATSURL(), sample(1), auth...)
	publish(t, h.NATSURL(), sample(2), auth...)
	performance(t, h, func(u metrics.Update) bool { return len(u.Hosts) == 1 && u.Hosts[0].Seq == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.checkIngest(ctx)
	if err := h.health(); err != nil {
		t.Fatal(err)
	}

	// Recreated empty behind the hub's back, as the server does with a
	// stream whose files it finds corrupt.
	info := ownStreams(t, h)[metrics.StreamSamples]
	if err := h.js.DeleteStream(ctx, metrics.StreamSamples); err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.CreateStream(ctx, info.Config); err != nil {
		t.Fatal(err)
	}
	h.checkIngest(ctx)
	code, body := healthz(t, h)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, metrics.StreamSamples) || !strings.Contains(body, "recreated empty") || !strings.Contains(body, "2 messages") {
		t.Fatalf("/healthz %d %q, want 503 naming the samples stream and its 2 lost messages", code, body)
	}
	if !strings.Contains(logs.String(), "level=ERROR msg=\"stream lost its messages\" stream="+metrics.StreamSamples) {
		t.Fatalf("no ERROR naming the loss in:\n%s", logs)
	}
	// Ingest goes on in the new stream, from its first message.
	publish(t, h.NATSURL(), sample(3), auth...)
	performance(t, h, func(u metrics.Update) bool { return len(u.Hosts) == 1 && u.Hosts[0].Seq == 3 })
	// Still reported on the next checks, for the hold.
	h.checkIngest(ctx)
	if err := h.health(); err == nil {
		t.Fatal("healthy again within the hold")
	}
	// Once the hold is over: healthy.
	s := h.streamWatch()
	s.mu.Lock()
	s.lossUntil = time.Now()
	s.mu.Unlock()
	h.checkIngest(ctx)
	if err := h.health(); err != nil {
		t.Fatalf("health after the hold: %v", err)
	}

	// Purged: every message gone at once, which no limit explains.
	st, err := h.js.Stream(ctx, metrics.StreamSamples)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, h.NATSURL(), sample(4), auth...)
	h.checkIngest(ctx)
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	h.checkIngest(ctx)
	if err := h.health(); err == nil || !strings.Contains(err.Error(), "purged") {
		t.Fatalf("health after a purge: %v, want the purge", err)
	}
}

func TestStreamLostWhileTheHubWasDownIsReported(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startHub(t, cfg)
	auth := as(t, "gpu01", enrol(t, h, "gpu01", enroll.Agent))
	publish(t, h.NATSURL(), &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: 1, TS: time.Now().UnixNano()}, auth...)
	performance(t, h, hasHost("gpu01"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.checkIngest(ctx)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// The samples stream's files are gone (or were found corrupt): the
	// server starts without it and the hub creates it empty.
	var dirs []string
	_ = filepath.WalkDir(filepath.Join(cfg.DataDir, "nats"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == metrics.StreamSamples {
			dirs = append(dirs, p)
		}
		return nil
	})
	if len(dirs) != 1 {
		t.Fatalf("samples stream directories %v", dirs)
	}
	if err := os.RemoveAll(dirs[0]); err != nil {
		t.Fatal(err)
	}

	log, logs := logtest.New(slog.LevelInfo)
	h2, err := Start(context.Background(), cfg, Plugs{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Close() })
	h2.checkIngest(ctx)
	code, body := healthz(t, h2)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, metrics.StreamSamples) || !strings.Contains(body, "1 messages") {
		t.Fatalf("/healthz %d %q, want 503 naming the samples lost while the hub was down", code, body)
	}
	if !strings.Contains(logs.String(), "stream lost its messages") {
		t.Fatalf("no ERROR in:\n%s", logs)
	}
	// The streams that were not lost are not reported.
	if strings.Contains(logs.String(), "stream="+metrics.StreamAlerts) {
		t.Fatalf("the alerts stream reported lost:\n%s", logs)
	}
}

func TestEmptyStreamRecreatedLosesNothing(t *testing.T) {
	t.Parallel()
	s := newStreams("", slog.New(slog.DiscardHandler))
	t0 := time.Now()
	info := func(created time.Time, first, last, msgs uint64) *jetstream.StreamInfo {
		return &jetstream.StreamInfo{
			Config:  jetstream.StreamConfig{Name: metrics.StreamSamples, MaxAge: time.Hour},
			Created: created,
			State:   jetstream.StreamState{FirstSeq: first, LastSeq: last, Msgs: msgs, FirstTime: t0, LastTime: t0},
		}
	}
	// Every message aged out, then the stream was recreated: the consumer
	// starts over, but nothing was lost.
	s.observe(metrics.StreamSamples, info(t0, 6, 5, 0), t0)
	if !s.observe(metrics.StreamSamples, info(t0.Add(time.Second), 0, 0, 0), t0) {
		t.Fatal("recreated stream not reported as new")
	}
	if err := s.lost(t0); err != nil {
		t.Fatalf("loss reported for an empty stream: %v", err)
	}
	// Messages appended and aged out by the stream's own limits: no loss.
	s.observe(metrics.StreamSamples, info(t0.Add(time.Second), 1, 3, 3), t0)
	if s.observe(metrics.StreamSamples, info(t0.Add(time.Second), 4, 3, 0), t0.Add(2*time.Hour)) {
		t.Fatal("aged out taken for recreated")
	}
	if err := s.lost(t0.Add(2 * time.Hour)); err != nil {
		t.Fatalf("loss reported for messages aged out: %v", err)
	}
	// The same, within the age limit: purged.
	s.observe(metrics.StreamSamples, info(t0.Add(time.Second), 4, 9, 6), t0)
	s.observe(metrics.StreamSamples, info(t0.Add(time.Second), 10, 9, 0), t0)
	if err := s.lost(t0); err == nil || !strings.Contains(err.Error(), "purged") || !strings.Contains(err.Error(), "6 messages") {
		t.Fatalf("purge reported as %v", err)
	}
	if err := s.lost(t0.Add(lossHold)); err != nil {
		t.Fatalf("loss still reported after the hold: %v", err)
	}
}

// watchedHub starts a hub whose log the test reads, with gpu01 enrolled
// (auth) and sample(seq) making gpu01's samples a millisecond apart.
// loggedHub starts a hub on cfg whose log, from INFO up, the test reads.
func loggedHub(t *testing.T, cfg Config, plugs Plugs) (*Hub, *logtest.Buffer) {
	t.Helper()
	log, logs := logtest.New(slog.LevelInfo)
	h, err := Start(context.Background(), cfg, plugs, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h, logs
}

func watchedHub(t *testing.T) (*Hub, *logtest.Buffer, []nats.Option, func(seq int) *metrics.Sample) {
	t.Helper()
	h, logs := loggedHub(t, testConfig(t), Plugs{})
	auth := as(t, "gpu01", enrol(t, h, "gpu01", enroll.Agent))
	base := time.Now()
	return h, logs, auth, func(seq int) *metrics.Sample {
		return &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: uint64(seq), TS: base.Add(time.Duration(seq) * time.Millisecond).UnixNano()}
	}
}

// A samples stream at its byte cap short of its retention is one WARN
// that names the flag and the bytes the retention needs; /metrics says
// how much time the stream holds. Under the cap nothing is said.
func TestStreamAtItsByteCapIsReported(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.StreamMaxBytes = 4 << 20
	h, logs := loggedHub(t, cfg, Plugs{})
	auth := as(t, "gpu01", enrol(t, h, "gpu01", enroll.Agent))
	publish(t, h.NATSURL(), &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: 1, TS: time.Now().UnixNano()}, auth...)
	performance(t, h, hasHost("gpu01"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := natsxtest.Connect(t, h.NATSURL(), auth...)
	// Messages the hub cannot decode are still stored: they fill the
	// stream as fast as samples would, a few a test's second.
	fill := func(n int) {
		t.Helper()
		for range n {
			if _, err := js.Publish(ctx, metrics.SampleSubject("gpu01"), make([]byte, 512<<10)); err != nil {
				t.Fatal(err)
			}
		}
	}
	const warning = "stream at its byte cap"
	fill(3)
	h.checkIngest(ctx)
	if strings.Contains(logs.String(), warning) {
		t.Fatalf("a stream under its cap reported as at it:\n%s", logs)
	}
	in := exportView{h}.Ingest()
	if in.Held == nil || *in.Held <= 0 || *in.Held > time.Minute {
		t.Fatalf("held %v, want the few moments between the first sample and the last", in.Held)
	}

	fill(10) // 5 MiB through a 4 MiB stream: the oldest go
	h.checkIngest(ctx)
	h.checkIngest(ctx)
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Fatalf("%d warnings, want one:\n%s", n, logs)
	}
	for _, want := range []string{"level=WARN", "stream=" + metrics.StreamSamples, "max_age=24h0m0s", "max_bytes=4194304", "bytes_for_max_age=", "--stream-max-bytes"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the warning does not say %q:\n%s", want, logs)
		}
	}
	if err := h.health(); err != nil {
		t.Errorf("a capped stream is not unhealthy: %v", err)
	}
}
