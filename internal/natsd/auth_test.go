package natsd

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/poll"
)

// seedFile makes a user key and writes its seed where a credentials file
// would be.
func seedFile(t *testing.T) (pub, path string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ = kp.PublicKey()
	path = filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, path
}

func connectAs(t *testing.T, url, creds string, extra ...nats.Option) (*nats.Conn, error) {
	t.Helper()
	opts, err := natsx.Auth{Creds: creds}.Options()
	if err != nil {
		t.Fatal(err)
	}
	log, _ := logtest.New(slog.LevelDebug)
	nc, err := natsx.Connect(url, "test", log, append(append(opts, nats.MaxReconnects(0)), extra...)...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

func TestAuthRequiredAndPermissionsEnforced(t *testing.T) {
	pub, creds := seedFile(t)
	log, _ := logtest.New(slog.LevelDebug)
	e, err := Start(Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Users: []User{{Key: pub, Publish: []string{"ok.>"}}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)

	if _, err := connectAs(t, e.ClientURL(), ""); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect without a credential: %v, want an authorization violation", err)
	}
	_, stranger := seedFile(t)
	if _, err := connectAs(t, e.ClientURL(), stranger); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect with an unknown key: %v, want an authorization violation", err)
	}

	errs := make(chan error, 4)
	nc, err := connectAs(t, e.ClientURL(), creds, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect with the enrolled key: %v", err)
	}
	hub, sub := listening(t, e, log, "hub", ">")
	_ = nc.Publish("other.x", []byte("no"))
	_ = nc.Publish("ok.x", []byte("yes"))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || m.Subject != "ok.x" {
		t.Fatalf("first message the hub saw: %v %v, want ok.x only", m, err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("async error %v, want a permission violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no permission violation for other.x")
	}

	// Revocation: the connected client is cut off and cannot come back.
	if err := e.SetUsers(nil); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the revoked client to be disconnected", func() bool { return !nc.IsConnected() })
	if _, err := connectAs(t, e.ClientURL(), creds); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("reconnect after revocation: %v, want an authorization violation", err)
	}
	if !hub.IsConnected() {
		t.Fatal("the hub's own connection was dropped by the reload")
	}
}

func TestConnectionThatNeverAuthenticatesIsClosed(t *testing.T) {
	log, _ := logtest.New(slog.LevelDebug)
	e, err := Start(Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.ClientURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Read the INFO, then send nothing: the server must hang up.
	_ = c.SetReadDeadline(time.Now().Add(10 * authTimeout))
	buf := make([]byte, 4096)
	var got strings.Builder
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %s without CONNECT; read %q", 10*authTimeout, got.String())
			}
			break
		}
	}
	if !strings.Contains(got.String(), "Authentication Timeout") {
		t.Fatalf("server said %q, want an authentication timeout", got.String())
	}
}

func TestMaxPayloadRefusesHugeMessages(t *testing.T) {
	log, _ := logtest.New(slog.LevelDebug)
	e, err := Start(Config{StoreDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect("hub", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.MaxPayload(); got != natsx.MaxMsgSize {
		t.Fatalf("max payload %d, want %d", got, natsx.MaxMsgSize)
	}
	if err := nc.Publish("x", make([]byte, 2*natsx.MaxMsgSize)); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("publish of %d bytes: %v, want ErrMaxPayload", 2*natsx.MaxMsgSize, err)
	}
}

func TestFailedAuthenticationsDoNotFloodTheLog(t *testing.T) {
	log, logs := logtest.New(slog.LevelDebug)
	e, err := Start(Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	_, stranger := seedFile(t)
	for range 20 {
		if _, err := connectAs(t, e.ClientURL(), stranger); err == nil {
			t.Fatal("a stranger connected")
		}
	}
	if n := strings.Count(logs.String(), "authentication error"); n != 1 {
		t.Fatalf("%d log lines for 20 failed authentications, want 1 (the rest counted):\n%s", n, logs)
	}
}
