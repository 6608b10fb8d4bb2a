package history

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
	"github.com/vmihailenco/msgpack/v5"
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
	st1, p1 := openPersist(ctx, t, js, PersistConfig{SealEvery: 20 * time.Millisecond})
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

	st2, p2 := openPersist(ctx, t, js, PersistConfig{})
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

// minuteFleet is 70 minutes of samples up to now of two hosts: "plain"
// (no model figures) and "gpu-1" (with them), in the stream's order.
func minuteFleet(now time.Time) []*metrics.Sample { return fleetFor(now, 70*time.Minute) }

// fleetFor is minuteFleet's two hosts over d up to now.
func fleetFor(now time.Time, d time.Duration) []*metrics.Sample {
	start := now.Add(-d).Truncate(5 * time.Second)
	var out []*metrics.Sample
	for i := 0; ; i++ {
		ts := start.Add(time.Duration(i) * 5 * time.Second)
		if ts.After(now) {
			return out
		}
		plain := sample("plain", uint64(i+1), ts.Add(time.Second), cpuAt(i)+3, 2)
		plain.Models = nil
		out = append(out, sample("gpu-1", uint64(i+1), ts, cpuAt(i), 2), plain)
	}
}

// replayInto replays samples into p as the hub's ingest does from
// ReplayStart: a sample Covered by a restored minute is not added. It
// returns how many were skipped per host.
func replayInto(p *Persist, samples []*metrics.Sample, now time.Time) map[string]int {
	skipped := map[string]int{}
	from := p.ReplayStart(now)
	for _, s := range samples {
		switch {
		case time.Unix(0, s.TS).Before(from):
		case p.Covered(s.Host, s.Boot, s.Seq, now):
			skipped[s.Host]++
		default:
			add(p, s)
		}
	}
	return skipped
}

// TestMinutesRestart: a hub stopped cleanly publishes every minute of
// its 60m windows; the next one restores them from a real JetStream,
// skips (Covered) the samples they hold that only the 60m window needs,
// replays the rest, and every window — 5m, 15m and 60m included — equals
// the first hub's.
func TestMinutesRestart(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	samples := minuteFleet(now)

	st1, p1 := openPersist(ctx, t, js, PersistConfig{SealEvery: 20 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p1.Run(runCtx); close(done) }()
	for _, s := range samples {
		add(p1, s)
	}
	stop()
	<-done
	if p1.Failed() != 0 {
		t.Fatalf("%d publishes failed", p1.Failed())
	}

	st2, p2 := openPersist(ctx, t, js, PersistConfig{})
	skipped := replayInto(p2, samples, now)
	// The plain host's minutes older than the 15m window (about 40 of
	// them, 12 samples each) are skipped; the other's never: the latency
	// tracker reads its model figures from the samples.
	if skipped["plain"] < 40*12 || skipped["gpu-1"] != 0 {
		t.Fatalf("skipped %v samples, want ≥ %d of plain and none of gpu-1", skipped, 40*12)
	}
	sameWindows(t, "restart from minutes", st1, st2, now)

	// The same samples delivered again change nothing.
	replayInto(p2, samples, now)
	sameWindows(t, "a second replay", st1, st2, now)
}

// TestMinutesCrash: a hub that dies between two flushes left its newest
// minutes unpublished or partly published; the next one restores what
// was published and counts every other sample from the replay, once.
func TestMinutesCrash(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	samples := minuteFleet(now)

	st1, p1 := openPersist(ctx, t, js, PersistConfig{})
	// A flush 3 minutes before the end, with the newest minute partly
	// filled, then one more sample of each host, then the crash.
	cut := now.Add(-3 * time.Minute)
	i := 0
	for ; i < len(samples) && !time.Unix(0, samples[i].TS).After(cut); i++ {
		add(p1, samples[i])
	}
	p1.flush(ctx, cut, true)
	add(p1, samples[i])
	add(p1, samples[i+1])
	p1.flush(ctx, cut.Add(time.Second), false) // the filling minute is not published
	for _, s := range samples[i+2:] {
		add(p1, s)
	}

	st2, p2 := openPersist(ctx, t, js, PersistConfig{})
	if skipped := replayInto(p2, samples, now); skipped["plain"] == 0 {
		t.Fatal("no sample skipped: the minutes were not restored")
	}
	sameWindows(t, "restart after a crash", st1, st2, now)
}

// TestLongSlotsCrash: long slots are published once every RollupEvery,
// not each minute; a hub that dies in the middle of a period folded
// minutes into them that it never published, and the next one gets them
// back from the minutes and samples it restores and replays: every
// window equals the first hub's.
func TestLongSlotsCrash(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The crash when four minutes have been folded since the last
	// publish (the minutes to fold reached a new period at a minute
	// before the wall clock's period), so that they are in no published
	// slot.
	const every = 6 * time.Minute
	period := time.Now().UnixNano()/int64(every) - 1
	now := time.Unix(0, period*int64(every)).Add(3*time.Minute + 20*time.Second)
	samples := fleetFor(now, 100*time.Minute)

	st1, p1 := openPersist(ctx, t, js, PersistConfig{RollupEvery: every})
	// Flushed every 15 s of the samples' time, as Run would, and never
	// when stopping.
	next := time.Unix(0, samples[0].TS).Truncate(15 * time.Second).Add(15 * time.Second)
	for _, s := range samples {
		if ts := time.Unix(0, s.TS); !ts.Before(next) {
			p1.flush(ctx, next, false)
			next = next.Add(15 * time.Second)
		}
		add(p1, s)
	}
	p1.flush(ctx, now, false)
	if p1.Failed() != 0 {
		t.Fatalf("%d publishes failed", p1.Failed())
	}
	// 40 minutes folded, each changing a slot of the three long windows
	// of both hosts: 240 versions published a minute at a time, at most
	// 6 for each of the 8 periods begun since the first fold.
	stream, err := js.(interface {
		Stream(context.Context, string) (jetstream.Stream, error)
	}).Stream(ctx, StreamRollups)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.LastSeq; n == 0 || n > 8*6 {
		t.Fatalf("%d long slots published, want 1 to %d", n, 8*6)
	}
	t.Logf("%d long slots published", info.State.LastSeq)
	// The first hub folded minutes it did not publish: its hosts' newest
	// published slots are older than its newest folded minute.
	if folded := p1.hosts["plain"].sealedUntil; folded <= time.Unix(0, period*int64(every)).Add(-time.Hour).UnixNano() {
		t.Fatalf("newest folded minute %s: nothing folded since the period began", time.Unix(0, folded))
	}

	st2, p2 := openPersist(ctx, t, js, PersistConfig{RollupEvery: every})
	if skipped := replayInto(p2, samples, now); skipped["plain"] == 0 {
		t.Fatal("no sample skipped: the minutes were not restored")
	}
	st1.FoldDue(now)
	st2.FoldDue(now)
	sameWindows(t, "restart after a crash between two publishes of the long slots", st1, st2, now)
}

// TestMinutesRetriedAfterRefusal: the minutes of a batch the server did
// not store (their stream gone) are counted as failed and published again
// by the next flush, which restores them after a restart; the others of
// the batch are not marked again.
func TestMinutesRetriedAfterRefusal(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	samples := minuteFleet(now)

	st1, p1 := openPersist(ctx, t, js, PersistConfig{})
	for _, s := range samples {
		add(p1, s)
	}
	if err := js.DeleteStream(ctx, StreamMinutes); err != nil {
		t.Fatal(err)
	}
	p1.flush(ctx, now, true)
	failed := p1.Failed()
	if failed == 0 {
		t.Fatal("no publish failed with the minutes stream gone")
	}
	if err := p1.ensureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	p1.flush(ctx, now, true)
	if p1.Failed() != failed {
		t.Fatalf("%d more publishes failed with the stream back", p1.Failed()-failed)
	}
	if again := p1.minutes(now, true, minuteBatch); len(again) != 0 {
		t.Fatalf("%d minutes still to publish after a flush that stored them", len(again))
	}

	st2, p2 := openPersist(ctx, t, js, PersistConfig{})
	if skipped := replayInto(p2, samples, now); skipped["plain"] == 0 {
		t.Fatal("no sample skipped: the minutes published again were not restored")
	}
	sameWindows(t, "restart after refused minutes", st1, st2, now)
}

// TestMinutesOlderData: data an older hub left (rollups and readings, no
// minutes) still restores, the samples replayed in full.
func TestMinutesOlderData(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	samples := minuteFleet(now)

	st1, p1 := openPersist(ctx, t, js, PersistConfig{})
	for _, s := range samples {
		add(p1, s)
	}
	p1.flush(ctx, now, true)
	if err := js.DeleteStream(ctx, StreamMinutes); err != nil {
		t.Fatal(err)
	}

	st2, p2 := openPersist(ctx, t, js, PersistConfig{})
	if skipped := replayInto(p2, samples, now); len(skipped) != 0 {
		t.Fatalf("skipped %v with no minutes to restore", skipped)
	}
	sameWindows(t, "restart from an older hub's data", st1, st2, now)
}

// TestRollupDecode: the reflection-free decoder reads what msgpack.Marshal
// writes, skips a newer hub's fields and refuses a column too long.
func TestRollupDecode(t *testing.T) {
	want := Rollup{V: 1, Host: "gpu-1", Res: 60, Start: 120e9, Sealed: 60e9, Names: []string{"cpu", "gpu.0.util"},
		Sum: []float64{1.5, 2}, Max: []float64{1, 2}, N: []uint32{3, 4}, IDs: []uint64{7, 1 << 63}, Models: true}
	b, err := msgpack.Marshal(&want)
	if err != nil {
		t.Fatal(err)
	}
	var got Rollup
	if err := msgpack.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	// A newer hub's field, before the known ones.
	b, err = msgpack.Marshal(map[string]any{"x": map[string][]int{"a": {1, 2}}, "h": "gpu-2", "r": 360, "k": []string{"cpu"}})
	if err != nil {
		t.Fatal(err)
	}
	got = Rollup{}
	if err := msgpack.Unmarshal(b, &got); err != nil || got.Host != "gpu-2" || got.Res != 360 || len(got.Names) != 1 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	long := Rollup{Names: make([]string, maxRollupLen+1)}
	if b, err = msgpack.Marshal(&long); err != nil {
		t.Fatal(err)
	}
	if err := msgpack.Unmarshal(b, &got); err == nil {
		t.Fatal("a column past maxRollupLen was read")
	}
}

// openPersist opens a fresh store's persistence on js, as a hub starting
// on that JetStream does.
func openPersist(ctx context.Context, t *testing.T, js JetStream, cfg PersistConfig) (*Store, *Persist) {
	t.Helper()
	st := New()
	p, err := Open(ctx, js, st, cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return st, p
}

// TestMinutesRestartRounded is TestMinutesRestart with figures a half
// does not hold exactly: the restored windows must still equal the
// first hub's, value for value, as a tier's newest frame is float32 in
// both and every other frame rounded the same way.
func TestMinutesRestartRounded(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	samples := minuteFleet(now)
	for i, s := range samples {
		*s.System.CPUPercent += 0.0123457 * float64(i%7)
		*s.System.Load1 = 1.0 / float64(3+i%11)
	}

	st1, p1 := openPersist(ctx, t, js, PersistConfig{SealEvery: 20 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p1.Run(runCtx); close(done) }()
	for _, s := range samples {
		add(p1, s)
	}
	stop()
	<-done
	st2, p2 := openPersist(ctx, t, js, PersistConfig{})
	replayInto(p2, samples, now)
	sameWindows(t, "restart from minutes", st1, st2, now)
}

// TestRingSubjects runs a host's history for eight hours against a real
// JetStream, publishing as a hub does while time passes: the rollups
// must be on one subject per place of each window's ring, not one per
// slot ever sealed (the server indexes every subject; a week of 2,000
// hosts' slots was 4.3 million of them), and a restart on them must put
// every window back as it was.
func TestRingSubjects(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now()
	start := now.Add(-8 * time.Hour).Truncate(5 * time.Second)
	st1, p1 := openPersist(ctx, t, js, PersistConfig{})
	var samples []*metrics.Sample
	// Half an hour at a time, flushed at its end, as a running hub's
	// flushes see the minutes complete and the long slots sealed.
	for i := 0; ; i++ {
		ts := start.Add(time.Duration(i) * 5 * time.Second)
		if ts.After(now) {
			break
		}
		s := sample("gpu-1", uint64(i+1), ts, cpuAt(i), 2)
		add(p1, s)
		samples = append(samples, s)
		if i%360 == 359 {
			p1.flush(ctx, ts.Add(5*time.Second), false)
		}
	}
	p1.flush(ctx, now, true)
	if p1.Failed() != 0 {
		t.Fatalf("%d publishes failed", p1.Failed())
	}

	subjects := func(stream, filter string) int {
		t.Helper()
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		return len(info.State.Subjects)
	}
	// Eight hours sealed 71 six-minute slots; the 6h window's ring has 60
	// places. The minutes are all on the host's one subject.
	if n := subjects(StreamRollups, "sysperf.v1.rollup.360.gpu-1.*"); n != ringSize {
		t.Errorf("the 6h window's rollups are on %d subjects, want %d (one per place)", n, ringSize)
	}
	if n := subjects(StreamMinutes, SubjectMinutes); n != 1 {
		t.Errorf("the minutes of one host are on %d subjects, want 1", n)
	}

	st2, p2 := openPersist(ctx, t, js, PersistConfig{})
	from := p2.ReplayStart(now)
	for _, s := range samples {
		if !time.Unix(0, s.TS).Before(from) {
			add(p2, s)
		}
	}
	sameWindows(t, "ring subjects", st1, st2, now)
}

// TestMinutesOneSubject: a hub opening the minutes stream an older hub
// made (one message per subject, a subject per minute) lifts the limit;
// the older hub's minutes, and later versions of the same minutes
// published on the host's one subject, restore to the first hub's
// windows: the stream's order decides which version counts.
func TestMinutesOneSubject(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamMinutes, Subjects: []string{SubjectMinutes}, Storage: jetstream.FileStorage,
		MaxAge: MinutesMaxAge, MaxMsgsPerSubject: 1,
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	samples := minuteFleet(now)
	st1, p1 := openPersist(ctx, t, js, PersistConfig{})
	stream, err := js.Stream(ctx, StreamMinutes)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.Config.MaxMsgsPerSubject; n != -1 {
		t.Fatalf("minutes stream keeps %d messages per subject after Open, want no limit (-1)", n)
	}

	// Up to the cut, every minute as an older hub named it, the filling
	// one included, part-filled; then the rest, the filling minute's
	// later version on the host's subject.
	cut := now.Add(-10*time.Minute - 30*time.Second)
	i := 0
	for ; i < len(samples) && !time.Unix(0, samples[i].TS).After(cut); i++ {
		add(p1, samples[i])
	}
	old := p1.minutes(cut, true, 0)
	if len(old) == 0 {
		t.Fatal("no minutes to publish at the cut")
	}
	for _, r := range old {
		b, err := msgpack.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, minutePrefix+r.Host+"."+strconv.FormatInt(r.Start/int64(time.Second), 10), b); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range samples[i:] {
		add(p1, s)
	}
	p1.flush(ctx, now, true)
	if p1.Failed() != 0 {
		t.Fatalf("%d publishes failed", p1.Failed())
	}
	info, err = stream.Info(ctx, jetstream.WithSubjectFilter(minutePrefix+"gpu-1"))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[minutePrefix+"gpu-1"]; n < 11 {
		t.Fatalf("gpu-1's subject holds %d minutes, want the 11 since the cut", n)
	}

	st2, p2 := openPersist(ctx, t, js, PersistConfig{})
	if skipped := replayInto(p2, samples, now); skipped["plain"] == 0 {
		t.Fatal("no sample skipped: the minutes were not restored")
	}
	sameWindows(t, "restart from both namings", st1, st2, now)
}
