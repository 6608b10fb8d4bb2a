package natsx

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sysperf/sysperf/internal/logtest"
)

func TestConnectErrorNamesURLWithoutPassword(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	log, _ := logtest.New(slog.LevelDebug)
	_, err = Connect("nats://user:secret@"+addr, "t", log, nats.Timeout(time.Second))
	if err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	if !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %q must name %s and hide the password", err, addr)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	tests := []struct {
		attempts int
		base     time.Duration
	}{
		{1, 250 * time.Millisecond},
		{2, 500 * time.Millisecond},
		{3, time.Second},
		{6, 8 * time.Second},
		{7, 10 * time.Second},
		{1000, 10 * time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			d := backoff(tc.attempts)
			lo, hi := tc.base*8/10, tc.base*12/10
			if d < lo || d > hi {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tc.attempts, d, lo, hi)
			}
		}
	}
}
