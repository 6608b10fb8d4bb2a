package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Views a client may ask for (the subscribe message's and /ws/system's
// "view"). A client that names none gets viewAll, the full update: the
// seed's feed, byte for byte.
const (
	viewAll   = "all"
	viewHost  = "host"
	viewFleet = "fleet"
)

// viewKey names one distinct view: "all", "fleet" or "host:<name>".
type viewKey string

func hostKey(host string) viewKey { return viewKey(viewHost + ":" + host) }

// tick is one update and the views built from it so far: each view is
// built and encoded at most once, on first demand, and its bytes shared
// by every client of it.
type tick struct {
	site *view.Site
	// full is the whole update's JSON: the hub's, else encoded on first
	// demand (a fleet's is megabytes nobody may read).
	fullOnce sync.Once
	full     []byte
	fullErr  error
	encodes  *atomic.Uint64

	// built holds each view asked for, built once: the tick's views are
	// built in parallel (PublishUpdate), so one view's encoding holds up
	// no other's; mu guards the map only.
	mu    sync.Mutex
	built map[viewKey]*builtView

	// What the fan-out took, from the update's own timestamp (at): when
	// PublishUpdate began and when it had queued the tick to every client,
	// and, as the clients' writers report, how many writes returned and
	// when the latest did. Logged when the next tick replaces this one.
	at, start                      time.Time
	clients, queued, written, last atomic.Int64 // queued, last: UnixNano
}

// wrote notes that one client's write of this tick returned at now.
func (t *tick) wrote(now time.Time) {
	t.written.Add(1)
	n := now.UnixNano()
	for {
		l := t.last.Load()
		if n <= l || t.last.CompareAndSwap(l, n) {
			return
		}
	}
}

// report logs the tick's fan-out: the share of the update's age at the
// browsers that the hub spent before the bytes were in the sockets.
func (t *tick) report(log *slog.Logger) {
	if t.written.Load() == 0 || !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	after := func(n int64) time.Duration { return time.Unix(0, n).Sub(t.at) }
	log.Debug("websocket fan-out", "clients", t.clients.Load(), "written", t.written.Load(),
		"published_after", t.start.Sub(t.at), "queued_after", after(t.queued.Load()), "last_written_after", after(t.last.Load()))
}

// errUnknownHost is a host view of a host the update does not have.
type errUnknownHost struct {
	host, known string
}

func (e errUnknownHost) Error() string {
	return fmt.Sprintf("unknown host %q (known hosts: %s)", e.host, e.known)
}

// knownNames caps the hosts an unknown-host error lists.
const knownNames = 50

// builtView is one view of a tick, built on first demand.
type builtView struct {
	once sync.Once
	b    []byte
	err  error
}

// get returns the encoded view; an unknown host is an errUnknownHost.
// Safe for concurrent use; each view is built once.
func (t *tick) get(k viewKey) ([]byte, error) {
	if k == viewAll {
		t.fullOnce.Do(func() {
			if t.full == nil {
				t.full, t.fullErr = json.Marshal(t.site.Update())
			}
		})
		return t.full, t.fullErr
	}
	t.mu.Lock()
	v := t.built[k]
	if v == nil {
		v = &builtView{}
		t.built[k] = v
	}
	t.mu.Unlock()
	v.once.Do(func() { v.b, v.err = t.build(k) })
	return v.b, v.err
}

func (t *tick) build(k viewKey) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case k == viewFleet:
		b, err = json.Marshal(t.site.Fleet())
	case k.hostOf() != "":
		host := k.hostOf()
		var ok bool
		b, ok, err = t.site.HostJSON(host)
		if !ok {
			return nil, errUnknownHost{host, t.site.Known(knownNames)}
		}
	default:
		return nil, fmt.Errorf("unknown view %q", k)
	}
	if err != nil {
		return nil, fmt.Errorf("encode view %s: %w", k, err)
	}
	t.encodes.Add(1)
	return b, nil
}

// PublishUpdate hands the server a new update and full, its JSON (type
// performance_update), or nil to have it encoded when first asked for.
// Each view a client watches is built and encoded once and the same bytes
// queued to each of its clients; views nobody watches are not built. It
// never blocks on a client: one that cannot take an update is dropped. u
// must not be modified afterwards.
func (s *Server) PublishUpdate(u *metrics.Update, full []byte) {
	t := &tick{site: view.New(u), full: full, encodes: &s.encodes, built: map[viewKey]*builtView{}, at: u.Timestamp, start: time.Now()}
	if prev := s.cur.Swap(t); prev != nil {
		prev.report(s.log)
	}

	// Each view is built outside s.mu, so connecting clients wait for no
	// encoding, and its clients are queued as soon as it is built: the
	// first views' browsers are written to while the next are built.
	s.mu.Lock()
	byView := map[viewKey][]*client{}
	for c := range s.clients {
		byView[c.view] = append(byView[c.view], c)
	}
	s.mu.Unlock()
	keys := make([]viewKey, 0, len(byView))
	for k := range byView {
		keys = append(keys, k)
	}
	// The views are built on every core: with hundreds of host views a
	// tick, one goroutine building them all shares its core with the
	// writers of the views already queued, and the last views' browsers
	// waited for it (README, "Load").
	var next, dropped atomic.Int64
	build := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(keys) {
				return
			}
			dropped.Add(int64(s.queue(t, keys[i], byView[keys[i]])))
		}
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(keys)) - 1 {
		wg.Go(build)
	}
	build()
	wg.Wait()
	t.queued.Store(time.Now().UnixNano())
	if n := dropped.Load(); n > 0 {
		s.log.Warn("websocket clients dropped", "reason", "send queue full", "clients", n)
	}
}

// queue builds view k of t and queues it to cs, its clients when the tick
// began; it returns how many it dropped for a full queue.
func (s *Server) queue(t *tick, k viewKey, cs []*client) (dropped int) {
	b, err := t.get(k)
	if err != nil {
		// A host gone from the update: its clients wait for it.
		s.log.Debug("view not built", "view", k, "err", err)
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		if _, ok := s.clients[c]; !ok || c.view != k {
			// Gone, or switched view since: subscribe queued this tick's
			// message of its new view.
			continue
		}
		if !c.enqueue(b, t) && s.dropLocked(c, "send queue full") {
			dropped++
		}
		t.clients.Add(1)
	}
	return dropped
}

// Publish is PublishUpdate for a caller that has only the JSON.
func (s *Server) Publish(update []byte) {
	var u metrics.Update
	if err := json.Unmarshal(update, &u); err != nil {
		s.log.Error("publish: not an update", "err", err)
		return
	}
	s.PublishUpdate(&u, update)
}

// View returns the encoded view of the newest update for the hub's NATS
// publisher: "fleet", or a host's name for its view. ok is false before
// the first update and for a host the update does not have.
func (s *Server) View(host string) (b []byte, ok bool) {
	t := s.cur.Load()
	if t == nil {
		return nil, false
	}
	k := viewKey(viewFleet)
	if host != "" {
		k = hostKey(host)
	}
	b, err := t.get(k)
	return b, err == nil
}

// FleetHistoryReader is the fleet view's history (the site's totals over
// a range). A Config.History that also has FleetWindow sends it to a
// fleet-view client on connect and on a range switch, as Window is sent
// to the other views; one without it sends the fleet view no history.
type FleetHistoryReader interface {
	FleetWindow(now time.Time, rng string) (metrics.History, error)
}

// viewWindow reads one view's history at a range.
type viewWindow func(now time.Time, rng string) (metrics.History, error)

// windowOf is where view k's history comes from; nil: k has none.
func (s *Server) windowOf(k viewKey) viewWindow {
	if s.cfg.History == nil {
		return nil
	}
	if k == viewFleet {
		if f, ok := s.cfg.History.(FleetHistoryReader); ok {
			return f.FleetWindow
		}
		return nil
	}
	host := k.hostOf()
	return func(now time.Time, rng string) (metrics.History, error) { return s.cfg.History.Window(now, rng, host) }
}

// Encodes counts the views encoded since start (the full update, encoded
// by the hub, is not counted).
func (s *Server) Encodes() uint64 { return s.encodes.Load() }

// parseView checks a requested view: "" keeps cur.
func parseView(name, host string, cur viewKey) (viewKey, error) {
	switch name {
	case "":
		if host != "" {
			return hostKey(host), nil
		}
		return cur, nil
	case viewAll, viewFleet:
		if host != "" {
			return "", fmt.Errorf("view %q takes no host", name)
		}
		return viewKey(name), nil
	case viewHost:
		if host == "" {
			return "", errors.New(`view "host" needs a host`)
		}
		return hostKey(host), nil
	}
	return "", fmt.Errorf("unknown view %q: use %q, %q or %q", name, viewAll, viewHost, viewFleet)
}

// hostOf is the host of a host view, "" for the others.
func (k viewKey) hostOf() string {
	if len(k) > len(viewHost)+1 && k[:len(viewHost)+1] == viewHost+":" {
		return string(k[len(viewHost)+1:])
	}
	return ""
}

// hosts serves GET /api/v1/hosts: the fleet view.
func (s *Server) hostsView(w http.ResponseWriter, _ *http.Request) {
	s.serveView(w, viewFleet)
}

func (s *Server) serveView(w http.ResponseWriter, k viewKey) {
	t := s.cur.Load()
	if t == nil {
		writeError(w, http.StatusServiceUnavailable, "no update yet: the hub builds the first one within an interval of start")
		return
	}
	b, err := t.get(k)
	var uh errUnknownHost
	switch {
	case errors.As(err, &uh):
		writeError(w, http.StatusNotFound, uh.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}
