package natsd

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/poll"
)

func startEmbedded(t *testing.T, listen, dir string) *Server {
	t.Helper()
	log, _ := logtest.New(slog.LevelDebug)
	e, err := Start(Config{Listen: listen, StoreDir: dir, Open: true}, log)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// listening connects to e in process as name, subscribes to subject and
// flushes, so that the server knows of the subscription before the test
// publishes; the connection closes when the test ends.
func listening(t *testing.T, e *Server, log *slog.Logger, name, subject string) (*nats.Conn, *nats.Subscription) {
	t.Helper()
	nc, err := e.Connect(name, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return nc, sub
}

func TestEmbeddedServesTCPAndInProcess(t *testing.T) {
	e := startEmbedded(t, "127.0.0.1:0", t.TempDir())
	url := e.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("ClientURL = %q, want a real port on 127.0.0.1", url)
	}
	log, _ := logtest.New(slog.LevelDebug)
	tcp, err := natsx.Connect(url, "test-tcp", log)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	_, sub := listening(t, e, log, "test-inproc", "x.y")
	if err := tcp.Publish("x.y", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("message from the TCP client did not reach the in-process one: %v", err)
	}
	if string(msg.Data) != "hello" {
		t.Fatalf("got %q", msg.Data)
	}
}

func TestEmbeddedInProcessOnly(t *testing.T) {
	e := startEmbedded(t, "", t.TempDir())
	if u := e.ClientURL(); u != "" {
		t.Fatalf("ClientURL = %q, want empty without a listener", u)
	}
	log, _ := logtest.New(slog.LevelDebug)
	nc, err := e.Connect("inproc", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Fatal("in-process connection not connected")
	}
}

func TestEmbeddedStartFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, listen, dir, want string
	}{
		{"port in use", busy.Addr().String(), t.TempDir(), busy.Addr().String()},
		{"bad address", "localhost", t.TempDir(), `"localhost"`},
		{"bad port", "127.0.0.1:http99", t.TempDir(), "bad port"},
		{"no store dir", "127.0.0.1:0", "", "store dir"},
		{"store dir is a file", "127.0.0.1:0", file, file},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := logtest.New(slog.LevelDebug)
			e, err := Start(Config{Listen: tc.listen, StoreDir: tc.dir, ReadyTimeout: 5 * time.Second}, log)
			if err == nil {
				e.Shutdown()
				t.Fatal("start-up succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestReconnectsAfterServerRestartAndLogs(t *testing.T) {
	dir := t.TempDir()
	log, _ := logtest.New(slog.LevelDebug)
	e1, err := Start(Config{Listen: "127.0.0.1:0", StoreDir: dir, Open: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	listen := strings.TrimPrefix(e1.ClientURL(), "nats://")

	clog, logs := logtest.New(slog.LevelDebug)
	nc, err := natsx.Connect(e1.ClientURL(), "agent", clog)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	e1.Shutdown()
	poll.Until(t, "the client to notice the outage", func() bool { return !nc.IsConnected() })

	e2 := startEmbedded(t, listen, dir)
	poll.Until(t, "the client to reconnect", nc.IsConnected)
	if err := nc.Publish("after", []byte("x")); err != nil {
		t.Fatalf("publish after reconnect: %v", err)
	}
	_ = e2
	poll.Until(t, "the reconnect log line", func() bool { return strings.Contains(logs.String(), "nats reconnected") })
	if !strings.Contains(logs.String(), "nats disconnected") {
		t.Fatalf("no disconnect log line in:\n%s", logs)
	}
}

// TestClosedConnectionsBounded: the server remembers at most
// maxClosedClients closed connections, however many close (agents
// reconnecting over a hub's life, the load tool's fill).
func TestClosedConnectionsBounded(t *testing.T) {
	e := startEmbedded(t, "127.0.0.1:0", t.TempDir())
	const n = maxClosedClients + 36
	for i := range n {
		nc, err := nats.Connect(e.ClientURL(), nats.Name("c"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}
	closed := func() int {
		cz, err := e.srv.Connz(&server.ConnzOptions{State: server.ConnClosed, Limit: 2 * n})
		if err != nil {
			t.Fatal(err)
		}
		return cz.Total
	}
	poll.Until(t, "the last connection's close recorded", func() bool {
		cz, err := e.srv.Connz(&server.ConnzOptions{State: server.ConnClosed, Limit: 2 * n})
		return err == nil && len(cz.Conns) > 0 && slices.ContainsFunc(cz.Conns, func(c *server.ConnInfo) bool { return c.Name == "c"+strconv.Itoa(n-1) })
	})
	if got := closed(); got != maxClosedClients {
		t.Fatalf("%d closed connections remembered after %d closed, want %d", got, n, maxClosedClients)
	}
}
