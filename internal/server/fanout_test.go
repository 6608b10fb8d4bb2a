package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// A tick's host views are built on several goroutines: each client still
// gets its own host's view, exactly what encoding/json makes of it, every
// view is encoded once, and the tick counts every client queued.
func TestManyHostViewsBuiltInParallel(t *testing.T) {
	const hosts, per = 40, 2
	s := start(t, Config{MaxClients: hosts*per + 4})
	names := make([]string, hosts)
	for i := range names {
		names[i] = fmt.Sprintf("gpu%02d", i)
	}
	ts := time.Now().UTC()
	publishSite(t, s, site(ts, 4, names...))
	clients := make([]*websocket.Conn, 0, hosts*per)
	for i := range hosts * per {
		c, _, err := dialQuery(t, s, "view=host&host="+names[i%hosts])
		if err != nil {
			t.Fatal(err)
		}
		readRaw(t, c)
		clients = append(clients, c)
	}
	poll.Until(t, "the clients to register", func() bool { return s.Clients() == hosts*per })

	u := site(ts.Add(5*time.Second), 4, names...)
	before := s.Encodes()
	publishSite(t, s, u)
	if got := s.Encodes() - before; got != hosts {
		t.Fatalf("%d views encoded, want %d", got, hosts)
	}
	if n := s.cur.Load().clients.Load(); n != hosts*per {
		t.Fatalf("%d clients queued, want %d", n, hosts*per)
	}
	site := view.New(u)
	for i, c := range clients {
		v, _ := site.Host(names[i%hosts])
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := readRaw(t, c); !bytes.Equal(got, want) {
			t.Fatalf("client %d of %s got\n%s\nwant\n%s", i, names[i%hosts], got, want)
		}
	}
}

// A client that stops reading is dropped once a write has been blocked
// for WriteTimeout (the connection's write deadline), its queue never
// full, and the others keep receiving.
func TestStalledWriteTimesOut(t *testing.T) {
	s := start(t, Config{QueueLen: 4096, WriteTimeout: 300 * time.Millisecond})
	dial(t, s) // never reads
	fast := dial(t, s)
	fast.SetReadLimit(1 << 20)
	poll.Until(t, "both clients to register", func() bool { return s.Clients() == 2 })
	// Figures that do not deflate, so the socket buffers fill.
	rng := rand.New(rand.NewPCG(1, 2))
	pad := make([]byte, 48<<10)
	for i := range pad {
		pad[i] = byte('a' + rng.IntN(26))
	}
	for n := 1; s.Dropped() == 0; n++ {
		if n > 2000 {
			t.Fatal("stalled client never dropped")
		}
		b, _ := json.Marshal(map[string]any{"type": metrics.TypeUpdate, "n": n, "pad": string(pad)})
		s.Publish(b)
		if m := read(t, fast); m["n"] != float64(n) {
			t.Fatalf("fast client got update %v, want %d", m["n"], n)
		}
	}
	poll.Until(t, "the stalled client to go", func() bool { return s.Clients() == 1 })
}

// The write deadline does not outlive its write: after a quiet spell
// longer than WriteTimeout the library's own writes still go, so a
// shutdown's close frame reaches the client.
func TestWriteDeadlineClearedAfterWrite(t *testing.T) {
	const timeout = 100 * time.Millisecond
	s, err := Start(Config{Addr: "127.0.0.1:0", Tokens: []string{testToken}, WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	poll.Until(t, "the client to register", func() bool { return s.Clients() == 1 })
	s.Publish(update(1))
	if m := read(t, c); m["n"] != 1.0 {
		t.Fatalf("got %v", m)
	}
	wrote := time.Now()
	poll.Until(t, "a quiet spell past the write timeout", func() bool { return time.Since(wrote) > 3*timeout })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("read after shutdown: %v, want close status going away", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// While a ping waits for its pong, updates still go out: a client that
// reads but never answers pings gets the update published after the ping
// well before the ping times out, and is dropped for it once it has.
func TestUpdatesGoOutWhilePingWaits(t *testing.T) {
	const timeout = 3 * time.Second
	s := start(t, Config{PingInterval: 100 * time.Millisecond, WriteTimeout: timeout})
	conn, br := rawDial(t, s, "view=all")
	poll.Until(t, "the client to register", func() bool { return s.Clients() == 1 })
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	const opText, opPing = 0x1, 0x9
	for {
		if h0, _ := readFrame(t, br); h0&0x0f == opPing {
			break
		}
	}
	pinged := time.Now()
	s.Publish(update(5))
	// Read before the ping's timeout: an update stuck behind the ping
	// would come only with the drop, never.
	_ = conn.SetReadDeadline(pinged.Add(timeout * 2 / 3))
	h0, payload := readFrame(t, br)
	if h0&0x0f != opText || !bytes.Contains(payload, []byte(`"n":5`)) {
		t.Fatalf("frame %#x %s after the ping, want update 5", h0, payload)
	}
	poll.Until(t, "the client without pongs to be dropped", func() bool { return s.Dropped() == 1 && s.Clients() == 0 })
}
