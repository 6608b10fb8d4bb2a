package sources

import (
	"context"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sysperf/sysperf/internal/hub/source"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// pgCounters is what the test reads itself from pg_stat_database.
type pgCounters struct{ xacts, hit, read int64 }

func readCounters(t *testing.T, ref *pgx.Conn, db string) pgCounters {
	t.Helper()
	var c pgCounters
	err := ref.QueryRow(context.Background(),
		`SELECT xact_commit + xact_rollback, blks_hit, blks_read FROM pg_stat_database WHERE datname = $1`, db).
		Scan(&c.xacts, &c.hit, &c.read)
	if err != nil {
		t.Fatalf("reference read: %v", err)
	}
	return c
}

// settle waits until the statistics stop moving. A PG 15 backend flushes
// its pending counters when it goes idle, but at most once a second and
// otherwise only after PGSTAT_IDLE_INTERVAL (10 s); the load connection
// therefore calls pg_stat_force_next_flush() last, and two equal reads
// 1.2 s apart then mean nothing is pending.
func settle(t *testing.T, ref *pgx.Conn, db string) pgCounters {
	t.Helper()
	prev := readCounters(t, ref, db)
	for range 30 {
		time.Sleep(1200 * time.Millisecond) // settled means unchanged across a flush period: the wait is the condition
		cur := readCounters(t, ref, db)
		if cur == prev {
			return cur
		}
		prev = cur
	}
	t.Fatalf("pg_stat_database of %s never settled", db)
	return prev
}

// fakeClock advances a minute per reading, so a rate per minute is the
// interval's delta itself.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Minute)
	return c.t
}

// apply writes a reading into an empty update as the hub does.
func apply(r source.Reading) *metrics.Update {
	u := &metrics.Update{}
	r.Apply(u)
	return u
}

func pctOf(hit, read int64) float64 { return float64(hit) / float64(hit+read) * 100 }

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestPostgresFiguresMatchPgStatDatabase drives load into a database of its
// own on the machine's PostgreSQL and checks that the source's TPM and
// cache hit ratio are exactly the interval's deltas of the counters a
// separate connection reads. The source connects to "test" and watches the
// private database, so its own queries do not move the counters it reports.
func TestPostgresFiguresMatchPgStatDatabase(t *testing.T) {
	t.Parallel()
	admin := connectRealPG(t)
	db := privateDatabase(t, admin)
	ctx := context.Background()

	load, err := pgx.Connect(ctx, dsnFor(t, realPGDSN(), db))
	if err != nil {
		t.Fatalf("load connection: %v", err)
	}
	defer load.Close(ctx)
	mustExec := func(sql string) {
		t.Helper()
		if _, err := load.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec(`CREATE TABLE t (id int PRIMARY KEY, v text)`)
	mustExec(`INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g`)
	// CREATE TABLE AS writes through a small ring, so most of this table
	// never enters shared buffers; a sequential scan of a table larger
	// than a quarter of them reads through a ring too. Scanning it makes
	// the interval's blks_read non-zero, so the ratio is a real one.
	mustExec(`CREATE TABLE big AS SELECT g, repeat(md5(g::text), 2) AS v FROM generate_series(1, 400000) g`)
	mustExec(`SELECT pg_stat_force_next_flush()`)

	var maxConns int
	if err := admin.QueryRow(ctx, "SELECT current_setting('max_connections')::int").Scan(&maxConns); err != nil {
		t.Fatal(err)
	}

	for attempt := 1; ; attempt++ {
		src, err := NewPostgres(PostgresConfig{DSN: realPGDSN(), Database: db})
		if err != nil {
			t.Fatal(err)
		}
		clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
		src.now = clock.now

		r0 := settle(t, admin, db)
		u1 := apply(src.Poll(ctx))
		p1 := u1.Databases.PostgreSQL

		const commits, rollbacks = 37, 5
		for i := range commits {
			if _, err := load.Exec(ctx, "UPDATE t SET v = v || 'x' WHERE id = $1", i+1); err != nil {
				t.Fatal(err)
			}
		}
		for range rollbacks {
			tx, err := load.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "DELETE FROM t WHERE id < 100"); err != nil {
				t.Fatal(err)
			}
			_ = tx.Rollback(ctx)
		}
		for _, q := range []string{"SELECT count(*) FROM t WHERE v LIKE '%x%'", "SELECT count(*) FROM big", "SELECT count(*) FROM big WHERE v LIKE '%ff%'"} {
			var n int
			if err := load.QueryRow(ctx, q).Scan(&n); err != nil {
				t.Fatal(err)
			}
		}

		mustExec(`SELECT pg_stat_force_next_flush()`)
		r1 := settle(t, admin, db)
		u2 := apply(src.Poll(ctx))
		p2 := u2.Databases.PostgreSQL
		var refActive int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`, db).Scan(&refActive); err != nil {
			t.Fatal(err)
		}

		// A third interval without any activity on the database.
		r2 := settle(t, admin, db)
		u3 := apply(src.Poll(ctx))
		p3 := u3.Databases.PostgreSQL
		r3 := settle(t, admin, db)
		_ = src.Close()

		// Autovacuum or anything else touching the database between a
		// reference read and the source's own would make the comparison
		// meaningless, not wrong: measure again.
		if r2 != r1 || r3 != r2 {
			if attempt < 3 {
				t.Logf("attempt %d: database touched outside the test (%v %v %v), measuring again", attempt, r1, r2, r3)
				continue
			}
			t.Fatalf("database %s kept changing without load: %v %v %v", db, r1, r2, r3)
		}

		for i, p := range []metrics.PostgreSQL{p1, p2, p3} {
			if p.Status != metrics.StatusHealthy {
				t.Fatalf("poll %d: status %q (%s)", i+1, p.Status, p.Reason)
			}
		}
		// First reading: cumulative ratio, no rate yet.
		if p1.TransactionsPerMin != nil {
			t.Errorf("poll 1: TPM %v before two readings exist, want null", *p1.TransactionsPerMin)
		}
		if p1.CacheHitRatio == nil || !approx(*p1.CacheHitRatio, pctOf(r0.hit, r0.read)) {
			t.Errorf("poll 1: cache hit %v, want cumulative %.6f", p1.CacheHitRatio, pctOf(r0.hit, r0.read))
		}
		// Second: the interval's deltas, exactly.
		wantTPM := float64(r1.xacts - r0.xacts)
		if wantTPM < commits+rollbacks {
			t.Fatalf("reference saw %v transactions, the test ran %d", wantTPM, commits+rollbacks)
		}
		if p2.TransactionsPerMin == nil || *p2.TransactionsPerMin != wantTPM {
			t.Errorf("poll 2: TPM %v, want %v (delta of xact_commit+xact_rollback over 1 min)", p2.TransactionsPerMin, wantTPM)
		}
		if r1.read == r0.read {
			t.Errorf("the interval read no block from disk; the hit ratio check is trivial (shared_buffers too large for the test table?)")
		}
		wantHit := pctOf(r1.hit-r0.hit, r1.read-r0.read)
		if p2.CacheHitRatio == nil || !approx(*p2.CacheHitRatio, wantHit) {
			t.Errorf("poll 2: cache hit %v, want interval %.6f (cumulative would be %.6f)", p2.CacheHitRatio, wantHit, pctOf(r1.hit, r1.read))
		}
		if p2.ConnectionsActive == nil || *p2.ConnectionsActive != refActive || refActive != 1 {
			t.Errorf("poll 2: connections_active %v, reference %d (the load connection)", p2.ConnectionsActive, refActive)
		}
		if p2.ConnectionsMax == nil || *p2.ConnectionsMax != maxConns {
			t.Errorf("poll 2: connections_max %v, want max_connections %d", p2.ConnectionsMax, maxConns)
		}
		if p2.ConnectionsMaxFrom != metrics.ConnectionsMaxServer {
			t.Errorf("poll 2: connections_max_from %q, want %q", p2.ConnectionsMaxFrom, metrics.ConnectionsMaxServer)
		}
		if p2.SizeBytes == nil || *p2.SizeBytes <= 0 || p2.Deadlocks == nil {
			t.Errorf("poll 2: size %v deadlocks %v", p2.SizeBytes, p2.Deadlocks)
		}
		// Third: nothing happened: zero transactions, no ratio at all.
		if p3.TransactionsPerMin == nil || *p3.TransactionsPerMin != 0 {
			t.Errorf("poll 3: TPM %v over an idle minute, want 0", p3.TransactionsPerMin)
		}
		if p3.CacheHitRatio != nil {
			t.Errorf("poll 3: cache hit %v with no block access, want null", *p3.CacheHitRatio)
		}
		t.Logf("interval: %d xacts (TPM %.0f), hit %d read %d → %.4f%% (cumulative %.4f%%); first poll cumulative %.4f%%",
			r1.xacts-r0.xacts, *p2.TransactionsPerMin, r1.hit-r0.hit, r1.read-r0.read, *p2.CacheHitRatio, pctOf(r1.hit, r1.read), *p1.CacheHitRatio)
		if u2.Sources[metrics.SectionPostgreSQL] != "postgres" {
			t.Errorf("sources = %v", u2.Sources)
		}
		return
	}
}

// TestPostgresActivity checks the backends count and the longest running
// query against pg_stat_activity while a query is running.
func TestPostgresActivity(t *testing.T) {
	t.Parallel()
	admin := connectRealPG(t)
	db := privateDatabase(t, admin)
	ctx := context.Background()

	sleeper, err := pgx.Connect(ctx, dsnFor(t, realPGDSN(), db))
	if err != nil {
		t.Fatal(err)
	}
	defer sleeper.Close(ctx)
	idle, err := pgx.Connect(ctx, dsnFor(t, realPGDSN(), db))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close(ctx)

	qctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = sleeper.Exec(qctx, "SELECT pg_sleep(60)")
	}()
	defer func() { stop(); <-done }()
	// Wait until the server shows the query as running.
	poll.Until(t, "pg_sleep active in pg_stat_activity", func() bool {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'`, db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})

	// The source connects to the monitored database itself here (Database
	// defaults to the DSN's) and must not count its own backend.
	src, err := NewPostgres(PostgresConfig{DSN: dsnFor(t, realPGDSN(), db), PoolSize: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Database() != db {
		t.Fatalf("Database() = %q, want the DSN's %q", src.Database(), db)
	}
	extra, err := NewPostgres(PostgresConfig{DSN: realPGDSN(), Database: db, Extra: true})
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	ue := apply(extra.Poll(ctx))
	if len(ue.Databases.PostgreSQLExtra) != 1 || ue.Databases.PostgreSQLExtra[0].Database != db ||
		ue.Databases.PostgreSQLExtra[0].Status != metrics.StatusHealthy || ue.Databases.PostgreSQL.Status != "" {
		t.Errorf("extra database: %+v", ue.Databases)
	}
	if extra.Name() == src.Name() {
		t.Errorf("extra source has the primary's name %q", extra.Name())
	}
	var before float64
	if err := admin.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM clock_timestamp() - query_start)::float8 FROM pg_stat_activity WHERE datname = $1 AND state = 'active'`, db).Scan(&before); err != nil {
		t.Fatal(err)
	}
	p := apply(src.Poll(ctx)).Databases.PostgreSQL
	var after float64
	if err := admin.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM clock_timestamp() - query_start)::float8 FROM pg_stat_activity WHERE datname = $1 AND state = 'active'`, db).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if p.Status != metrics.StatusHealthy {
		t.Fatalf("status %q: %s", p.Status, p.Reason)
	}
	if p.ConnectionsActive == nil || *p.ConnectionsActive != 2 {
		t.Errorf("connections_active %v, want 2 (sleeper and idle, not the monitor)", p.ConnectionsActive)
	}
	if p.ConnectionsMax == nil || *p.ConnectionsMax != 30 {
		t.Errorf("connections_max %v, want the pool size 30", p.ConnectionsMax)
	}
	if p.ConnectionsMaxFrom != metrics.ConnectionsMaxPool {
		t.Errorf("connections_max_from %q, want %q", p.ConnectionsMaxFrom, metrics.ConnectionsMaxPool)
	}
	if p.LongestQueryS == nil || *p.LongestQueryS < before || *p.LongestQueryS > after {
		t.Errorf("longest query %v s, want between the reference's %.3f and %.3f", p.LongestQueryS, before, after)
	}
}

// TestPostgresFaults runs a private cluster with password authentication:
// a wrong password, a stopped server and a server that never answers each
// mark the section unreachable on the very next poll with a reason that
// never shows the password; a restarted server is healthy again.
func TestPostgresFaults(t *testing.T) {
	srv := startPrivatePG(t)
	ctx := context.Background()
	pollCtx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 3*time.Second) }

	t.Run("wrong password", func(t *testing.T) {
		const wrong = "Wr0ng-Secret-9f1"
		src, err := NewPostgres(PostgresConfig{DSN: srv.dsn(wrong)})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		c, cancel := pollCtx()
		defer cancel()
		u := apply(src.Poll(c))
		p := u.Databases.PostgreSQL
		if p.Status != metrics.StatusUnreachable {
			t.Fatalf("status %q, want unreachable", p.Status)
		}
		if !strings.Contains(p.Reason, "password authentication failed") {
			t.Errorf("reason %q does not say why", p.Reason)
		}
		for _, text := range []string{p.Reason, u.Errors[metrics.SectionPostgreSQL], redact.DSN(srv.dsn(wrong))} {
			if strings.Contains(text, wrong) {
				t.Errorf("password shown in %q", text)
			}
		}
		if p.ConnectionsActive != nil || p.TransactionsPerMin != nil {
			t.Errorf("figures left on an unreachable database: %+v", p)
		}
		if up, why := src.Up(); up || why != p.Reason {
			t.Errorf("Up() = %v %q", up, why)
		}
	})

	t.Run("down and back", func(t *testing.T) {
		src, err := NewPostgres(PostgresConfig{DSN: srv.dsn(srv.password)})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		poll := func() metrics.PostgreSQL {
			c, cancel := pollCtx()
			defer cancel()
			return apply(src.Poll(c)).Databases.PostgreSQL
		}
		if p := poll(); p.Status != metrics.StatusHealthy {
			t.Fatalf("before: %q %s", p.Status, p.Reason)
		}
		srv.stop()
		p := poll()
		if p.Status != metrics.StatusUnreachable || p.Reason == "" {
			t.Fatalf("after stop: %q %q, want unreachable with a reason", p.Status, p.Reason)
		}
		if strings.Contains(p.Reason, srv.password) {
			t.Fatalf("password in reason %q", p.Reason)
		}
		t.Logf("down: %s", p.Reason)
		srv.start()
		if p := poll(); p.Status != metrics.StatusHealthy {
			t.Fatalf("after restart: %q %s", p.Status, p.Reason)
		}
		if up, _ := src.Up(); !up {
			t.Error("Up() false after recovery")
		}
	})

	t.Run("silent server times out", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close() // hold it open, say nothing
			}
		}()
		src, err := NewPostgres(PostgresConfig{DSN: "postgres://postgres:hush-pw@" + l.Addr().String() + "/x?sslmode=disable"})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		p := apply(src.Poll(c)).Databases.PostgreSQL
		if p.Status != metrics.StatusUnreachable || !strings.Contains(p.Reason, "timeout") {
			t.Fatalf("status %q reason %q, want unreachable by timeout", p.Status, p.Reason)
		}
		if strings.Contains(p.Reason, "hush-pw") {
			t.Fatalf("password in %q", p.Reason)
		}
	})
}

func TestNewPostgresRejects(t *testing.T) {
	t.Parallel()
	for _, cfg := range []PostgresConfig{
		{},
		{DSN: "postgres://u:leak-me@host:notaport/db"},
		{DSN: "postgres://u@h/db", PoolSize: -1},
	} {
		_, err := NewPostgres(cfg)
		if err == nil {
			t.Errorf("NewPostgres(%+v) accepted", cfg)
			continue
		}
		if strings.Contains(err.Error(), "leak-me") {
			t.Errorf("password in error %q", err)
		}
	}
}

func TestPgRates(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(0, 0)
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name     string
		prev     *pgReading
		cur      pgReading
		hit, tpm *float64
	}{
		{"first reading is cumulative", nil, pgReading{t0, 100, 90, 10}, f(90), nil},
		{"first reading without blocks", nil, pgReading{t0, 1, 0, 0}, nil, nil},
		{"interval deltas", &pgReading{t0, 100, 90, 10}, pgReading{t0.Add(30 * time.Second), 160, 189, 11}, f(99), f(120)},
		{"no block access", &pgReading{t0, 100, 90, 10}, pgReading{t0.Add(time.Minute), 100, 90, 10}, nil, f(0)},
		{"counter reset", &pgReading{t0, 100, 90, 10}, pgReading{t0.Add(time.Minute), 5, 3, 1}, f(75), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hit, tpm := pgRates(tt.prev, tt.cur)
			if !eqPtr(hit, tt.hit) || !eqPtr(tpm, tt.tpm) {
				t.Fatalf("got hit %v tpm %v, want %v %v", show(hit), show(tpm), show(tt.hit), show(tt.tpm))
			}
		})
	}
}

func eqPtr(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return approx(*a, *b)
}

func show(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestPostgresRefusedReason polls a port nobody listens on: the reason is
// one line that says the connection was refused, each attempt's line once
// (pgx lists every attempt on its own tab-indented line, the same address
// twice with the default sslmode=prefer).
func TestPostgresRefusedReason(t *testing.T) {
	src, err := NewPostgres(PostgresConfig{DSN: "postgres://postgres@" + sourcestest.FreeAddr(t) + "/test"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := apply(src.Poll(ctx)).Databases.PostgreSQL
	if p.Status != metrics.StatusUnreachable || !strings.Contains(p.Reason, "connection refused") {
		t.Fatalf("status %q reason %q, want unreachable, connection refused", p.Status, p.Reason)
	}
	if strings.ContainsAny(p.Reason, "\n\t") || strings.Count(p.Reason, "connection refused") != 1 {
		t.Fatalf("reason %q, want one line naming the refusal once", p.Reason)
	}
}

func TestJoinLines(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":                  "plain",
		"head:\n\ta\n\ta\n\tb\n": "head: a b",
		"":                       "",
	} {
		if got := joinLines(in); got != want {
			t.Errorf("joinLines(%q) = %q, want %q", in, got, want)
		}
	}
}
