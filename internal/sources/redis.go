package sources

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sysperf/sysperf/internal/hub/source"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Redis reads INFO from one server each poll, over a client of one
// connection with short timeouts and no retries, so a dead server is
// reported on the poll that finds it dead.
type Redis struct {
	opts     *redis.Options
	client   *redis.Client
	password string

	mu     sync.Mutex // serialises polls: they share prev and client
	prev   *redisReading
	up     bool
	reason string
	closed bool // after Close, polls no longer make a new client
}

type redisReading struct{ hits, misses int64 }

// NewRedis parses a redis:// or rediss:// URL; it does not connect.
func NewRedis(rawURL string) (*Redis, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %s: %s", redact.URL(rawURL), redact.Secret(err.Error(), redact.Password(rawURL)))
	}
	opts.PoolSize = 1
	opts.MinIdleConns = 0
	opts.MaxRetries = -1
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 2 * time.Second
	opts.WriteTimeout = 2 * time.Second
	opts.PoolTimeout = 2 * time.Second
	opts.ClientName = "sysperf"
	opts.DisableIdentity = true
	opts.Protocol = 2
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &Redis{opts: opts, client: redis.NewClient(opts), password: opts.Password}, nil
}

// Name is the section the source fills.
func (r *Redis) Name() string { return metrics.SectionRedis }

// Up says whether the last poll reached the server, and if not why.
func (r *Redis) Up() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up, r.reason
}

// Close closes the client.
func (r *Redis) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.client.Close()
}

// Poll reads INFO once.
func (r *Redis) Poll(ctx context.Context) source.Reading {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultPollTimeout)
		defer cancel()
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	view, err := r.read(ctx)
	if err != nil {
		r.prev = nil
		// go-redis backs off dialling a server it failed to reach; a fresh
		// client dials on the next poll, so recovery shows at once.
		if !r.closed {
			_ = r.client.Close()
			r.client = redis.NewClient(r.opts)
		}
		reason := redact.Secret(err.Error(), r.password)
		r.up, r.reason = false, reason
		return redisAnswer(metrics.Redis{Status: metrics.StatusUnreachable, Reason: reason}, reason)
	}
	r.up, r.reason = true, ""
	return redisAnswer(view, "")
}

func redisAnswer(v metrics.Redis, reason string) source.Reading {
	return source.Reading{
		Section: metrics.SectionRedis, Via: "redis", Reason: reason, Up: reason == "",
		Fill: func(u *metrics.Update) map[string]bool {
			u.Databases.Redis = v
			return nil
		},
	}
}

func (r *Redis) read(ctx context.Context) (metrics.Redis, error) {
	text, err := r.client.Info(ctx).Result()
	if err != nil {
		return metrics.Redis{}, fmt.Errorf("redis INFO: %w", err)
	}
	info, err := parseInfo(text)
	if err != nil {
		return metrics.Redis{}, fmt.Errorf("redis INFO: %w", err)
	}
	v := metrics.Redis{
		Status:           metrics.StatusHealthy,
		ConnectedClients: info.Int("connected_clients"),
		BlockedClients:   info.Int("blocked_clients"),
		OpsPerSec:        info.Float("instantaneous_ops_per_sec"),
		EvictedKeys:      info.Int("evicted_keys"),
	}
	// MiB: used_memory is bytes, and the dashboard's MB are binary
	// throughout (the GPU's GB are GiB as NVML counts them).
	if b := info.Int("used_memory"); b != nil {
		mb := float64(*b) / (1 << 20)
		v.MemoryMB = &mb
	}
	if ks, err := info.Keyspace(); err == nil && len(ks) > 0 {
		var keys int64
		for _, db := range ks {
			keys += db.Keys
		}
		v.Keys = &keys
	} else if err == nil {
		zero := int64(0) // an empty keyspace section is a server with no keys
		v.Keys = &zero
	}
	hits, misses := info.Int("keyspace_hits"), info.Int("keyspace_misses")
	if hits != nil && misses != nil {
		cur := redisReading{*hits, *misses}
		v.HitRatio = redisHitRatio(r.prev, cur)
		r.prev = &cur
	}
	return v, nil
}

// redisHitRatio is the percentage of lookups that hit over the interval.
// Until two readings exist (and after a counter reset) it is the
// cumulative ratio; an interval without a single lookup has none.
func redisHitRatio(prev *redisReading, cur redisReading) *float64 {
	if prev == nil || cur.hits < prev.hits || cur.misses < prev.misses {
		return ratio(cur.hits, cur.misses)
	}
	return ratio(cur.hits-prev.hits, cur.misses-prev.misses)
}

// Info is a parsed INFO reply: section (lower case, e.g. "stats") → field
// → raw value.
type Info map[string]map[string]string

// keyspaceDB is one line of INFO's keyspace section (db0:keys=1,...).
type keyspaceDB struct {
	Keys, Expires, AvgTTL int64
}

// parseInfo reads the INFO text format: "# Section" headers, "field:value"
// lines, blank lines between sections, CRLF or LF line ends. Fields before
// any header land in section "". A line that is neither is an error naming
// it, rather than a silently missing figure.
func parseInfo(text string) (Info, error) {
	info := Info{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "#"):
			section = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(line, "#")))
			if info[section] == nil {
				info[section] = map[string]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d %q: not field:value", n, line)
		}
		if info[section] == nil {
			info[section] = map[string]string{}
		}
		info[section][k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return info, nil
}

// Value finds a field in whichever section has it; Redis field names are
// unique across sections.
func (i Info) Value(field string) (string, bool) {
	for _, s := range i {
		if v, ok := s[field]; ok {
			return v, true
		}
	}
	return "", false
}

// Int is a field as an integer, nil when absent or not a number.
func (i Info) Int(field string) *int64 {
	s, ok := i.Value(field)
	if !ok {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

// Float is a field as a number, nil when absent or not a number.
func (i Info) Float(field string) *float64 {
	s, ok := i.Value(field)
	if !ok {
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	return &v
}

// Keyspace parses the keyspace section. It is an error when the reply had
// no keyspace section at all (INFO was asked for other sections).
func (i Info) Keyspace() (map[string]keyspaceDB, error) {
	sec, ok := i["keyspace"]
	if !ok {
		return nil, errors.New("no keyspace section")
	}
	out := make(map[string]keyspaceDB, len(sec))
	for db, line := range sec {
		var d keyspaceDB
		for _, kv := range strings.Split(line, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("keyspace %s: %q is not key=value", db, kv)
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("keyspace %s: %s: %w", db, k, err)
			}
			switch k {
			case "keys":
				d.Keys = n
			case "expires":
				d.Expires = n
			case "avg_ttl":
				d.AvgTTL = n
			}
		}
		out[db] = d
	}
	return out, nil
}

// RedisLog is go-redis's library logger (redis.SetLogger) as debug lines
// of log. Without it go-redis prints its own unstructured line to stderr
// on every poll of a dead server ("connection pool: failed to dial"),
// which the poll already reports as the section's reason.
type RedisLog struct{ Log *slog.Logger }

// Printf logs the library's message at debug level.
func (l RedisLog) Printf(ctx context.Context, format string, v ...any) {
	l.Log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
