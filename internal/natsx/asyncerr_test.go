package natsx_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/poll"
)

// TestSlowConsumerLoggedOnce: a subscription that falls behind drops
// message after message, each an asynchronous error; the connection logs
// the first and holds back the rest of the interval, however many.
func TestSlowConsumerLoggedOnce(t *testing.T) {
	e, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Open: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	log, buf := logtest.New(slog.LevelInfo)
	nc, err := natsx.Connect(e.ClientURL(), "slow", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	release := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	sub, err := nc.Subscribe("slow", func(*nats.Msg) {
		select {
		case <-release:
		case <-done:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(1, -1); err != nil {
		t.Fatal(err)
	}
	// The client reports a subscription's drops once each time it falls
	// behind: it falls behind in each round, after one message let
	// through made room.
	const rounds = 50
	for i := range rounds {
		for range 3 {
			if err := nc.Publish("slow", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, "a message dropped", func() bool {
			n, _ := sub.Dropped()
			return n > i
		})
		release <- struct{}{}
	}
	poll.Until(t, "the slow consumer logged", func() bool { return strings.Contains(buf.String(), "slow consumer") })
	if n := strings.Count(buf.String(), "nats async error"); n != 1 {
		t.Fatalf("%d async error lines for %d rounds of drops, want 1:\n%s", n, rounds, buf)
	}
}
