package hub

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Live ingest. Samples reach the hub on a plain subscription to the
// samples subject, the copy the server routes to every subscriber as it
// routes one to the stream: no consumer, no pull requests and no store
// read per sample, which were about a fifth of the embedded server's cost
// per sample at 2,000 hosts. JetStream keeps what needs it: the start-up
// replay (history survives a restart) and the gaps a subscription can
// have, which are read back from the stream.
//
// A subscription loses messages in two ways, both of which the hub sees:
// the client drops what does not fit in its pending limits (a slow hub,
// Subscription.Dropped), and nothing is delivered while the connection is
// down (a reconnect, Statistics.Reconnects). Every liveCheck the hub
// flushes its connection: once the server answered, every message it had
// routed to the hub before is in the subscription's queue or counted
// dropped, so, with neither counter moved, the hub has everything stored
// before the flush began (its mark). When one moved, the messages stored
// since the mark (less readMargin, for the stream's and the servers'
// clocks and the store's lag) are read back from the stream with a
// short-lived consumer, on until the stream holds messages stored
// readMargin after the gap was found, so a message routed before the
// subscription came back but stored late is in the read too.
//
// A message can so reach ingest twice, live and read back. Each path
// records what it handled (twice, below) for as long as a read-back may
// go over it, and a copy the other path handled is skipped: every
// message, sample or junk, is handled and counted once. A copy the stream
// itself refused as a duplicate (Nats-Msg-Id) is still routed to the
// subscription; that one is the agent's second publish, and ingest's seen
// record drops it as a duplicate, as it does a sample stored twice.

// liveCheck is how often the subscription is checked for gaps.
const liveCheck = time.Second

// readMargin widens a read-back on both sides: the stream stamps a
// message with its leader's clock when it stores it, which may be behind
// its routing to the hub (the store's queue) or another server's clock.
const readMargin = 5 * time.Second

// readBackWait is how long a read-back waits for a message the stream
// still says it holds; past it, its consumer stalled (read).
const readBackWait = 5 * time.Second

// LiveStats are the live path's counters.
type LiveStats struct {
	// Gaps found: a reconnect, or messages the subscription dropped.
	Gaps uint64
	// Dropped messages the subscription dropped, read back.
	Dropped uint64
	// ReadBack messages read from the stream: the start-up replay and
	// the gaps.
	ReadBack uint64
	// Overlap messages that came both ways and were handled once.
	Overlap uint64
	// Held live messages that came during the start-up replay, which
	// handled them from the stream.
	Held uint64
	// Stalls read-backs reopened: the stream held messages for one that
	// its consumer did not deliver within readBackWait, or its
	// deliveries skipped a number.
	Stalls uint64
	// Short read-backs began after their start: the stream's limits (its
	// byte cap) had removed what they were to read first.
	Short uint64
}

// live feeds ingest from the samples subscription and the stream.
type live struct {
	in  *ingest
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
	// window is the oldest a read-back goes (ingest's window: anything
	// older would be dropped as too old).
	window time.Duration
	// margin is readMargin and wait readBackWait; tests shorten them.
	margin, wait time.Duration
	sub          *nats.Subscription

	// on is set once the start-up replay read all the stream held: live
	// messages are handled from then on, and left to the replay before.
	on atomic.Bool

	mu    sync.Mutex
	twice twice

	// readMu runs one read-back at a time, each in stream order, so
	// readTo, the last stream sequence a read-back handled, tells what
	// an earlier one handled; created is the stream's creation time, a
	// recreated stream starting its sequences over.
	readMu  sync.Mutex
	readTo  uint64
	created time.Time

	// The checker's record (ck): the last reconnect and drop counts seen,
	// the mark (every message stored before it was handled), and whether
	// a gap found is still to be read back.
	ck         sync.Mutex
	reconnects uint64
	dropped    int
	mark       time.Time
	owed       bool

	gaps, drops, readBack, overlap, held, stalls, short atomic.Uint64

	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup
}

func newLive(in *ingest, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger, window time.Duration) *live {
	ctx, cancel := context.WithCancel(context.Background())
	return &live{
		in: in, nc: nc, js: js, log: log, window: window, margin: readMargin, wait: readBackWait,
		twice: twice{seed: maphash.MakeSeed(), n: map[uint64]copies{}},
		ctx:   ctx, cancel: cancel,
	}
}

// subscribe starts the subscription. Its messages wait for the replay.
func (l *live) subscribe() error {
	sub, err := l.nc.Subscribe(metrics.SubjectSamples, l.deliver)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", metrics.SubjectSamples, err)
	}
	l.sub = sub
	return nil
}

// deliver handles one message of the subscription.
func (l *live) deliver(m *nats.Msg) {
	if !l.on.Load() {
		l.held.Add(1)
		return
	}
	id := m.Header.Get(jetstream.MsgIDHeader)
	if !l.take(m.Subject, id, m.Data, time.Time{}) {
		return
	}
	if l.in.ownMsgID(m.Subject, id, len(m.Data)) {
		l.in.sample(m.Subject, m.Data)
	} else {
		l.in.handled.Add(1)
	}
}

// stored handles one message read back from the stream. One an earlier
// read-back handled (a gap read back over a replay's tail, a read-back
// retried) is the same copy, and skipped.
func (l *live) stored(msg jetstream.Msg, md *jetstream.MsgMetadata) {
	if md.Sequence.Stream <= l.readTo {
		return
	}
	l.readTo = md.Sequence.Stream
	l.readBack.Add(1)
	id := msg.Headers().Get(jetstream.MsgIDHeader)
	if !l.take(msg.Subject(), id, msg.Data(), md.Timestamp) {
		return
	}
	if l.in.ownMsgID(msg.Subject(), id, len(msg.Data())) {
		if !l.in.restored(id) {
			l.in.sample(msg.Subject(), msg.Data())
		}
	} else {
		l.in.handled.Add(1)
	}
}

// take reports whether this copy of a message is the path's to handle:
// live copies (ts zero) and stored ones (stamped ts) are matched, and the
// first of each pair is handled.
func (l *live) take(subject, id string, data []byte, ts time.Time) bool {
	h := l.twice.sum(subject, id, data)
	now := time.Now()
	// A stored message older than this was routed to the subscription
	// long before any live copy the record still holds, so it needs no
	// entry of its own (the replay would fill the record otherwise).
	record := ts.IsZero() || now.Sub(ts) < 2*l.margin
	l.mu.Lock()
	first := l.twice.take(h, !ts.IsZero(), record, now)
	l.mu.Unlock()
	if !first {
		l.overlap.Add(1)
	}
	return first
}

// replay reads the stream from from, so a restarted hub rebuilds its
// windows through the path live samples take, and returns the number of
// messages read once it has read all the stream held: from then on, live
// messages are handled, and the read goes on in the background for the
// hand-over's margin. It returns early, with caught false, when ctx ends
// first; the read goes on, and live messages are handled once it is
// caught up. An error is a read that could not begin.
func (l *live) replay(ctx context.Context, from time.Time) (n uint64, caught bool, err error) {
	done := make(chan struct{})
	failed := make(chan error, 1)
	var began atomic.Bool
	complete := false
	l.wg.Go(func() {
		last := from
		_, err := l.read(l.ctx, from, func(ts time.Time) {
			began.Store(true)
			if !ts.IsZero() {
				last = ts
			}
		}, func() time.Time {
			now := time.Now()
			l.switchOn(now, false)
			n, complete = l.readBack.Load(), true
			close(done)
			return now.Add(l.margin)
		})
		if err == nil || l.ctx.Err() != nil {
			return
		}
		if l.on.Load() {
			// Broken off in the hand-over: the checker reads it back.
			l.log.Warn("sample replay broken off in the hand-over; reading it back", "err", err)
			l.ck.Lock()
			l.owed = true
			l.ck.Unlock()
			return
		}
		if !began.Load() {
			// Start fails with it; should Start have stopped waiting,
			// the checker reads the whole replay back.
			failed <- err
		} else {
			l.log.Warn("sample replay broken off; reading the rest back", "after", last, "err", err)
		}
		l.switchOn(last, true)
		close(done)
	})
	select {
	case <-done:
		select {
		case err := <-failed:
			return 0, false, err
		default:
		}
		return n, complete, nil
	case err := <-failed:
		return 0, false, err
	case <-ctx.Done():
		return l.readBack.Load(), false, nil
	}
}

// switchOn starts handling live messages, with mark the time before
// which the stream's messages were handled; owed: read back from it.
func (l *live) switchOn(mark time.Time, owed bool) {
	l.ck.Lock()
	defer l.ck.Unlock()
	l.reconnects = l.nc.Stats().Reconnects
	l.dropped, _ = l.sub.Dropped()
	l.mark, l.owed = mark, owed
	l.on.Store(true)
}

// run checks for gaps every liveCheck until Close.
func (l *live) run() {
	t := time.NewTicker(liveCheck)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
			l.check()
		}
	}
}

// check finds a gap in what the subscription delivered since the last
// check, and reads it back; with none, it moves the mark.
func (l *live) check() {
	if !l.on.Load() {
		return
	}
	now := time.Now()
	// Not connected, or no answer: a reconnect follows, or the next
	// check gets one; the mark stays.
	if err := l.nc.FlushTimeout(liveCheck); err != nil {
		return
	}
	reconnects := l.nc.Stats().Reconnects
	dropped, err := l.sub.Dropped()
	if err != nil {
		return // closing
	}
	l.ck.Lock()
	gap := l.owed || reconnects != l.reconnects || dropped != l.dropped
	from := l.mark
	if dropped > l.dropped {
		l.drops.Add(uint64(dropped - l.dropped))
	}
	if reconnects != l.reconnects || dropped != l.dropped {
		l.gaps.Add(1)
		l.log.Warn("live samples missed; reading them back from the stream",
			"since", from, "reconnects", reconnects-l.reconnects, "dropped", dropped-l.dropped)
	}
	l.reconnects, l.dropped = reconnects, dropped
	if !gap {
		l.mark = now
		l.ck.Unlock()
		l.expire(now)
		return
	}
	l.owed = true
	l.ck.Unlock()
	n, err := l.read(l.ctx, from.Add(-l.margin), nil, func() time.Time { return now.Add(l.margin) })
	if err != nil {
		if l.ctx.Err() == nil {
			l.log.Warn("read back live samples missed; retrying", "since", from, "read", n, "err", err)
		}
		return
	}
	l.ck.Lock()
	l.owed, l.mark = false, now
	l.ck.Unlock()
	// Here too: a hub that drops at every check never gets to the
	// expiry of a clean one.
	l.expire(now)
	l.log.Info("live samples missed read back", "since", from, "messages", n)
}

// expire forgets the copies no read-back can reach any more.
func (l *live) expire(now time.Time) {
	l.ck.Lock()
	cut := now.Add(-4 * l.margin)
	if m := l.mark.Add(-2 * l.margin); m.Before(cut) {
		cut = m
	}
	l.ck.Unlock()
	l.mu.Lock()
	l.twice.expire(cut)
	l.mu.Unlock()
}

// read hands the samples stream's messages stored from from on to
// stored, in stream order, through short-lived consumers (pass). Once it
// has read all the stream holds, it asks tail until when it must go on
// (the time of the gap plus the margin) and stops at the first message
// stored after that, or once it is caught up and that time has passed.
// each, when set, is told of each message's stamp.
//
// A consumer that delivers nothing for readBackWait while the stream
// holds more for it has stalled, and one whose deliveries skip a number
// lost some (a reconnect in the middle of a pull): either way the read
// goes on with a new consumer from the sequence after the last message
// it handled. Three in a row without a message are an error, and the
// checker reads the gap again at its next check.
func (l *live) read(ctx context.Context, from time.Time, each func(time.Time), tail func() time.Time) (int, error) {
	l.readMu.Lock()
	defer l.readMu.Unlock()
	st, err := l.js.Stream(ctx, metrics.StreamSamples)
	if err != nil {
		return 0, fmt.Errorf("read back %s: %w", metrics.StreamSamples, err)
	}
	if c := st.CachedInfo().Created; !c.Equal(l.created) {
		l.created, l.readTo = c, 0
	}
	if oldest := time.Now().Add(-l.window); from.Before(oldest) {
		from = oldest
	}
	l.shortOf(st.CachedInfo(), from)
	r := reading{from: from, each: each, tail: tail}
	for stalls := 0; ; {
		before := r.n
		done, why, err := l.pass(ctx, &r)
		if err != nil || done {
			return r.n, err
		}
		if r.n > before {
			stalls = 0
		}
		if stalls++; stalls == 3 {
			return r.n, fmt.Errorf("read back %s: %d messages pending after sequence %d, none delivered in %d tries",
				metrics.StreamSamples, r.pending, r.next-1, stalls)
		}
		l.stalls.Add(1)
		l.log.Warn("read-back reopened after its last message", "why", why, "after", r.next-1, "pending", r.pending)
	}
}

// shortOf reports a read that begins after its start: the stream removed
// messages (its first sequence is past 1) and its oldest was stored after
// from, and not for its age. What it stored before then and the hub did
// not read (the samples the live subscription dropped, or the start of
// the replay) is lost; a stream at its byte cap holding less time than a
// backlog does that.
func (l *live) shortOf(info *jetstream.StreamInfo, from time.Time) {
	first := info.State.FirstTime
	if info.State.FirstSeq <= 1 || !first.After(from) {
		return
	}
	if age := info.Config.MaxAge; age > 0 && time.Since(first) >= age*9/10 {
		return
	}
	l.short.Add(1)
	l.log.Warn("samples stream no longer holds the start of a read-back: what it stored before its oldest message and the hub had not read was removed by its limits and is lost",
		"stream", metrics.StreamSamples, "from", from, "oldest", first, "lost_span", first.Sub(from).Round(time.Millisecond),
		"max_bytes", info.Config.MaxBytes, "raise", "--stream-max-bytes")
}

// reading is where a read stands between its consumers.
type reading struct {
	from time.Time
	each func(time.Time)
	tail func() time.Time
	// n messages read; next the stream sequence after the last one (0
	// before the first); pending what the stream held after it.
	n       int
	next    uint64
	pending uint64
	// until is tail's answer, once asked (atTail).
	until  time.Time
	atTail bool
}

// pass reads through one consumer, from r.next (r.from before the first
// message). It reports done once the read is complete, and not done,
// with why and no error, when the consumer stalled or lost a delivery.
//
// The consumer is pulled one batch at a time (Fetch), not with a
// continuous pull (Messages): a continuous pull's queue is as long as
// the messages it keeps asked for, and the server's status messages
// ("409 Batch Completed" after each pull) share it, so a hub slow to read
// during a fill had the client drop messages from it, thousands of
// "slow consumer" warnings and a consumer reset each. A batch's queue
// holds twice the batch.
func (l *live) pass(ctx context.Context, r *reading) (done bool, why string, err error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &r.from,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     metrics.SubjectSamples,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if r.next > 0 {
		cfg.DeliverPolicy, cfg.OptStartTime, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, nil, r.next
	}
	cons, err := l.js.CreateConsumer(ctx, metrics.StreamSamples, cfg)
	if err != nil {
		return false, "", fmt.Errorf("read back %s: %w", metrics.StreamSamples, err)
	}
	defer l.deleteConsumer(cons)
	r.pending = cons.CachedInfo().NumPending
	if r.pending == 0 && !r.atTail {
		r.until, r.atTail = r.tail(), true
	}
	var delivered uint64 // the consumer's sequence of its last delivery
	for {
		if err := ctx.Err(); err != nil {
			return false, "", err
		}
		// A pull ends when its batch is full or its wait is over: it
		// asks for no more than the stream holds, or, caught up, waits
		// no longer than the tail.
		wait, size := l.wait, fetchMessages
		if r.pending > 0 {
			size = int(min(r.pending, fetchMessages))
		} else if r.atTail {
			left := time.Until(r.until)
			if left <= 0 {
				return true, "", nil
			}
			wait = max(min(left, wait), 10*time.Millisecond)
		}
		got, done, why, err := l.batch(ctx, cons, r, size, wait, &delivered)
		if err != nil || done || why != "" {
			return done, why, err
		}
		if got == 0 && r.pending > 0 {
			return false, "stalled", nil
		}
		if got == 0 && !r.atTail {
			// Caught up, and nothing more was stored.
			r.until, r.atTail = r.tail(), true
		}
	}
}

// batch pulls up to size messages, waiting at most wait, and hands them
// to stored. *delivered is the consumer's sequence of its last delivery.
func (l *live) batch(ctx context.Context, cons jetstream.Consumer, r *reading, size int, wait time.Duration, delivered *uint64) (got int, done bool, why string, err error) {
	// The pull's own context, so Close ends it at once.
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	b, err := cons.Fetch(size, jetstream.FetchMaxBytes(fetchBytes), jetstream.FetchContext(fctx))
	if err != nil {
		return 0, false, "", fmt.Errorf("read back %s after %d messages: %w", metrics.StreamSamples, r.n, err)
	}
	for msg := range b.Messages() {
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		if md.Sequence.Consumer != *delivered+1 {
			return got, false, "lost a delivery", nil
		}
		*delivered = md.Sequence.Consumer
		got++
		l.stored(msg, md)
		r.n++
		r.next, r.pending = md.Sequence.Stream+1, md.NumPending
		if r.each != nil {
			r.each(md.Timestamp)
		}
		if r.atTail && !md.Timestamp.Before(r.until) {
			return got, true, "", nil
		}
		if r.pending == 0 && !r.atTail {
			r.until, r.atTail = r.tail(), true
		}
	}
	if ctx.Err() != nil {
		return got, false, "", ctx.Err()
	}
	if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
		return got, false, "", fmt.Errorf("read back %s after %d messages: %w", metrics.StreamSamples, r.n, err)
	}
	return got, false, "", nil
}

// deleteConsumer removes a read-back's consumer at once rather than
// leaving it to its inactivity threshold.
func (l *live) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.js.DeleteConsumer(ctx, metrics.StreamSamples, info.Name)
}

// start runs the checker.
func (l *live) start() { l.wg.Go(l.run) }

// close stops the checker and any read-back, then drains the
// subscription (nc.Drain waits for it).
func (l *live) close() {
	l.cancel()
	l.wg.Wait()
	if l.sub != nil {
		_ = l.sub.Drain()
	}
}

// settled reports whether live messages are handled and no gap found
// is waiting to be read back.
func (l *live) settled() bool {
	l.ck.Lock()
	defer l.ck.Unlock()
	return l.on.Load() && !l.owed
}

// quiet reports whether no read-back runs.
func (l *live) quiet() bool {
	if !l.readMu.TryLock() {
		return false
	}
	l.readMu.Unlock()
	return true
}

// Stats returns the counters.
func (l *live) Stats() LiveStats {
	return LiveStats{Gaps: l.gaps.Load(), Dropped: l.drops.Load(), ReadBack: l.readBack.Load(), Overlap: l.overlap.Load(), Held: l.held.Load(), Stalls: l.stalls.Load(), Short: l.short.Load()}
}

// twice matches the copies of a message that came live and read back,
// by a hash of its subject and Nats-Msg-Id, or body where it has no id. Each entry counts the
// copies each path handled: the k-th copy is handled by the path that
// sees it first, so a message published twice and stored twice is
// handled twice, once or twice by each path. Entries live as long as a
// read-back may reach them (expire).
type twice struct {
	seed  maphash.Seed
	n     map[uint64]copies
	order []stamped
	// peak is the most entries n has held since it was last made: a Go
	// map keeps its buckets when its entries go, and a read-back that
	// runs through a flood (a hub filled with an hour of samples in a
	// minute and a half dropped and read back for all of it) records
	// every live message until it ends: 1.5 million entries, 107 MB the
	// hub held for good. expire moves what is left to a new map.
	peak int
}

// shrinkAbove is the size below which twice keeps its map and order
// whatever they once held: the few seconds of live messages a check
// records at 2,000 hosts (some thousands), not worth moving.
const shrinkAbove = 1 << 14

type copies struct {
	live, stored int32
	at           int64
}

type stamped struct {
	h  uint64
	at int64
}

// sum is a message's key. An id names its message (metrics.MsgID: host,
// boot, sequence and the agent's key), and two bodies under one id are
// one sample as the stream and seen.go see it, so the body is hashed only
// for a message without one: a few KiB less per live sample.
func (t *twice) sum(subject, id string, data []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.WriteString(subject)
	h.WriteByte(0)
	h.WriteString(id)
	if id == "" {
		h.WriteByte(0)
		h.Write(data)
	}
	return h.Sum64()
}

// take counts a copy seen by one path (stored or live) and reports
// whether that path handles it. A copy with no entry is new: record
// makes one.
func (t *twice) take(h uint64, stored, record bool, now time.Time) bool {
	c, ok := t.n[h]
	if !ok && !record {
		return true
	}
	mine, other := &c.live, &c.stored
	if stored {
		mine, other = other, mine
	}
	first := *mine >= *other
	*mine++
	if c.live == c.stored {
		// What a path handles depends on the difference of the counts
		// alone, so a pair matched is as good as no entry: a flood's
		// read-back, which matches each live copy it reaches, then keeps
		// only those it has not reached yet.
		delete(t.n, h)
		t.tidy()
		return first
	}
	c.at = now.UnixNano()
	t.n[h] = c
	t.peak = max(t.peak, len(t.n))
	t.order = append(t.order, stamped{h, c.at})
	t.tidy()
	return first
}

// tidy drops the stamps of entries gone or stamped again since, once
// they outnumber the live ones: a read-back that runs for minutes would
// have them pile up until its end, when expire runs.
func (t *twice) tidy() {
	if len(t.order) < 2*len(t.n)+shrinkAbove {
		return
	}
	k := 0
	for _, s := range t.order {
		if e, ok := t.n[s.h]; ok && e.at == s.at {
			t.order[k] = s
			k++
		}
	}
	t.order = t.order[:k]
}

// expire forgets the entries last seen before cut.
func (t *twice) expire(cut time.Time) {
	c := cut.UnixNano()
	i := 0
	for i < len(t.order) && t.order[i].at < c {
		if e, ok := t.n[t.order[i].h]; ok && e.at == t.order[i].at {
			delete(t.n, t.order[i].h)
		}
		i++
	}
	if i > 0 {
		t.order = append(t.order[:0], t.order[i:]...)
	}
	// Moved once what is left is a quarter of the peak: the cost, a copy
	// of what is left, is then at most a third of the entries that went.
	if t.peak > shrinkAbove && len(t.n) < t.peak/4 {
		n := make(map[uint64]copies, len(t.n))
		for h, c := range t.n {
			n[h] = c
		}
		t.n, t.peak = n, len(n)
	}
	if cap(t.order) > shrinkAbove && len(t.order) < cap(t.order)/4 {
		t.order = append(make([]stamped, 0, 2*len(t.order)), t.order...)
	}
}
