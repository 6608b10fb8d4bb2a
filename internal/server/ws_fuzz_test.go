package server

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysperf/sysperf/internal/history"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// FuzzWSClientMessage sends arbitrary client messages over a real
// WebSocket to a real server with a real (empty) history: each one gets
// one answer, a history or an error, and the connection stays up.
func FuzzWSClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","range":"15m"}`, `{"type":"subscribe","range":"7d"}`, `{"type":"subscribe"}`,
		`{"type":"subscribe","range":"1y"}`, `{"type":"subscribe","range":{"a":1}}`, `{"type":"ping"}`,
		`[]`, `null`, ``, `{"type":"subscribe","range":"5m","host":"../../etc"}`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	s, err := Start(Config{Addr: "127.0.0.1:0", History: history.New(), Tokens: []string{testToken}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	conn := fuzzDial(f, s)
	f.Fuzz(func(t *testing.T, msg []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("no answer to %q: %v", msg, err)
		}
		var head struct {
			Type  string `json:"type"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			t.Fatalf("answer to %q is not JSON: %s", msg, b)
		}
		if head.Type != metrics.TypeHistory && (head.Type != "error" || head.Error == "") {
			t.Fatalf("answer to %q: %s", msg, b)
		}
	})
}

// fuzzDial opens /ws/system and reads the history sent on connect. The
// one place this file connects: add the login when the server wants one.
func fuzzDial(f *testing.F, s *Server) *websocket.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/ws/system", &websocket.DialOptions{HTTPHeader: signedIn()})
	if err != nil {
		f.Fatal(err)
	}
	c.SetReadLimit(16 << 20)
	f.Cleanup(func() { _ = c.CloseNow() })
	if _, _, err := c.Read(ctx); err != nil {
		f.Fatalf("history on connect: %v", err)
	}
	return c
}
