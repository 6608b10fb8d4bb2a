package natsx_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/poll"
)

// closedAddr is a loopback address nothing listens on: connections to it
// are refused until a test listens there.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestConnectWait: against a closed port the wait retries with back-off,
// logs one WARN however many attempts fail, and ends with the server
// appearing, with the bound running out (an error naming the URL), or
// with ctx.
func TestConnectWait(t *testing.T) {
	tests := []struct {
		name string
		wait time.Duration
		// then acts once three attempts have failed: start a server or
		// cancel the wait; nil lets the bound run out.
		then    func(t *testing.T, addr string, cancel context.CancelFunc)
		wantErr []string // substrings; nil: connected
		isCtx   bool     // the error is the context's
	}{
		{"server appears", 0, func(t *testing.T, addr string, _ context.CancelFunc) {
			e, err := natsd.Start(natsd.Config{Listen: addr, StoreDir: t.TempDir(), Open: true}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Shutdown)
		}, nil, false},
		{"bounded wait gives up", 1500 * time.Millisecond, nil, []string{"nats connect nats://", "not reachable within 1.5s (nats-wait)", "connection refused"}, false},
		{"cancelled wait stops", 0, func(_ *testing.T, _ string, cancel context.CancelFunc) { cancel() }, []string{"gave up waiting"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := closedAddr(t)
			log, logs := logtest.New(slog.LevelDebug)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			var states []error
			waiting := func(err error) {
				mu.Lock()
				states = append(states, err)
				mu.Unlock()
			}
			type result struct {
				err  error
				took time.Duration
			}
			done := make(chan result, 1)
			go func() {
				start := time.Now()
				nc, err := natsx.ConnectWait(ctx, "nats://"+addr, "hub", log, tc.wait, waiting)
				if nc != nil {
					if !nc.IsConnected() {
						err = errors.New("returned a connection that is not connected")
					}
					nc.Close()
				}
				done <- result{err, time.Since(start)}
			}()
			if tc.then != nil {
				poll.Until(t, "three failed attempts", func() bool {
					return strings.Count(logs.String(), "nats connect attempt failed") >= 3
				})
				tc.then(t, addr, cancel)
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(60 * time.Second): // a hang guard, not a timing
				t.Fatal("ConnectWait did not return")
			}
			t.Logf("returned after %s", r.took.Round(time.Millisecond))
			switch {
			case tc.wantErr == nil && r.err != nil:
				t.Fatalf("error %v, want connected", r.err)
			case tc.wantErr != nil && r.err == nil:
				t.Fatal("connected, want an error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q does not contain %q", r.err, w)
				}
			}
			if tc.isCtx != errors.Is(r.err, context.Canceled) {
				t.Errorf("error %v: is context.Canceled %v, want %v", r.err, !tc.isCtx, tc.isCtx)
			}
			out := logs.String()
			if n := strings.Count(out, "nats connect attempt failed"); n < 2 {
				t.Fatalf("%d failed attempts logged, want several:\n%s", n, out)
			}
			if n := strings.Count(out, "level=WARN"); n != 1 {
				t.Errorf("%d WARN lines, want 1 for the one state change:\n%s", n, out)
			}
			if !strings.Contains(out, `msg="nats not reachable, retrying with back-off until it is" component=nats conn=hub url=nats://`+addr) {
				t.Errorf("WARN does not name the URL:\n%s", out)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(states) < 2 || states[0] == nil {
				t.Fatalf("waiting told %v, want the reasons first", states)
			}
			if last := states[len(states)-1]; (tc.wantErr == nil) != (last == nil) {
				t.Errorf("waiting last told %v; want nil exactly when connected", last)
			}
		})
	}
}
