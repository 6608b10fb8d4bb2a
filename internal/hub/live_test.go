package hub

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// publishSeqs stores host's samples seq from..to in the stream, stamped
// base+seq ms, and waits for every ack.
func publishSeqs(t *testing.T, js jetstream.JetStream, host string, from, to int, base time.Time) {
	t.Helper()
	if err := storeSeqs(js, host, from, to, base); err != nil {
		t.Fatal(err)
	}
}

func storeSeqs(js jetstream.JetStream, host string, from, to int, base time.Time) error {
	var acks []jetstream.PubAckFuture
	for seq := from; seq <= to; seq++ {
		s := &metrics.Sample{Host: host, Boot: "b1", Seq: uint64(seq), TS: base.Add(time.Duration(seq) * time.Millisecond).UnixNano()}
		body, err := metrics.Encode(s)
		if err != nil {
			return err
		}
		ack, err := js.PublishAsync(metrics.SampleSubject(host), body, jetstream.WithMsgID(metrics.MsgID(s, "k")))
		if err != nil {
			return fmt.Errorf("%s seq %d: %w", host, seq, err)
		}
		acks = append(acks, ack)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: %d publishes unacked", host, js.PublishAsyncPending())
	}
	for i, a := range acks {
		select {
		case err := <-a.Err():
			return fmt.Errorf("%s seq %d: %w", host, from+i, err)
		default:
		}
	}
	return nil
}

// liveHub starts a hub that records what ingest gives the history, and
// enrols gpu01 to publish to it.
func liveHub(t *testing.T) (*Hub, *recorder, jetstream.JetStream) {
	t.Helper()
	rec := &recorder{}
	h := startHub(t, testConfig(t), Plugs{History: rec, Latency: rec})
	return h, rec, jsAs(t, h, "gpu01", enrol(t, h, "gpu01", enroll.Agent))
}

// onceEach checks that ingest accepted host's samples 1..n once each,
// dropped nothing, and gave each to the history once, once no read-back
// runs that could still hand one over again.
func onceEach(t *testing.T, h *Hub, rec *recorder, n int) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("%d samples, ingest settled", n), func() bool {
		return h.Stats().Samples >= uint64(n) && h.live.settled() && h.live.quiet()
	})
	if st := h.Stats(); st.Samples != uint64(n) || len(st.Dropped) != 0 {
		t.Fatalf("samples %d, dropped %v; want %d, none (live %+v)", st.Samples, st.Dropped, n, h.LiveStats())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := map[uint64]int{}
	for _, seq := range rec.added {
		got[seq]++
	}
	for seq := uint64(1); seq <= uint64(n); seq++ {
		if got[seq] != 1 {
			t.Fatalf("sample %d given to the history %d times (live %+v)", seq, got[seq], h.LiveStats())
		}
	}
	if len(rec.added) != n {
		t.Fatalf("history given %d samples, want %d", len(rec.added), n)
	}
}

// TestLiveSamplesArriveOnce: samples published while the hub runs come
// on its subscription, each once, with nothing read back.
func TestLiveSamplesArriveOnce(t *testing.T) {
	t.Parallel()
	h, rec, js := liveHub(t)
	publishSeqs(t, js, "gpu01", 1, 200, time.Now().Add(-time.Minute))
	onceEach(t, h, rec, 200)
	if ls := h.LiveStats(); ls.Gaps != 0 || ls.Dropped != 0 {
		t.Fatalf("live %+v: a gap without a cause", ls)
	}
}

// TestLiveStreamRefusedCopyIsADuplicate: an agent's publish retried with
// the same Nats-Msg-Id is stored once, but both copies reach the
// subscription: ingest accepts the first and drops the second as a
// duplicate.
func TestLiveStreamRefusedCopyIsADuplicate(t *testing.T) {
	t.Parallel()
	h, rec, js := liveHub(t)
	s := &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: 1, TS: time.Now().UnixNano()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, dup := range []bool{false, true} {
		ack, err := js.Publish(ctx, metrics.SampleSubject("gpu01"), encode(t, s), jetstream.WithMsgID(metrics.MsgID(s, "k")))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != dup {
			t.Fatalf("publish %d: stream duplicate %v, want %v", i, ack.Duplicate, dup)
		}
	}
	poll.Until(t, "the copy dropped", func() bool { return h.Stats().Dropped[DropDuplicate] == 1 })
	if st, n := h.Stats(), rec.addedLen(); st.Samples != 1 || n != 1 {
		t.Fatalf("samples %d, history %d; want 1 each", st.Samples, n)
	}
}

// TestLiveDropsAreReadBack: messages the subscription drops (a hub too
// slow for its pending limits) are read back from the stream, each once.
func TestLiveDropsAreReadBack(t *testing.T) {
	t.Parallel()
	h, rec, js := liveHub(t)
	publishSeqs(t, js, "gpu01", 1, 10, time.Now().Add(-time.Minute))
	poll.Until(t, "10 samples live", func() bool { return h.Stats().Samples == 10 })

	if err := h.live.sub.SetPendingLimits(2, -1); err != nil {
		t.Fatal(err)
	}
	// The handler stalls on the record of copies while 40 samples come:
	// the subscription keeps 2 and drops the rest.
	h.live.mu.Lock()
	publishSeqs(t, js, "gpu01", 11, 50, time.Now().Add(-time.Minute))
	poll.Until(t, "the subscription to drop", func() bool {
		n, _ := h.live.sub.Dropped()
		return n > 0
	})
	h.live.mu.Unlock()
	onceEach(t, h, rec, 50)
	if ls := h.LiveStats(); ls.Gaps == 0 || ls.Dropped == 0 {
		t.Fatalf("live %+v: the drop not found", ls)
	}
}

// TestLiveReplayHandOver: samples published while a restarted hub replays
// the stream are neither lost nor handled twice.
func TestLiveReplayHandOver(t *testing.T) {
	t.Parallel()
	ext, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Open: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Shutdown)
	js := natsxtest.Connect(t, ext.ClientURL())
	ctx := context.Background()
	if _, err := natsx.EnsureSamplesStream(ctx, js, natsx.SamplesStream{}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-10 * time.Minute)
	publishSeqs(t, js, "r1", 1, 2000, base)

	// An agent publishes on while the hub starts and after.
	var next atomic.Int64
	next.Store(2001)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			seq := int(next.Load())
			if err := storeSeqs(js, "r1", seq, seq+9, base); err != nil {
				t.Error(err)
				return
			}
			next.Add(10)
		}
	})
	cfg := testConfig(t)
	cfg.NATSURL, cfg.DataDir = ext.ClientURL(), ""
	cfg.HTTPTokenFile, _ = tokenFile(t)
	rec := &recorder{}
	h := startHub(t, cfg, Plugs{History: rec, Latency: rec})
	// On until the hand-over's read goes past what came live.
	at := next.Load()
	poll.Until(t, "samples published after the start", func() bool { return next.Load() > at+200 })
	close(stop)
	wg.Wait()
	onceEach(t, h, rec, int(next.Load())-1)
	t.Logf("live %+v", h.LiveStats())
}

// TestLiveReadsBackAfterAServerRestart: what the stream stored while the
// hub reconnected to its restarted NATS is read back, and nothing the
// hub had is handled again.
func TestLiveReadsBackAfterAServerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	ext, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: dir, Open: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	url := ext.ClientURL()
	var ext2 *natsd.Server
	t.Cleanup(func() {
		if ext2 != nil {
			ext2.Shutdown()
		}
	})
	cfg := testConfig(t)
	cfg.NATSURL, cfg.DataDir = url, ""
	cfg.HTTPTokenFile, _ = tokenFile(t)
	rec := &recorder{}
	h := startHub(t, cfg, Plugs{History: rec, Latency: rec})
	base := time.Now().Add(-time.Minute)
	publishSeqs(t, natsxtest.Connect(t, url), "r1", 1, 10, base)
	poll.Until(t, "10 samples live", func() bool { return h.Stats().Samples == 10 })

	ext.Shutdown()
	if ext2, err = natsd.Start(natsd.Config{Listen: strings.TrimPrefix(url, "nats://"), StoreDir: dir, Open: true}, log); err != nil {
		t.Fatal(err)
	}
	// Published at once: the hub, reconnecting with back-off, is
	// likely not there yet.
	publishSeqs(t, natsxtest.Connect(t, url), "r1", 11, 60, base)
	poll.Until(t, "the reconnect read back", func() bool { return h.LiveStats().Gaps >= 1 })
	onceEach(t, h, rec, 60)
}

// TestLiveTwoHubsOnAClusterGetEverySample: two hubs on one cluster each
// receive every sample.
func TestLiveTwoHubsOnAClusterGetEverySample(t *testing.T) {
	urls, _ := startCluster(t, 3)
	url := strings.Join(urls, ",")
	var hubs []*Hub
	var recs []*recorder
	for _, name := range []string{"hub-a", "hub-b"} {
		cfg := testConfig(t)
		cfg.NATSURL, cfg.Replicas, cfg.Consumer = url, 3, name
		rec := &recorder{}
		hubs, recs = append(hubs, startHub(t, cfg, Plugs{History: rec, Latency: rec})), append(recs, rec)
	}
	publishSeqs(t, natsxtest.Connect(t, url), "c1", 1, 50, time.Now().Add(-time.Minute))
	for i, h := range hubs {
		onceEach(t, h, recs[i], 50)
	}
}

// TestLiveDeletesTheLegacyConsumer: the durable consumer earlier hubs
// read the samples through is deleted at start.
func TestLiveDeletesTheLegacyConsumer(t *testing.T) {
	t.Parallel()
	ext, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Open: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Shutdown)
	js := natsxtest.Connect(t, ext.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := natsx.EnsureSamplesStream(ctx, js, natsx.SamplesStream{}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.NATSURL, cfg.DataDir = ext.ClientURL(), ""
	cfg.HTTPTokenFile, _ = tokenFile(t)
	if _, err := js.CreateConsumer(ctx, metrics.StreamSamples, jetstream.ConsumerConfig{Durable: cfg.Consumer, AckPolicy: jetstream.AckNonePolicy}); err != nil {
		t.Fatal(err)
	}
	startHub(t, cfg)
	if _, err := js.Consumer(ctx, metrics.StreamSamples, cfg.Consumer); err == nil {
		t.Fatal("the legacy consumer is still there")
	}
}

// TestTwiceHandlesEachCopyOnce: each copy of a message is handled by the
// path that sees it first, whichever comes first and however many.
func TestTwiceHandlesEachCopyOnce(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tw := twice{n: map[uint64]copies{}}
	type step struct {
		stored bool
		want   bool
	}
	for name, steps := range map[string][]step{
		"live first":              {{false, true}, {true, false}},
		"stored first":            {{true, true}, {false, false}},
		"refused copy seen live":  {{false, true}, {false, true}, {true, false}},
		"stored twice, live once": {{true, true}, {false, false}, {true, true}},
		"published twice":         {{false, true}, {true, false}, {false, true}, {true, false}},
	} {
		h := uint64(len(tw.n) + 1)
		for i, s := range steps {
			if got := tw.take(h, s.stored, true, now); got != s.want {
				t.Errorf("%s: step %d handled %v, want %v", name, i, got, s.want)
			}
		}
	}
	// A stored copy with no entry and none to make is new.
	if !tw.take(99, true, false, now) || tw.n[99] != (copies{}) {
		t.Fatal("an old stored copy was not handled, or recorded")
	}
	tw.expire(now.Add(time.Nanosecond))
	if len(tw.n) != 0 || len(tw.order) != 0 {
		t.Fatalf("%d entries, %d stamps left after expiry", len(tw.n), len(tw.order))
	}
}

// TestTwiceShrinksAfterAFlood: once a flood's entries expire, the record
// moves what is left to a new map and order, which still match copies.
func TestTwiceShrinksAfterAFlood(t *testing.T) {
	t.Parallel()
	tw := twice{n: map[uint64]copies{}}
	old, recent := time.Unix(100, 0), time.Unix(200, 0)
	const flood, left = 8 * shrinkAbove, 100
	for h := range uint64(flood) {
		tw.take(h+left, false, true, old)
	}
	// The recent ones last, as time orders them.
	for h := range uint64(left) {
		tw.take(h, false, true, recent)
	}
	if tw.peak != flood+left {
		t.Fatalf("peak %d, want %d", tw.peak, flood+left)
	}
	tw.expire(recent)
	if len(tw.n) != left || len(tw.order) != left {
		t.Fatalf("%d entries, %d stamps left, want %d", len(tw.n), len(tw.order), left)
	}
	if tw.peak != left || cap(tw.order) > 4*left {
		t.Fatalf("not moved: peak %d, order's room %d for %d entries", tw.peak, cap(tw.order), left)
	}
	for h := range uint64(left) {
		if tw.take(h, true, true, recent) {
			t.Fatalf("stored copy of live message %d handled again after the move", h)
		}
	}
	if !tw.take(left, true, true, recent) {
		t.Fatal("an expired message's stored copy was not handled")
	}
}

// TestTwiceForgetsMatchedPairs: a read-back that runs through a flood
// matches the live copies it reaches; the record keeps only those it has
// not, so it stays small however long the read-back runs.
func TestTwiceForgetsMatchedPairs(t *testing.T) {
	t.Parallel()
	tw := twice{n: map[uint64]copies{}}
	now := time.Unix(100, 0)
	const flood, behind = 8 * shrinkAbove, 1000
	for h := range uint64(flood) {
		if !tw.take(h, false, true, now) {
			t.Fatalf("live copy %d not handled", h)
		}
		// The read-back trails the live copies by behind messages.
		if h >= behind && tw.take(h-behind, true, true, now) {
			t.Fatalf("stored copy %d handled after its live one", h-behind)
		}
	}
	if len(tw.n) != behind || len(tw.order) > 2*behind+shrinkAbove {
		t.Fatalf("%d entries and %d stamps for the %d live copies not read back yet", len(tw.n), len(tw.order), behind)
	}
	// A matched pair is as good as none: the next copy, either way, is new.
	if !tw.take(0, true, true, now) || !tw.take(1, false, true, now) {
		t.Fatal("a copy after a matched pair was not handled")
	}
	// A copy not read back yet still matches.
	if tw.take(flood-1, true, true, now) {
		t.Fatal("the stored copy of a live message not read back yet was handled")
	}
}

// TestLiveReadBackOutlastsAStall: a read-back whose consumer stops
// delivering while the stream still holds messages for it (here paused
// by the server; in a fill, the client dropping the tail of a pull when
// its queue overflowed) reopens after the last message it handled,
// rather than taking the silence for messages aged out.
func TestLiveReadBackOutlastsAStall(t *testing.T) {
	t.Parallel()
	h, rec, js := liveHub(t)
	publishSeqs(t, js, "gpu01", 1, 10, time.Now().Add(-time.Minute))
	poll.Until(t, "10 samples live", func() bool { return h.Stats().Samples == 10 && h.live.quiet() })
	h.live.readMu.Lock()
	h.live.wait = 300 * time.Millisecond
	h.live.readMu.Unlock()

	if err := h.live.sub.SetPendingLimits(2, -1); err != nil {
		t.Fatal(err)
	}
	// The live handler stalls on the record of copies while 3,062
	// samples come, and drops all but 2; the read-back of them stalls on
	// it too, at its first message, so its consumer has handed it one
	// batch (fetchMessages) when the server pauses it.
	h.live.mu.Lock()
	const n = 3 * fetchMessages
	publishSeqs(t, js, "gpu01", 11, n, time.Now().Add(-time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.live.js.Stream(ctx, metrics.StreamSamples)
	if err != nil {
		t.Fatal(err)
	}
	var reading string
	poll.Until(t, "a read-back's consumer", func() bool {
		names := st.ConsumerNames(ctx)
		for name := range names.Name() {
			reading = name
		}
		return reading != ""
	})
	if _, err := st.PauseConsumer(ctx, reading, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	h.live.mu.Unlock()
	onceEach(t, h, rec, n)
	if ls := h.LiveStats(); ls.Stalls == 0 {
		t.Fatalf("live %+v: the read-back never stalled", ls)
	}
}

// A read-back that begins after its start, the stream's byte cap having
// removed what it was to read first, says so: one WARN with the span lost
// and the flag to raise, and a count in /metrics. One that begins within
// what the stream holds says nothing.
func TestReadBackPastTheCapSaysWhatIsLost(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.StreamMaxBytes = 2 << 20
	rec := &recorder{}
	h, logs := loggedHub(t, cfg, Plugs{History: rec, Latency: rec})
	js := jsAs(t, h, "gpu01", enrol(t, h, "gpu01", enroll.Agent))
	from := time.Now()
	publishSeqs(t, js, "gpu01", 1, 10, from)
	poll.Until(t, "10 samples live", func() bool { return h.Stats().Samples == 10 && h.live.quiet() })

	// 4 MiB through the 2 MiB stream: the samples and the oldest of what
	// follows them go. (The hub cannot decode these; the stream stores
	// them all the same.)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 16 {
		if _, err := js.Publish(ctx, metrics.SampleSubject("gpu01"), make([]byte, 256<<10)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := h.js.Stream(ctx, metrics.StreamSamples)
	if err != nil {
		t.Fatal(err)
	}
	oldest := st.CachedInfo().State.FirstTime
	if !oldest.After(from) {
		t.Fatalf("the stream still holds what was stored at %v (oldest %v)", from, oldest)
	}
	caught := func() time.Time { return time.Now() }
	if _, err := h.live.read(ctx, oldest, nil, caught); err != nil {
		t.Fatal(err)
	}
	const warning = "no longer holds the start of a read-back"
	if strings.Contains(logs.String(), warning) || h.LiveStats().Short != 0 {
		t.Fatalf("a read-back within what the stream holds reported as short (live %+v):\n%s", h.LiveStats(), logs)
	}
	if _, err := h.live.read(ctx, from, nil, caught); err != nil {
		t.Fatal(err)
	}
	if ls := h.LiveStats(); ls.Short != 1 {
		t.Fatalf("live %+v, want one short read-back", ls)
	}
	for _, want := range []string{"level=WARN", warning, "lost_span=", "max_bytes=2097152", "raise=--stream-max-bytes"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the warning does not say %q:\n%s", want, logs)
		}
	}
	if in := (exportView{h}).Ingest(); in.Short != 1 {
		t.Errorf("/metrics counts %d short read-backs, want 1", in.Short)
	}
}
