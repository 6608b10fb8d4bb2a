package history

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/dropq"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/pkg/metrics"
	"github.com/vmihailenco/msgpack/v5"
)

// Streams and subjects of the hub's own persisted state.
//
// Rollups: one message per long slot, on
// sysperf.v1.rollup.<res_s>.<host>.<place>, in a stream that keeps one
// message per subject (a later version of a slot replaces the earlier one,
// like a KV bucket) for Retention. <place> is the slot's place in its
// window's ring (0-59, as Store.idx): the slot that takes a place 60 slots
// later replaces the one it pushes out of the window. The hub's own
// readings use "_hub" as host. Named by the slot's start instead (as
// hubs before this one did), the stream gained a subject per slot sealed:
// 4.3 million a week into a 2,000-host hub's life, and the server keeps
// ~200 bytes of index per subject (measured at 800,000), some 0.8 GB of
// the hub's memory that only grew. Restore reads a slot's start from the
// message, so both namings restore. A slot is published as it changes,
// at most once every RollupEvery.
//
// Minutes: each host's 1-minute slots of the 60m window, with the ids of
// their samples, one message per version of a slot, all of a host's on
// sysperf.v1.minute.<host>, kept MinutesMaxAge: a restarted hub puts its
// 60m windows back from them (a later version of a minute replacing the
// earlier, as the stream delivers them in order) and skips decoding the
// samples they hold (Store.Covered). An older hub neither writes nor
// reads them, and replays every sample as before. One subject a host and
// no limit per subject, because the server pays for both other ways: a
// subject per minute (as hubs before this one named them, still read)
// was 120,000 subjects of server index an hour into a 2,000-host hub's
// life and twice that two hours in, and a limit of one message per
// subject made every republished minute (a backlog or a fill republishes
// most of them) remove the earlier version from inside the stream,
// loading its block: 570 MB of block buffers alive at once while the
// load tool filled an hour of 2,000 hosts. Only MinutesMaxAge removes
// minutes, from the stream's oldest block.
//
// Hub readings: the figures Record placed (inference, databases,
// containers), one message per update on sysperf.v1.hub.readings, kept for
// ReadingsMaxAge and replayed on start like the samples, so those charts
// survive a restart too.
const (
	StreamRollups  = "SYSPERF_ROLLUPS"
	SubjectRollups = "sysperf.v1.rollup.>"
	StreamHub      = "SYSPERF_HUB"
	SubjectHub     = "sysperf.v1.hub.>"
	SubjectReading = "sysperf.v1.hub.readings"
	StreamMinutes  = "SYSPERF_MINUTES"
	SubjectMinutes = "sysperf.v1.minute.>"
	// MinutesMaxAge keeps a minute for an hour after its last change, and
	// as long again for a hub that is down.
	MinutesMaxAge = 2 * time.Hour

	rollupPrefix = "sysperf.v1.rollup."
	minutePrefix = "sysperf.v1.minute."
	hubHostToken = "_hub"
)

// JetStream is the part of jetstream.JetStream the history uses.
type JetStream interface {
	CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
	OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error)
	Publish(ctx context.Context, subject string, payload []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	PublishAsync(subject string, payload []byte, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// PersistConfig configures Persist.
type PersistConfig struct {
	// Retention is how long rollups are kept; default (and at least) 7d
	// plus one 7d slot, so the 7d window is full.
	Retention time.Duration
	// ReadingsMaxAge is how long hub readings are kept; default 24h.
	ReadingsMaxAge time.Duration
	// SealEvery is how often complete minutes are published and the
	// minutes leaving the 60m window folded; default 15s.
	SealEvery time.Duration
	// RollupEvery is how often the long slots changed since are
	// published: at the first flush once the minutes due to be folded
	// reach a new period of it (and when the hub stops); default 6m, so
	// a 6h slot is published once, just after its last minute is folded.
	// Each minute folded changes a slot of each long window of
	// every host, and every version published removed the one before
	// from inside its stream (one message per subject), loading its
	// block: published each minute, a 2,000-host hub wrote 6,000 rollups
	// a minute and kept 20 MB of the server's block buffers alive doing
	// so. What a hub that dies between two periods folded but did not
	// publish is in its minutes (kept MinutesMaxAge) and its samples, both
	// read back on start from the newest minute its published slots hold.
	RollupEvery time.Duration
	// Queue bounds the hub readings waiting to be published; default 256.
	// When full the oldest is dropped and counted, never blocking Record.
	Queue int
	// Replicas for a clustered external NATS; default 1.
	Replicas int
	// Timeout bounds each publish and stream call; default 5s.
	Timeout time.Duration
}

func (c PersistConfig) withDefaults() PersistConfig {
	minRet := MaxRange + 168*time.Minute
	if c.Retention < minRet {
		c.Retention = minRet
	}
	if c.ReadingsMaxAge <= 0 {
		c.ReadingsMaxAge = 24 * time.Hour
	}
	if c.SealEvery <= 0 {
		c.SealEvery = 15 * time.Second
	}
	if c.RollupEvery <= 0 {
		c.RollupEvery = 6 * time.Minute
	}
	if c.Queue <= 0 {
		c.Queue = 256
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}

// Persist is a Store whose long windows and hub readings live in
// JetStream. It implements hub.History.
type Persist struct {
	*Store
	js  JetStream
	cfg PersistConfig
	log *slog.Logger

	queue  *dropq.Queue[*Reading]
	wake   chan struct{}
	failed atomic.Uint64
	// rolled is the RollupEvery period of the last long slots published
	// (flush's alone).
	rolled int64
}

// Open creates the streams, puts the persisted rollups and the hub
// readings since store.ReplayStart back into store, and returns the
// persisting history. Call Run to publish; the samples themselves are
// replayed by the hub's ingest from ReplayStart.
func Open(ctx context.Context, js JetStream, store *Store, cfg PersistConfig, log *slog.Logger) (*Persist, error) {
	cfg = cfg.withDefaults()
	p := &Persist{
		Store: store, js: js, cfg: cfg, log: log.With("component", "history"),
		queue: dropq.New[*Reading](cfg.Queue), wake: make(chan struct{}, 1),
	}
	if err := p.ensureStreams(ctx); err != nil {
		return nil, err
	}
	began := time.Now()
	var bad int
	nRoll, err := natsx.Replay(ctx, js, StreamRollups, since(SubjectRollups, time.Time{}), func(subject string, data []byte) {
		var r Rollup
		if err := msgpack.Unmarshal(data, &r); err != nil {
			bad++
			return
		}
		if err := store.RestoreRollup(&r); err != nil {
			bad++
		}
	})
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", StreamRollups, err)
	}
	nMin, err := natsx.Replay(ctx, js, StreamMinutes, since(SubjectMinutes, time.Time{}), func(_ string, data []byte) {
		var r Rollup
		if err := msgpack.Unmarshal(data, &r); err != nil || store.RestoreMinute(&r) != nil {
			bad++
		}
	})
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", StreamMinutes, err)
	}
	from := store.ReplayStart(time.Now())
	nRead, err := natsx.Replay(ctx, js, StreamHub, since(SubjectReading, from), func(_ string, data []byte) {
		var r Reading
		if err := msgpack.Unmarshal(data, &r); err != nil || len(r.Names) != len(r.Values) || r.TS <= 0 {
			bad++
			return
		}
		store.addReading(&r)
	})
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", StreamHub, err)
	}
	p.log.Info("history restored", "rollups", nRoll, "minutes", nMin, "hub_readings", nRead, "from", from, "bad", bad, "took", time.Since(began))
	return p, nil
}

func (p *Persist) ensureStreams(ctx context.Context) error {
	for _, sc := range []jetstream.StreamConfig{
		{
			Name: StreamRollups, Description: "sysperf long-window rollups, one message per slot",
			Subjects: []string{SubjectRollups}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Discard: jetstream.DiscardOld, MaxAge: p.cfg.Retention, MaxMsgsPerSubject: 1, Replicas: p.cfg.Replicas,
		},
		{
			Name: StreamHub, Description: "sysperf hub readings (databases, containers, inference)",
			Subjects: []string{SubjectHub}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Discard: jetstream.DiscardOld, MaxAge: p.cfg.ReadingsMaxAge, Replicas: p.cfg.Replicas,
			Duplicates: min(2*time.Minute, p.cfg.ReadingsMaxAge),
		},
		{
			Name: StreamMinutes, Description: "sysperf 60m-window minutes, one subject per host",
			Subjects: []string{SubjectMinutes}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			// No limit per subject: a hub before this one set 1, and this
			// lifts it (see the package's persistence notes).
			Discard: jetstream.DiscardOld, MaxAge: MinutesMaxAge, MaxMsgsPerSubject: -1, Replicas: p.cfg.Replicas,
		},
	} {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		_, err := p.js.CreateOrUpdateStream(cctx, sc)
		cancel()
		if err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// Record places the hub's readings and queues them for publishing. It
// never blocks: a full queue drops its oldest reading.
func (p *Persist) Record(u *metrics.Update) {
	r := p.Store.record(u)
	if r == nil {
		return
	}
	p.queue.Push(r)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Dropped is the number of hub readings dropped from a full queue, and
// Failed the number of publishes that failed.
func (p *Persist) Dropped() uint64 { return p.queue.Dropped() }
func (p *Persist) Failed() uint64  { return p.failed.Load() }

// Run publishes queued readings as they come, complete minutes every
// SealEvery and changed long slots every RollupEvery, until ctx ends;
// then it seals and publishes everything once more.
func (p *Persist) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.SealEvery)
	defer t.Stop()
	// A publish in flight when ctx ends still completes (each has its own
	// timeout), so stopping the hub does not lose what it already read.
	pctx := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			p.flush(pctx, time.Now(), true)
			return
		case <-p.wake:
			p.publishReadings(pctx)
		case now := <-t.C:
			p.flush(pctx, now, false)
		}
	}
}

// flush publishes the queued readings, the changed long slots when the
// minutes due to be folded by now reach a later RollupEvery period than
// the last time (else it only folds), and the complete minutes;
// everything changed when the hub is stopping.
func (p *Persist) flush(ctx context.Context, now time.Time, stopping bool) {
	p.publishReadings(ctx)
	if period := p.foldCutoff(now) / int64(p.cfg.RollupEvery); stopping || period != p.rolled {
		p.rolled = period
		for {
			batch := p.seal(now, minuteBatch)
			if len(batch) == 0 {
				break
			}
			p.publishRollups(ctx, batch)
		}
	} else {
		p.FoldDue(now)
	}
	// In batches, so a backlog's minutes are not all alive at once; a
	// minute that failed is marked changed again only after the loop, so
	// a server that refuses every publish does not keep it going.
	var failed []Rollup
	for {
		batch := p.minutes(now, stopping, minuteBatch)
		if len(batch) == 0 {
			break
		}
		for _, i := range p.publishRollups(ctx, batch) {
			failed = append(failed, Rollup{Host: batch[i].Host, Start: batch[i].Start})
		}
	}
	for _, r := range failed {
		p.unsent(r.Host, r.Start)
	}
}

// minuteBatch is how many minute rollups flush holds at once.
const minuteBatch = 512

func (p *Persist) publishReadings(ctx context.Context) {
	for {
		r, ok := p.queue.Pop()
		if !ok {
			return
		}
		b, err := msgpack.Marshal(r)
		if err == nil {
			// The timestamp de-duplicates a reading re-sent after a timeout.
			err = p.publish(ctx, SubjectReading, b, jetstream.WithMsgID(strconv.FormatInt(r.TS, 10)))
		}
		if err != nil {
			p.failed.Add(1)
			p.log.Warn("publish hub reading", "err", err)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// publishRollups publishes a batch and returns the indexes of the
// rollups not stored. All are sent before any ack is awaited, and the
// acks then awaited for at most Timeout in all: a publish awaited in turn
// was a round trip through the hub's and the server's goroutines for
// each rollup, and a 2,000-host hub publishes 2,000 minutes a minute and
// 6,000 long slots every RollupEvery (each host's three long windows'
// newest slots).
func (p *Persist) publishRollups(ctx context.Context, batch []Rollup) []int {
	acks := make([]jetstream.PubAckFuture, len(batch))
	var failed []int
	var first error
	fail := func(i int, err error) {
		failed = append(failed, i)
		if first == nil {
			first = fmt.Errorf("rollup of %s, %ds from %s: %w", batch[i].Host, batch[i].Res, time.Unix(0, batch[i].Start).UTC().Format(time.RFC3339), err)
		}
	}
	for i := range batch {
		b, err := msgpack.Marshal(&batch[i])
		if err == nil {
			acks[i], err = p.js.PublishAsync(RollupSubject(&batch[i]), b)
		}
		if err != nil {
			fail(i, err)
		}
	}
	wait := time.NewTimer(p.cfg.Timeout)
	defer wait.Stop()
	var late error
	for i, a := range acks {
		if a == nil {
			continue
		}
		if late != nil {
			fail(i, late)
			continue
		}
		select {
		case <-a.Ok():
		case err := <-a.Err():
			fail(i, err)
		case <-wait.C:
			late = fmt.Errorf("no ack within %s", p.cfg.Timeout)
			fail(i, late)
		case <-ctx.Done():
			late = ctx.Err()
			fail(i, late)
		}
	}
	if len(failed) > 0 {
		p.failed.Add(uint64(len(failed)))
		p.log.Warn("publish rollups", "failed", len(failed), "of", len(batch), "err", first)
	}
	return failed
}

func (p *Persist) publish(ctx context.Context, subject string, b []byte, opts ...jetstream.PublishOpt) error {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	_, err := p.js.Publish(cctx, subject, b, opts...)
	return err
}

// Rollup is one long-window slot of one host, as persisted. Host is empty
// for the hub's own readings. A later rollup of the same host, resolution
// and start replaces an earlier one.
type Rollup struct {
	V      int       `msgpack:"v"`
	Host   string    `msgpack:"h"`
	Res    int64     `msgpack:"r"` // resolution in seconds
	Start  int64     `msgpack:"t"` // unix ns
	Sealed int64     `msgpack:"s"` // newest minute folded, unix ns
	Names  []string  `msgpack:"k"`
	Sum    []float64 `msgpack:"u"`
	Max    []float64 `msgpack:"m"`
	N      []uint32  `msgpack:"n"`
	// IDs and Models only in a minute rollup (Res 60): the ids of the
	// samples the minute holds, and whether one had model figures.
	IDs    []uint64 `msgpack:"i,omitempty"`
	Models bool     `msgpack:"o,omitempty"`
}

// Reading is one hub reading (the figures Record placed), as persisted.
type Reading struct {
	V      int       `msgpack:"v"`
	TS     int64     `msgpack:"t"`
	Names  []string  `msgpack:"k"`
	Values []float64 `msgpack:"x"`
}

// RollupSubject is where rollup r is kept: a minute (Res 60) in
// StreamMinutes on its host's subject, a long slot in StreamRollups on its
// place in its window's ring (see the package's persistence notes above).
func RollupSubject(r *Rollup) string {
	host := r.Host
	if host == "" {
		host = hubHostToken
	}
	if r.Res == 60 {
		return minutePrefix + host
	}
	place := strconv.FormatInt(mod(r.Start/(r.Res*int64(time.Second)), ringSize), 10)
	return rollupPrefix + strconv.FormatInt(r.Res, 10) + "." + host + "." + place
}

// since selects the messages on filter from start (zero: from the
// beginning).
func since(filter string, start time.Time) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !start.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	}
	return cfg
}

// maxRollupLen bounds the length of a rollup's columns as read.
const maxRollupLen = 1 << 16

// DecodeMsgpack reads a rollup without reflection, as a restart reads one
// per host and minute; it reads what msgpack.Marshal wrote of the struct
// and skips keys it does not know, as the reflective decoder did.
func (r *Rollup) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	for range n {
		key, err := d.DecodeString()
		if err != nil {
			return err
		}
		switch key {
		case "v":
			r.V, err = d.DecodeInt()
		case "h":
			r.Host, err = d.DecodeString()
		case "r":
			r.Res, err = d.DecodeInt64()
		case "t":
			r.Start, err = d.DecodeInt64()
		case "s":
			r.Sealed, err = d.DecodeInt64()
		case "k":
			r.Names, err = column(d, d.DecodeString)
		case "u":
			r.Sum, err = column(d, d.DecodeFloat64)
		case "m":
			r.Max, err = column(d, d.DecodeFloat64)
		case "n":
			r.N, err = column(d, d.DecodeUint32)
		case "i":
			r.IDs, err = column(d, d.DecodeUint64)
		case "o":
			r.Models, err = d.DecodeBool()
		default:
			err = d.Skip()
		}
		if err != nil {
			return fmt.Errorf("rollup field %q: %w", key, err)
		}
	}
	return nil
}

// column reads one of a rollup's arrays (nil stays nil).
func column[T any](d *msgpack.Decoder, one func() (T, error)) ([]T, error) {
	n, err := d.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if n > maxRollupLen {
		return nil, fmt.Errorf("%d values, at most %d", n, maxRollupLen)
	}
	out := make([]T, n)
	for i := range out {
		if out[i], err = one(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
