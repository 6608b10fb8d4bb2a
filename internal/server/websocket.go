package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/sysperf/sysperf/pkg/metrics"
)

const (
	websocketGoingAway = websocket.StatusGoingAway
	// readLimit bounds what a client may send: subscribe messages are tiny.
	readLimit = 4096
	// compressFrom is the smallest message sent compressed. coder/websocket
	// compresses each client's copy on its own (it cannot write one
	// pre-compressed frame to many connections), so compression costs CPU
	// per browser per tick: a 10 KB host view takes 80–200 µs of flate to
	// save 7 KB per 5 s, and 1,000 host-view browsers spent 80–200 ms of
	// CPU in a burst each tick, which is what delayed their updates and the
	// agents' acks (README, "Load"). Host views (≤ 32 KB) go as they are;
	// a fleet view of hundreds of hosts and a history still shrink about
	// five times, for the few browsers that get them.
	compressFrom = 32 << 10
)

// client is one WebSocket connection with its own bounded queue, so a
// slow reader costs only itself.
type client struct {
	conn *websocket.Conn
	// net is conn's connection, whose write deadline bounds each write.
	net   net.Conn
	send  chan frame
	ctx   context.Context
	close context.CancelFunc

	// view is what the client watches; guarded by Server.mu.
	view viewKey

	mu      sync.Mutex
	stopped bool
	code    websocket.StatusCode
	reason  string
}

// frame is one message queued to a client; t, for an update, is the tick
// it belongs to, told when the write returns.
type frame struct {
	b []byte
	t *tick
}

func (c *client) enqueue(b []byte, t *tick) bool {
	select {
	case c.send <- frame{b, t}:
		return true
	default:
		return false
	}
}

// stop ends the client's goroutines; the handler closes the connection
// with code.
// The first reason given wins.
func (c *client) stop(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if !c.stopped {
		c.stopped, c.code, c.reason = true, code, reason
	}
	c.mu.Unlock()
	c.close()
}

func (c *client) closeCode() (websocket.StatusCode, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

// dropLocked ends a client that cannot keep up; reason is sent in the
// close frame, so it must stay short (123 bytes). It reports whether the
// client was still connected; the caller logs once s.mu is released, so a
// slow log never holds up the fan-out.
func (s *Server) dropLocked(c *client, reason string) bool {
	if _, ok := s.clients[c]; !ok {
		return false
	}
	delete(s.clients, c)
	s.dropped.Add(1)
	c.stop(websocket.StatusPolicyViolation, reason)
	return true
}

func (s *Server) drop(c *client, reason string, err error) {
	s.mu.Lock()
	dropped := s.dropLocked(c, reason)
	s.mu.Unlock()
	if !dropped {
		return
	}
	if err != nil {
		s.log.Warn("websocket client dropped", "reason", reason, "err", err)
	} else {
		s.log.Warn("websocket client dropped", "reason", reason)
	}
}

// subscribeMsg is what a client may send. View and Host left out keep
// the client's view; Range left out is the default range.
type subscribeMsg struct {
	Type  string `json:"type"`
	View  string `json:"view"`
	Host  string `json:"host"`
	Range string `json:"range"`
}

func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	// Hijacked connections are not waited for by http.Server.Shutdown, so
	// Shutdown waits on wg; Add only while not closed, never during Wait.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	if n := s.ws.Add(1); n > int64(s.cfg.MaxClients) {
		s.ws.Add(-1)
		s.refuse(w)
		return
	}
	defer s.ws.Add(-1)
	// The server's read and write timeouts were set on the connection for
	// the HTTP request; a long-lived WebSocket manages its own.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})

	q := r.URL.Query()
	k, err := parseView(q.Get("view"), q.Get("host"), viewAll)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.checkHost(k); err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}

	// History first, then the latest update, then every update: queued
	// under the lock PublishUpdate takes, so nothing lands out of order. A
	// history not there yet refuses the connection, before the upgrade,
	// so the client retries and gets full charts instead of none.
	var history []byte
	if window := s.windowOf(k); window != nil {
		rng := q.Get("range")
		b, err := s.historyMessage(window, rng)
		switch {
		case err == nil:
			history = b
		case isUnavailable(err):
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		case isTooLarge(err) && rng != "":
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		case isTooLarge(err):
			// A client of every host's updates on a large fleet
			// connects without the history, as the seed's page did
			// before any was kept; nothing to warn of each time.
		case rng != "":
			writeError(w, http.StatusBadRequest, err.Error())
			return
		default:
			s.log.Warn("history on connect", "range", s.cfg.DefaultRange, "err", err)
		}
	}

	// Compression without context takeover: a message is compressed on
	// its own, so a connection holds no 32 KB window and flate state
	// between messages (they are pooled); only messages of compressFrom
	// bytes or more are compressed.
	hj := &hijacker{ResponseWriter: w}
	conn, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
		OriginPatterns:       s.cfg.OriginPatterns,
		CompressionMode:      websocket.CompressionNoContextTakeover,
		CompressionThreshold: compressFrom,
	})
	if err != nil {
		s.log.Debug("websocket accept", "err", err)
		return
	}
	conn.SetReadLimit(readLimit)
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{conn: conn, net: hj.conn, send: make(chan frame, s.cfg.QueueLen), ctx: ctx, close: cancel, view: k}
	if history != nil {
		c.enqueue(history, nil)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	if t := s.cur.Load(); t != nil {
		if b, err := t.get(k); err == nil {
			c.enqueue(b, nil)
		}
	}
	s.clients[c] = struct{}{}
	s.mu.Unlock()

	go s.readLoop(c)
	s.writeLoop(c)

	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
	code, reason := c.closeCode()
	if code == 0 {
		_ = conn.CloseNow()
		return
	}
	// Close waits a bounded time for the peer's close frame; a client
	// that reads nothing just has its connection cut.
	_ = conn.Close(code, reason)
}

// refuse answers an upgrade past MaxClients; the count is logged at most
// once a minute, so a flood of them cannot flood the log.
func (s *Server) refuse(w http.ResponseWriter) {
	n := s.refused.Add(1)
	if s.refusalLog.due(time.Now()) {
		s.log.Warn("websocket clients refused", "reason", "ws-max-clients reached", "max", s.cfg.MaxClients, "refused_total", n)
	}
	w.Header().Set("Retry-After", "30")
	writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many WebSocket clients: this hub serves at most %d (--ws-max-clients)", s.cfg.MaxClients))
}

// rateLog says when a repeated event is due a log line again: at most
// once a minute.
type rateLog struct{ last atomic.Int64 }

func (l *rateLog) due(now time.Time) bool {
	last := l.last.Load()
	return now.UnixNano()-last >= int64(time.Minute) && l.last.CompareAndSwap(last, now.UnixNano())
}

func (s *Server) writeLoop(c *client) {
	// Each client's first ping comes at a random point of its first
	// interval: browsers that connected together (a hub restart, the load
	// tool) would otherwise ping in one burst every interval, on top of a
	// tick's writes.
	ping := time.NewTimer(s.cfg.PingInterval/2 + rand.N(s.cfg.PingInterval/2+1))
	defer ping.Stop()
	// A ping waits for its pong on a goroutine of its own, so updates
	// keep going out meanwhile rather than queueing behind the round
	// trip; the next is timed from its answer.
	pong := make(chan error, 1)
	for {
		select {
		case <-c.ctx.Done():
			return
		case f := <-c.send:
			// The timeout is the connection's write deadline, not a
			// context's: a context.WithTimeout per write (a timer, and
			// registering with c.ctx, which still ends a write when
			// the client is stopped) was a quarter of the writers' CPU
			// with 1,000 browsers (BenchmarkFanOut). It is cleared after
			// the write, so the library's own writes (pongs, the close
			// frame) are not held to a stale one.
			err := c.net.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if err == nil {
				err = c.conn.Write(c.ctx, websocket.MessageText, f.b)
			}
			if err == nil {
				err = c.net.SetWriteDeadline(time.Time{})
			}
			if err != nil {
				if c.ctx.Err() == nil {
					s.drop(c, "write timed out", err)
				}
				return
			}
			if f.t != nil {
				f.t.wrote(time.Now())
			}
		case <-ping.C:
			go func() {
				ctx, cancel := context.WithTimeout(c.ctx, s.cfg.WriteTimeout)
				defer cancel()
				pong <- c.conn.Ping(ctx)
			}()
		case err := <-pong:
			if err != nil {
				if c.ctx.Err() == nil {
					s.drop(c, "no pong", err)
				}
				return
			}
			ping.Reset(s.cfg.PingInterval)
		}
	}
}

// readLoop answers subscribe messages and notices the client leaving.
// It also keeps pongs flowing, which Ping needs.
func (s *Server) readLoop(c *client) {
	for {
		// Not c.ctx: a cancelled read context cuts the connection, and a
		// stopped client is closed with a proper close frame instead.
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			// The client left or sent garbage framing: end it quietly.
			c.stop(0, "")
			return
		}
		var m subscribeMsg
		if err := json.Unmarshal(data, &m); err != nil || m.Type != "subscribe" {
			s.reply(c, errorMessage(`expected {"type":"subscribe","view":"host","host":"<name>","range":"5m"} (view "all", "host" or "fleet")`))
			continue
		}
		s.subscribe(c, m)
	}
}

// subscribe switches c to the view and range m asks for: the view's
// history (none for a fleet view without FleetWindow), then its newest update. A
// subscribe that fails is answered with an error and changes nothing.
func (s *Server) subscribe(c *client, m subscribeMsg) {
	s.mu.Lock()
	cur := c.view
	s.mu.Unlock()
	k, err := parseView(m.View, m.Host, cur)
	if err == nil {
		err = s.checkHost(k)
	}
	if err != nil {
		s.reply(c, errorMessage(err.Error()))
		return
	}
	var history []byte
	window := s.windowOf(k)
	switch {
	case window != nil:
		if history, err = s.historyMessage(window, m.Range); err != nil {
			s.reply(c, errorMessage(err.Error()))
			return
		}
	case k == cur && k == viewFleet:
		s.reply(c, errorMessage("the fleet view has no history yet"))
		return
	case k == cur:
		s.reply(c, errorMessage("history not configured"))
		return
	}
	// Under s.mu, as PublishUpdate queues: the history and the view's
	// newest message go before any update of the new view.
	s.mu.Lock()
	if _, ok := s.clients[c]; !ok {
		s.mu.Unlock()
		return // dropped meanwhile
	}
	c.view = k
	ok := history == nil || c.enqueue(history, nil)
	if t := s.cur.Load(); ok && k != cur && t != nil {
		if b, err := t.get(k); err == nil {
			ok = c.enqueue(b, nil)
		}
	}
	dropped := !ok && s.dropLocked(c, "send queue full")
	s.mu.Unlock()
	if dropped {
		s.log.Warn("websocket client dropped", "reason", "send queue full")
	}
}

// checkHost refuses a host view of a host the newest update does not
// have, naming the hosts it has. Before the first update any host goes.
func (s *Server) checkHost(k viewKey) error {
	host := k.hostOf()
	t := s.cur.Load()
	if host == "" || t == nil || t.site.Has(host) {
		return nil
	}
	return errUnknownHost{host, t.site.Known(knownNames)}
}

func (s *Server) reply(c *client, b []byte) {
	if !c.enqueue(b, nil) {
		s.drop(c, "send queue full", nil)
	}
}

// historyMessage is the performance_history of a view at rng, read
// from its window (windowOf).
func (s *Server) historyMessage(window viewWindow, rng string) ([]byte, error) {
	if rng == "" {
		rng = s.cfg.DefaultRange
	}
	h, err := window(time.Now(), rng)
	var uh unknownHost
	if isUnavailable(err) || errors.As(err, &uh) || isTooLarge(err) {
		return nil, err
	}
	if err != nil {
		return nil, errors.New(rangeError(rng, err))
	}
	h.Type = metrics.TypeHistory
	if h.Range == "" {
		h.Range = rng
	}
	if h.Points == nil {
		h.Points = []metrics.Point{}
	}
	return json.Marshal(h)
}

func errorMessage(msg string) []byte {
	b, _ := json.Marshal(map[string]string{"type": "error", "error": msg})
	return b
}

// writeBuffer is each connection's write buffer. coder/websocket writes
// a message's header and payload through the bufio.Writer the hijack
// returns, which net/http makes 4 KB: a 10 KB host view then went out in
// two write(2) calls and woke its reader twice. 16 KB takes a host view
// (≤ 32 KB by design, about 10 KB for 8 GPUs) in one; 16 MB for 1,000
// browsers. A bigger message still goes, in more writes.
const writeBuffer = 16 << 10

// hijacker hands websocket.Accept the hijacked connection with a
// writeBuffer-sized writer, and keeps the connection for its deadlines.
type hijacker struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	// net/http has written the handshake's response out by now; flushed
	// anyway, so nothing the old writer holds is lost.
	if err := brw.Writer.Flush(); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("hijack: flush the handshake: %w", err)
	}
	brw.Writer = bufio.NewWriterSize(conn, writeBuffer)
	h.conn = conn
	return conn, brw, nil
}

// Unwrap is for http.ResponseController.
func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
