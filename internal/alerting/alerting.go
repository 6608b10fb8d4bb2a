// Package alerting runs the pure alert engine of pkg/alerts inside the
// hub, with the I/O the engine leaves out (rules and state are pkg/alerts;
// streams, KV and webhooks are here): it evaluates every update, keeps the
// recent transitions, publishes each transition on
// sysperf.v1.alert.<state> into the SYSPERF_ALERTS stream, saves the
// engine's state in a JetStream KV bucket so a restarted hub resumes it (a
// firing alert stays firing, a `for` timer keeps its start), and hands
// firing and resolved alerts to the webhook notifier.
//
// Nothing here blocks evaluation: publishing and notifying run in their
// own goroutines behind bounded queues.
package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/dropq"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/notify"
	"github.com/sysperf/sysperf/pkg/alerts"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Where the engine's state is saved.
const (
	StateBucket = "SYSPERF_ALERT_STATE"
	stateKey    = "engine"
)

// JetStream is the part of jetstream.JetStream the service uses.
type JetStream interface {
	CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
	CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
	OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error)
	Publish(ctx context.Context, subject string, payload []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	// Conn is the connection, whose server's max payload bounds what is
	// saved in one message.
	Conn() *nats.Conn
}

// Config configures the service.
type Config struct {
	// Rules are the rules to evaluate; nil means alerts.Defaults().
	Rules []alerts.Rule
	// Webhooks receive firing and resolved alerts (Alertmanager v2 body).
	Webhooks []string
	// Notify tunes the webhook senders; its URLs are Webhooks.
	Notify notify.Config
	// GeneratorURL is each notification's link back, e.g. the dashboard.
	GeneratorURL string
	// Recent is how many transitions GET /api/v1/alerts lists; default 100.
	Recent int
	// Resend re-sends firing alerts this often, so an Alertmanager does not
	// resolve them on its resolve_timeout; default 1m.
	Resend time.Duration
	// Retention of the SYSPERF_ALERTS stream; default 30 days.
	Retention time.Duration
	// Replicas for a clustered external NATS; default 1.
	Replicas int
	// Timeout bounds each JetStream call; default 5s.
	Timeout time.Duration
	// Lease, when set, is this hub's name among hubs sharing one NATS:
	// only the hub holding the notifier lease publishes transitions, saves
	// the state and sends webhooks (lease.go). Empty: this is the only hub.
	Lease string
	// LeaseTTL is how long a lease lasts unrenewed, so how soon another
	// hub takes over from a dead one (within about LeaseTTL + 1s);
	// default 8s.
	LeaseTTL time.Duration
}

// RulesFromFile returns the default rules with the YAML rules file at path
// applied; an empty path returns the defaults.
func RulesFromFile(path string) ([]alerts.Rule, error) {
	if path == "" {
		return alerts.Defaults(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	defer f.Close()
	rules, err := alerts.LoadRules(f, alerts.Defaults())
	if err != nil {
		return nil, fmt.Errorf("rules %s: %w", path, err)
	}
	return rules, nil
}

// Service evaluates alerts for the hub. It implements hub.Evaluator and
// server.AlertLister.
type Service struct {
	engine   *alerts.Engine
	cfg      Config
	js       JetStream
	kv       jetstream.KeyValue
	notifier *notify.Notifier
	log      *slog.Logger
	stream   jetstream.Stream

	// With more than one hub (cfg.Lease): the lease bucket, whether this
	// hub holds the lease, and the newest update, evaluated again by a hub
	// that takes over. evalMu orders evaluations and a takeover.
	leaseKV    jetstream.KeyValue
	holding    atomic.Bool
	evalMu     sync.Mutex
	lastNow    time.Time
	lastUpdate *metrics.Update

	mu         sync.Mutex
	recent     []metrics.Alert // oldest first, at most cfg.Recent
	lastResend time.Time

	// Publishing queue: transitions in order, and the newest snapshot.
	// qmu makes taking both one step, so a publish never saves a state
	// newer than the transitions it takes.
	qmu   sync.Mutex
	queue *dropq.Queue[alerts.Transition]
	// snapshot is taken on the tick but encoded by publish, on Run's
	// goroutine: a fleet's is megabytes of JSON (BenchmarkSaveState), and
	// encoding it on the tick held that tick's update back from the
	// browsers.
	snapshot  *alerts.Snapshot
	wake      chan struct{}
	lastSaved []byte
	// The engine's Changes at the newest snapshot taken, and when it was
	// taken (evaluate only, under evalMu).
	snapChanges uint64
	snapAt      time.Time

	// The saved state's parts (state.go): the largest this server takes,
	// the set the manifest names ("" when none does), and how many parts
	// of each set this hub knows to be there. saveMu orders a save and a
	// takeover's read.
	saveMu     sync.Mutex
	partSize   int
	partsIn    string
	partsKnown map[string]int

	failed atomic.Uint64
}

const maxQueue = 1024

// New validates the rules and the webhooks and builds the service, which
// keeps everything in memory until Persist gives it JetStream. It touches
// nothing outside, so the hub checks its settings with it before starting.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.Rules == nil {
		cfg.Rules = alerts.Defaults()
	}
	if cfg.Recent <= 0 {
		cfg.Recent = 100
	}
	if cfg.Resend <= 0 {
		cfg.Resend = time.Minute
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 8 * time.Second
	}
	engine, err := alerts.New(cfg.Rules)
	if err != nil {
		return nil, err
	}
	ncfg := cfg.Notify
	ncfg.URLs = cfg.Webhooks
	notifier, err := notify.New(ncfg, log)
	if err != nil {
		return nil, err
	}
	return &Service{
		engine: engine, cfg: cfg, notifier: notifier, log: log.With("component", "alerts"),
		queue: dropq.New[alerts.Transition](maxQueue), wake: make(chan struct{}, 1),
		partSize: maxPart, partsKnown: map[string]int{},
	}, nil
}

// Persist creates the stream and the state bucket, restores the saved
// state and the recent transitions, and from then on publishes and saves
// there. It must be called before Evaluate and Run.
func (s *Service) Persist(ctx context.Context, js JetStream) error {
	if nc := js.Conn(); nc != nil {
		s.partSize = partLimit(nc.MaxPayload())
	}
	if err := s.restore(ctx, js); err != nil {
		return err
	}
	s.js = js
	return nil
}

func (s *Service) restore(ctx context.Context, js JetStream) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	st, err := js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
		Name: metrics.StreamAlerts, Description: "sysperf alert transitions",
		Subjects: []string{metrics.SubjectAlerts}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		Discard: jetstream.DiscardOld, MaxAge: s.cfg.Retention, Replicas: s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", metrics.StreamAlerts, err)
	}
	if s.kv, err = js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{
		Bucket: StateBucket, Description: "sysperf alert engine state", Storage: jetstream.FileStorage, Replicas: s.cfg.Replicas,
	}); err != nil {
		return fmt.Errorf("kv %s: %w", StateBucket, err)
	}
	s.stream = st
	if s.cfg.Lease != "" {
		// The bucket's TTL is the lease time: a key not renewed ages out.
		if s.leaseKV, err = js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{
			Bucket: LeaseBucket, Description: "sysperf hub that sends alert notifications", TTL: s.cfg.LeaseTTL,
			Storage: jetstream.FileStorage, Replicas: s.cfg.Replicas,
		}); err != nil {
			return fmt.Errorf("kv %s: %w", LeaseBucket, err)
		}
	}
	// A state this hub cannot read is not worth refusing to start for:
	// the alerts come back as their conditions hold again.
	saved, err := s.restoreState(cctx, "saved alert state unreadable, starting fresh")
	if err != nil {
		return err
	}
	if saved != nil {
		s.lastSaved = saved
	}
	info := st.CachedInfo()
	if info == nil || info.State.LastSeq == 0 {
		return nil
	}
	first := max(info.State.FirstSeq, info.State.LastSeq-min(info.State.LastSeq, uint64(s.cfg.Recent))+1)
	if _, err := natsx.Replay(cctx, js, metrics.StreamAlerts, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first,
	}, func(_ string, data []byte) {
		var tr alerts.Transition
		if json.Unmarshal(data, &tr) == nil {
			s.remember(tr.Alert)
		}
	}); err != nil {
		return fmt.Errorf("stream %s: replay: %w", metrics.StreamAlerts, err)
	}
	s.log.Info("alert state restored", "active", len(s.engine.Active()), "recent", len(s.recent))
	return nil
}

// Engine is the rule engine, for callers that want its rules.
func (s *Service) Engine() *alerts.Engine { return s.engine }

// Evaluate applies the rules to u and returns the alerts now pending or
// firing. Transitions are published and notified in the background. With
// a lease, u is kept until the next call, for a takeover to evaluate
// again: the caller must not change what the rules read.
func (s *Service) Evaluate(now time.Time, u *metrics.Update) []metrics.Alert {
	s.evalMu.Lock()
	defer s.evalMu.Unlock()
	if s.leaseKV != nil {
		s.lastNow, s.lastUpdate = now, u
	}
	return s.evaluate(now, u)
}

func (s *Service) evaluate(now time.Time, u *metrics.Update) []metrics.Alert {
	notifying := s.notifying()
	trs := s.engine.Evaluate(now, u)
	active := s.engine.Active()
	var notes []notify.Alert
	for _, tr := range trs {
		s.remember(tr.Alert)
		// Pending, and pending that clears, are debug: a figure hovering
		// at a threshold turns them over every few ticks, and neither is
		// sent anywhere. Firing and resolved are what an operator reads.
		level := slog.LevelInfo
		if tr.State == alerts.StatePending || (tr.State == alerts.StateInactive && tr.From == alerts.StatePending) {
			level = slog.LevelDebug
		}
		s.log.Log(context.Background(), level, "alert "+string(tr.State), "rule", tr.Rule, "severity", tr.Severity, "host", tr.Host, "target", tr.Target, "value", tr.Value, "from", tr.From)
		// With a lease, transitions reach the webhooks from the stream.
		if s.leaseKV == nil {
			notes = append(notes, s.notes(tr, now)...)
		}
	}
	if !notifying {
		return active
	}
	s.mu.Lock()
	// The resend clock starts at the first evaluation: a new alert is sent
	// by its transition anyway, and the alerts a restarted hub restored
	// were sent by the hub before it, so sending them again at once would
	// be a webhook call that says nothing new.
	if s.lastResend.IsZero() {
		s.lastResend = now
	}
	resend := now.Sub(s.lastResend) >= s.cfg.Resend
	if resend {
		s.lastResend = now
	}
	s.mu.Unlock()
	if resend {
		sent := map[[3]string]bool{}
		for _, tr := range trs {
			if tr.State == alerts.StateFiring {
				sent[[3]string{tr.Rule, tr.Host, tr.Target}] = true
			}
		}
		for _, a := range active {
			if a.State == alerts.StateFiring && !sent[[3]string{a.Rule, a.Host, a.Target}] {
				notes = append(notes, notify.FromAlert(a, now, s.cfg.GeneratorURL))
			}
		}
	}
	s.notifier.Notify(notes)
	if s.js != nil {
		s.enqueue(now, trs)
	}
	return active
}

// notes are what a transition sends the webhooks: firing and resolved,
// and a severity change ends the old alert as the new one starts (severity
// is a label, so another alert to Alertmanager).
func (s *Service) notes(tr alerts.Transition, at time.Time) []notify.Alert {
	switch {
	case tr.State == alerts.StateFiring && tr.From == alerts.StateFiring:
		old := tr.Alert
		old.Severity, old.State = tr.FromSeverity, alerts.StateResolved
		return []notify.Alert{notify.FromAlert(old, at, s.cfg.GeneratorURL), notify.FromAlert(tr.Alert, at, s.cfg.GeneratorURL)}
	case tr.State == alerts.StateFiring || tr.State == alerts.StateResolved:
		return []notify.Alert{notify.FromAlert(tr.Alert, at, s.cfg.GeneratorURL)}
	}
	return nil
}

func (s *Service) remember(a metrics.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recent) >= s.cfg.Recent {
		copy(s.recent, s.recent[1:])
		s.recent = s.recent[:len(s.recent)-1]
	}
	s.recent = append(s.recent, a)
}

// Active returns the alerts now pending or firing.
func (s *Service) Active() []metrics.Alert { return s.engine.Active() }

// Recent returns the latest transitions in alerts.SortAlerts' order:
// critical first, then the oldest alert, its newest transition first.
func (s *Service) Recent() []metrics.Alert {
	s.mu.Lock()
	out := slices.Clone(s.recent)
	s.mu.Unlock()
	alerts.SortAlerts(out)
	return out
}

// Stats are the service's counters.
type Stats struct {
	// Dropped transitions pushed out of a full publish queue.
	Dropped uint64 `json:"dropped"`
	// Failed publishes and state saves.
	Failed uint64 `json:"failed"`
	// Webhooks are the receivers' counters.
	Webhooks []notify.Stats `json:"webhooks"`
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	return Stats{Dropped: s.queue.Dropped(), Failed: s.failed.Load(), Webhooks: s.notifier.Stats()}
}

// saveEvery is how often the state is saved while only the alerts'
// values change. A fleet's hot GPUs hold thousands of pending and firing
// alerts whose values move every tick: saving them was a JSON of every
// alert and a write to the state bucket each tick (2,000 hosts with six
// in ten GPUs alerting: 2 MB, 14 ms of CPU; BenchmarkSaveState), while a
// restart needs their timers, not values the next evaluation replaces.
const saveEvery = time.Minute

func (s *Service) enqueue(now time.Time, trs []alerts.Transition) {
	var snap *alerts.Snapshot
	if changes := s.engine.Changes(); changes != s.snapChanges || now.Sub(s.snapAt) >= saveEvery || now.Before(s.snapAt) {
		st := s.engine.Snapshot()
		snap = &st
		s.snapChanges, s.snapAt = changes, now
	}
	if snap == nil && len(trs) == 0 {
		return
	}
	s.qmu.Lock()
	s.queue.Push(trs...)
	if snap != nil {
		s.snapshot = snap
	}
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run publishes transitions, saves the state and sends notifications
// until ctx ends; what is queued then is still published.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.notifier.Run(ctx) })
	// The lease ends after the last publish, which needs it.
	lctx, release := context.WithCancel(context.WithoutCancel(ctx))
	defer release()
	if s.leaseKV != nil {
		wg.Go(func() { s.holdLease(lctx) })
	}
	pctx := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			s.publish(pctx)
			release()
			wg.Wait()
			return
		case <-s.wake:
			s.publish(pctx)
		}
	}
}

func (s *Service) publish(ctx context.Context) {
	if s.js == nil {
		return
	}
	s.qmu.Lock()
	queue, snap := s.queue.Drain(), s.snapshot
	s.snapshot = nil
	s.qmu.Unlock()
	if !s.notifying() && len(queue) > 0 {
		// Evaluated while holding a lease lost since: the next holder
		// evaluates the same conditions on the state saved before.
		s.log.Warn("alert transitions not published: the notifier lease was lost", "count", len(queue))
		return
	}
	for _, tr := range queue {
		b, err := json.Marshal(tr)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			_, err = s.js.Publish(cctx, metrics.AlertSubject(tr.State), b, jetstream.WithMsgID(msgID(tr)))
			cancel()
		}
		if err != nil {
			s.failed.Add(1)
			s.log.Warn("publish alert transition", "rule", tr.Rule, "state", tr.State, "err", err)
		}
	}
	if snap == nil {
		return
	}
	b := snap.AppendJSON(nil)
	if bytes.Equal(b, s.lastSaved) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.saveState(cctx, b); err != nil {
		s.failed.Add(1)
		s.log.Warn("save alert state", "bytes", len(b), "err", err)
		return
	}
	s.lastSaved = b
}
