package sources

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
)

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePort is a port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(sourcestest.FreeAddr(t))
	p, _ := strconv.Atoi(port)
	return p
}

// realPGDSN is the machine's PostgreSQL, database test, trust auth.
func realPGDSN() string {
	if v := os.Getenv("SYSPERF_TEST_PG_DSN"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func connectRealPG(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, realPGDSN())
	if err != nil {
		sourcestest.Need(t, "PostgreSQL at %s: %v", redact.DSN(realPGDSN()), err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// privateDatabase creates a database of this test's own on the real server,
// so that no other test's load moves its counters, and drops it after.
func privateDatabase(t *testing.T, admin *pgx.Conn) string {
	t.Helper()
	name := "sysperf_src_" + randHex(t, 6)
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return name
}

// dsnFor replaces the database of a URL DSN.
func dsnFor(t *testing.T, base, db string) string {
	t.Helper()
	cc, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cc.User, cc.Host, cc.Port, db)
}

// pgServer is a private PostgreSQL cluster on a random port, so fault tests
// can stop and start it. It runs as the postgres user, which the server
// insists on.
type pgServer struct {
	t        *testing.T
	bin      string
	dir      string
	port     int
	password string
}

const pgBin = "/usr/lib/postgresql/15/bin"

func startPrivatePG(t *testing.T) *pgServer {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		sourcestest.Need(t, "PostgreSQL 15 binaries in %s: %v", pgBin, err)
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		sourcestest.Need(t, "postgres system user: %v", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	// t.TempDir is 0700 root; the server needs a directory it owns.
	dir, err := os.MkdirTemp("", "sysperf-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	s := &pgServer{t: t, bin: pgBin, dir: dir, port: freePort(t), password: "pw-" + randHex(t, 8)}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(pwfile, uid, gid); err != nil {
		t.Fatal(err)
	}
	s.run("initdb", "-D", s.data(), "-U", "postgres", "--pwfile", pwfile,
		"--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync", "-E", "UTF8")
	s.start()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *pgServer) data() string { return filepath.Join(s.dir, "data") }

func (s *pgServer) run(tool string, args ...string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(s.bin, tool)}, args...)...)
	cmd.Dir = s.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
}

func (s *pgServer) start() {
	s.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c autovacuum=off", s.port, s.dir)
	s.run("pg_ctl", "-D", s.data(), "-o", opts, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "30", "start")
}

func (s *pgServer) stop() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", filepath.Join(s.bin, "pg_ctl"), "-D", s.data(), "-m", "fast", "-w", "stop")
	_ = cmd.Run() // already stopped is fine
}

// dsn is a TCP URL with the given password (the cluster checks it).
func (s *pgServer) dsn(password string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", password, s.port)
}
