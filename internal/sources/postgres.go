// Package sources holds what the hub reads itself every interval: the
// PostgreSQL and Redis servers, the health of the containers and, when a
// site runs one, a Prometheus server. Each is registered with the hub as a
// hub.SourceSpec: Poll reads once within the caller's deadline and returns
// a source.Reading, which fills only the source's own section; the hub
// writes the update's sources, errors and stale from it. These are the
// hub's sources; what an agent reads on its host is package collect.
package sources

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sysperf/sysperf/internal/hub/source"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// defaultPollTimeout bounds a poll whose context has no deadline of its own;
// the hub normally gives a shorter one.
const defaultPollTimeout = 3 * time.Second

// PostgresConfig says which server and database to watch.
type PostgresConfig struct {
	// DSN is a libpq connection string or URL. The source opens one
	// connection of its own with it, never one of the application's.
	DSN string `yaml:"dsn"`
	// Database is the monitored database; empty means the DSN's. Watching
	// a database other than the one connected to keeps the monitor's own
	// queries out of the figures it reports.
	Database string `yaml:"database"`
	// PoolSize is the application's configured pool size. When > 0 it is
	// reported as connections_max, because that is the limit the
	// application hits first; otherwise max_connections is.
	PoolSize int `yaml:"pool_size"`
	// Timeout bounds a poll when its context has no deadline.
	Timeout time.Duration `yaml:"-"`
	// Extra makes the source append to databases.postgresql_extra instead
	// of filling databases.postgresql: a second database of the same site.
	Extra bool `yaml:"-"`
}

// Postgres reads pg_stat_database, pg_stat_activity and max_connections of
// one database over one dedicated connection, reconnecting after a failure.
type Postgres struct {
	cfg      PostgresConfig
	connCfg  *pgx.ConnConfig
	password string
	now      func() time.Time

	mu     sync.Mutex // serialises polls: they share conn and prev
	conn   *pgx.Conn
	prev   *pgReading
	up     bool
	reason string
	closed bool // after Close, polls no longer reconnect
}

// pgReading is one poll's cumulative counters and when they were read.
type pgReading struct {
	at       time.Time
	xacts    int64 // xact_commit + xact_rollback
	blksHit  int64
	blksRead int64
}

// NewPostgres checks the configuration; it does not connect, so a database
// that is down at start is reported by the first poll, not as a start-up
// failure.
func NewPostgres(cfg PostgresConfig) (*Postgres, error) {
	if cfg.DSN == "" {
		return nil, errors.New("postgres: empty DSN")
	}
	cc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx masks what it recognises; the whole DSN is not repeated.
		return nil, fmt.Errorf("postgres DSN %s: %s", redact.DSN(cfg.DSN), redact.Text(redact.Secret(err.Error(), passwordOf(cfg.DSN))))
	}
	if cfg.Database == "" {
		cfg.Database = cc.Database
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultPollTimeout
	}
	if cfg.PoolSize < 0 {
		return nil, fmt.Errorf("postgres: pool size %d is negative", cfg.PoolSize)
	}
	cc.RuntimeParams["application_name"] = "sysperf"
	// One simple-protocol round trip per poll: no prepared statements to
	// keep alive across reconnects.
	cc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	if cc.ConnectTimeout == 0 || cc.ConnectTimeout > cfg.Timeout {
		cc.ConnectTimeout = cfg.Timeout
	}
	return &Postgres{cfg: cfg, connCfg: cc, password: cc.Password, now: time.Now}, nil
}

// passwordOf extracts the password of a DSN pgx could not parse, so that
// its error can still be masked.
func passwordOf(dsn string) string {
	if cc, err := pgx.ParseConfig(dsn); err == nil {
		return cc.Password
	}
	return redact.Password(dsn)
}

// Name is the section the source fills; an extra database is named by
// its database so that every source has its own name.
func (p *Postgres) Name() string {
	if p.cfg.Extra {
		return metrics.SectionPostgreSQL + "_extra/" + p.cfg.Database
	}
	return metrics.SectionPostgreSQL
}

// place writes a reading where this source's database belongs.
func (p *Postgres) place(u *metrics.Update, v metrics.PostgreSQL) {
	if p.cfg.Extra {
		u.Databases.PostgreSQLExtra = append(u.Databases.PostgreSQLExtra, v)
		return
	}
	u.Databases.PostgreSQL = v
}

// reading is the answer of one poll: the primary database is credited to
// "postgres" in update.sources, an extra one has no entry there.
func (p *Postgres) reading(v metrics.PostgreSQL, reason string) source.Reading {
	r := source.Reading{Section: p.Name(), Reason: reason, Up: reason == ""}
	if !p.cfg.Extra {
		r.Via = "postgres"
	}
	r.Fill = func(u *metrics.Update) map[string]bool {
		p.place(u, v)
		return nil
	}
	return r
}

// Database is the monitored database's name.
func (p *Postgres) Database() string { return p.cfg.Database }

// Up says whether the last poll reached the database, and if not why.
func (p *Postgres) Up() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up, p.reason
}

// Close drops the dedicated connection.
func (p *Postgres) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return p.dropConn()
}

func (p *Postgres) dropConn() error {
	if p.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := p.conn.Close(ctx)
	p.conn = nil
	return err
}

// pgStatsQuery reads everything in one statement, so every figure comes
// from the same statistics snapshot (stats_fetch_consistency caches it per
// transaction). The monitor's own backend is left out of the activity.
const pgStatsQuery = `
SELECT d.xact_commit + d.xact_rollback,
       d.blks_hit,
       d.blks_read,
       d.deadlocks,
       pg_database_size(d.datid),
       (SELECT count(*) FROM pg_stat_activity a
         WHERE a.datname = d.datname AND a.backend_type = 'client backend'
           AND a.pid <> pg_backend_pid()),
       (SELECT EXTRACT(EPOCH FROM max(clock_timestamp() - a.query_start))::float8 FROM pg_stat_activity a
         WHERE a.datname = d.datname AND a.state = 'active'
           AND a.pid <> pg_backend_pid()),
       current_setting('max_connections')::int
  FROM pg_stat_database d
 WHERE d.datname = $1`

// Poll reads the database once. Any failure marks the section unreachable
// with the reason (never the password) and drops the connection, so the
// next poll reconnects and reports recovery.
func (p *Postgres) Poll(ctx context.Context) source.Reading {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	view, err := p.read(ctx)
	if err != nil {
		_ = p.dropConn()
		// After an outage the counters may have been reset; the next
		// figures start from a fresh reading rather than span the gap.
		p.prev = nil
		reason := joinLines(redact.Secret(err.Error(), p.password))
		p.up, p.reason = false, reason
		return p.reading(metrics.PostgreSQL{Status: metrics.StatusUnreachable, Reason: reason, Database: p.cfg.Database}, reason)
	}
	p.up, p.reason = true, ""
	return p.reading(view, "")
}

func (p *Postgres) read(ctx context.Context) (metrics.PostgreSQL, error) {
	if p.closed {
		return metrics.PostgreSQL{}, errors.New("postgres: source closed")
	}
	if p.conn == nil || p.conn.IsClosed() {
		c, err := pgx.ConnectConfig(ctx, p.connCfg)
		if err != nil {
			return metrics.PostgreSQL{}, fmt.Errorf("postgres connect: %w", err)
		}
		p.conn = c
	}
	var (
		cur              pgReading
		deadlocks, size  int64
		active, maxConns int
		longest          *float64
	)
	err := p.conn.QueryRow(ctx, pgStatsQuery, p.cfg.Database).Scan(
		&cur.xacts, &cur.blksHit, &cur.blksRead, &deadlocks, &size, &active, &longest, &maxConns)
	if errors.Is(err, pgx.ErrNoRows) {
		return metrics.PostgreSQL{}, fmt.Errorf("postgres: database %q not found in pg_stat_database", p.cfg.Database)
	}
	if err != nil {
		return metrics.PostgreSQL{}, fmt.Errorf("postgres stats query: %w", err)
	}
	cur.at = p.now()

	v := metrics.PostgreSQL{
		Status:            metrics.StatusHealthy,
		Database:          p.cfg.Database,
		ConnectionsActive: &active,
		Deadlocks:         &deadlocks,
		SizeBytes:         &size,
		LongestQueryS:     longest,
	}
	connMax, from := maxConns, metrics.ConnectionsMaxServer
	if p.cfg.PoolSize > 0 {
		connMax, from = p.cfg.PoolSize, metrics.ConnectionsMaxPool
	}
	v.ConnectionsMax, v.ConnectionsMaxFrom = &connMax, from
	v.CacheHitRatio, v.TransactionsPerMin = pgRates(p.prev, cur)
	p.prev = &cur
	return v, nil
}

// pgRates derives the interval figures. Until two readings exist (and after
// a counter reset) the cache hit ratio is the cumulative one and the
// transaction rate is unknown. An interval without a single block access
// has no ratio (null, not the previous value): there is nothing to
// measure, and repeating an old figure would pass stale data off as new.
func pgRates(prev *pgReading, cur pgReading) (hitRatio, tpm *float64) {
	if prev == nil || cur.xacts < prev.xacts || cur.blksHit < prev.blksHit || cur.blksRead < prev.blksRead {
		return ratio(cur.blksHit, cur.blksRead), nil
	}
	hitRatio = ratio(cur.blksHit-prev.blksHit, cur.blksRead-prev.blksRead)
	if elapsed := cur.at.Sub(prev.at); elapsed > 0 {
		r := float64(cur.xacts-prev.xacts) / elapsed.Minutes()
		tpm = &r
	}
	return hitRatio, tpm
}

// ratio is hits/(hits+misses) in percent, nil when there were neither.
func ratio(hits, misses int64) *float64 {
	if hits+misses <= 0 {
		return nil
	}
	r := float64(hits) / float64(hits+misses) * 100
	return &r
}

// joinLines joins the lines of a multi-line error, dropping repeats: pgx
// lists one "\n\t"-indented line per connection attempt, and with the
// default sslmode=prefer the same refused address twice, which made the
// dashboard's reason a wrapped block.
func joinLines(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	var parts []string
	seen := map[string]bool{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || seen[line] {
			continue
		}
		seen[line] = true
		parts = append(parts, line)
	}
	return strings.Join(parts, " ")
}
