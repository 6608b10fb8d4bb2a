package sources

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// A reply as Redis 7.0 sends it (CRLF, sections, keyspace), trimmed.
const infoReply = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n" +
	"# Clients\r\nconnected_clients:8\r\nblocked_clients:2\r\n\r\n" +
	"# Memory\r\nused_memory:1509949\r\nused_memory_human:1.44M\r\n\r\n" +
	"# Stats\r\ninstantaneous_ops_per_sec:17\r\nevicted_keys:3\r\nkeyspace_hits:1\r\nkeyspace_misses:9999\r\n\r\n" +
	"# Keyspace\r\ndb0:keys=12,expires=2,avg_ttl=3600\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n"

func TestParseInfo(t *testing.T) {
	t.Parallel()
	info, err := parseInfo(infoReply)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := info.Value("redis_version"); v != "7.0.15" {
		t.Errorf("redis_version %q", v)
	}
	if info["clients"]["connected_clients"] != "8" {
		t.Errorf("sections: %v", info)
	}
	if p := info.Int("used_memory"); p == nil || *p != 1509949 {
		t.Errorf("used_memory %v", p)
	}
	if p := info.Int("used_memory_human"); p != nil {
		t.Errorf("1.44M read as int %d", *p)
	}
	if p := info.Int("no_such_field"); p != nil {
		t.Errorf("absent field read as %d", *p)
	}
	ks, err := info.Keyspace()
	if err != nil {
		t.Fatal(err)
	}
	if ks["db0"] != (keyspaceDB{12, 2, 3600}) || ks["db3"] != (keyspaceDB{1, 0, 0}) || len(ks) != 2 {
		t.Errorf("keyspace %v", ks)
	}

	for _, bad := range []string{"# Stats\nno colon here\n", ":value\n"} {
		if _, err := parseInfo(bad); err == nil {
			t.Errorf("parseInfo(%q) accepted", bad)
		}
	}
	info, _ = parseInfo("# Keyspace\ndb0:keys=x\n")
	if _, err := info.Keyspace(); err == nil {
		t.Error("bad keyspace line accepted")
	}
	info, _ = parseInfo("# Stats\nkeyspace_hits:1\n")
	if _, err := info.Keyspace(); err == nil {
		t.Error("missing keyspace section not reported")
	}
}

func TestRedisHitRatio(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name string
		prev *redisReading
		cur  redisReading
		want *float64
	}{
		{"first is cumulative", nil, redisReading{1, 9999}, f(0.01)},
		{"no lookups ever", nil, redisReading{0, 0}, nil},
		{"interval", &redisReading{10, 10}, redisReading{40, 20}, f(75)},
		{"no traffic in interval", &redisReading{10, 10}, redisReading{10, 10}, nil},
		{"all misses", &redisReading{10, 10}, redisReading{10, 15}, f(0)},
		{"reset", &redisReading{10, 10}, redisReading{1, 3}, f(25)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redisHitRatio(tt.prev, tt.cur); !eqPtr(got, tt.want) {
				t.Fatalf("got %v want %v", show(got), show(tt.want))
			}
		})
	}
}

func infoOf(t *testing.T, c *redis.Client) Info {
	t.Helper()
	text, err := c.Info(context.Background()).Result()
	if err != nil {
		t.Fatalf("reference INFO: %v", err)
	}
	info, err := parseInfo(text)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func pollRedis(t *testing.T, r *Redis) (metrics.Redis, *metrics.Update) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	u := apply(r.Poll(ctx))
	return u.Databases.Redis, u
}

// TestRedisFiguresMatchInfo loads a private server with GET hits and misses
// and checks the hit ratio against the deltas of keyspace_hits/misses read
// by a separate client right around the source's polls (INFO itself moves
// neither counter), then that an idle interval has no ratio at all.
func TestRedisFiguresMatchInfo(t *testing.T) {
	t.Parallel()
	srv := sourcestest.StartRedis(t)
	ref := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 2 * time.Second, Protocol: 2})
	defer ref.Close()
	ctx := context.Background()

	src, err := NewRedis("redis://" + srv.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	prefix := "sysperf-test:" + randHex(t, 4) + ":"
	for i := range 20 {
		if err := ref.Set(ctx, prefix+string(rune('a'+i)), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Some traffic before the first poll, so its cumulative ratio differs
	// from the interval's.
	ref.Get(ctx, prefix+"a")
	ref.Get(ctx, prefix+"missing-0")

	i0 := infoOf(t, ref)
	p1, _ := pollRedis(t, src)
	const hits, misses = 30, 11
	for i := range hits {
		if err := ref.Get(ctx, prefix+string(rune('a'+i%20))).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range misses {
		if err := ref.Get(ctx, prefix+"missing-"+string(rune('a'+i))).Err(); err != redis.Nil {
			t.Fatalf("miss expected, got %v", err)
		}
	}
	// A client blocked in BLPOP shows in blocked_clients.
	blocker := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2})
	defer blocker.Close()
	bctx, unblock := context.WithCancel(ctx)
	defer unblock()
	done := make(chan struct{})
	go func() { defer close(done); blocker.BLPop(bctx, 30*time.Second, prefix+"queue") }()
	poll.Until(t, "the BLPOP client in blocked_clients", func() bool {
		b := infoOf(t, ref).Int("blocked_clients")
		return b != nil && *b == 1
	})
	i1 := infoOf(t, ref)
	p2, u2 := pollRedis(t, src)
	i1b := infoOf(t, ref)
	p3, _ := pollRedis(t, src)
	ref.RPush(ctx, prefix+"queue", "wake")
	<-done
	unblock()

	h0, m0 := *i0.Int("keyspace_hits"), *i0.Int("keyspace_misses")
	h1, m1 := *i1.Int("keyspace_hits"), *i1.Int("keyspace_misses")
	if h1-h0 != hits || m1-m0 != misses {
		t.Fatalf("reference deltas %d/%d, the test made %d/%d", h1-h0, m1-m0, hits, misses)
	}
	if *i1b.Int("keyspace_hits") != h1 || *i1b.Int("keyspace_misses") != m1 {
		t.Fatal("counters moved during the poll; the comparison would be unfair")
	}
	if p1.HitRatio == nil || !approx(*p1.HitRatio, pctOf(h0, m0)) {
		t.Errorf("poll 1: hit ratio %v, want cumulative %v", show(p1.HitRatio), pctOf(h0, m0))
	}
	want := pctOf(h1-h0, m1-m0)
	if p2.HitRatio == nil || !approx(*p2.HitRatio, want) {
		t.Errorf("poll 2: hit ratio %v, want the interval's %v (cumulative would be %v)", show(p2.HitRatio), want, pctOf(h1, m1))
	}
	if p3.HitRatio != nil {
		t.Errorf("poll 3: hit ratio %v with no lookups, want null", *p3.HitRatio)
	}
	if p2.Status != metrics.StatusHealthy || u2.Sources[metrics.SectionRedis] != "redis" {
		t.Errorf("status %q sources %v", p2.Status, u2.Sources)
	}
	refClients := *i1.Int("connected_clients")
	if p2.ConnectedClients == nil || *p2.ConnectedClients != refClients || refClients != 3 {
		// ref, blocker and the source's own connection.
		t.Errorf("connected_clients %v, reference %d", show64(p2.ConnectedClients), refClients)
	}
	if p2.BlockedClients == nil || *p2.BlockedClients != 1 {
		t.Errorf("blocked_clients %v, want 1", show64(p2.BlockedClients))
	}
	if p2.Keys == nil || *p2.Keys != 20 {
		t.Errorf("keys %v, want 20", show64(p2.Keys))
	}
	mem := *i1b.Int("used_memory")
	if p2.MemoryMB == nil || math.Abs(*p2.MemoryMB-float64(mem)/(1<<20)) > 0.1 {
		t.Errorf("memory_mb %v, reference used_memory %d B", show(p2.MemoryMB), mem)
	}
	if p2.OpsPerSec == nil || p2.EvictedKeys == nil || *p2.EvictedKeys != 0 {
		t.Errorf("ops %v evicted %v", show(p2.OpsPerSec), show64(p2.EvictedKeys))
	}
	t.Logf("interval: %d hits %d misses → %.4f%% (source %.4f%%, cumulative %.4f%%)", h1-h0, m1-m0, want, *p2.HitRatio, pctOf(h1, m1))
}

func show64(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestRedisFaults: killed server → unreachable on the next poll, restarted
// → healthy; a wrong password → unreachable without the password.
func TestRedisFaults(t *testing.T) {
	t.Run("down and back", func(t *testing.T) {
		srv := sourcestest.StartRedis(t)
		src, err := NewRedis("redis://" + srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if p, _ := pollRedis(t, src); p.Status != metrics.StatusHealthy {
			t.Fatalf("before: %q %s", p.Status, p.Reason)
		}
		srv.Stop()
		p, u := pollRedis(t, src)
		if p.Status != metrics.StatusUnreachable || p.Reason == "" || u.Errors[metrics.SectionRedis] != p.Reason {
			t.Fatalf("after kill: %q %q errors %v", p.Status, p.Reason, u.Errors)
		}
		if p.ConnectedClients != nil || p.MemoryMB != nil || p.HitRatio != nil {
			t.Errorf("figures on a dead server: %+v", p)
		}
		t.Logf("down: %s", p.Reason)
		if up, _ := src.Up(); up {
			t.Error("Up() true on a dead server")
		}
		srv.Start()
		if p, _ := pollRedis(t, src); p.Status != metrics.StatusHealthy {
			t.Fatalf("after restart: %q %s", p.Status, p.Reason)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		srv := sourcestest.StartRedis(t, "--requirepass", "the-right-one")
		src, err := NewRedis("redis://:Wr0ng-R3dis-pw@" + srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		p, _ := pollRedis(t, src)
		if p.Status != metrics.StatusUnreachable || !strings.Contains(strings.ToLower(p.Reason), "pass") {
			t.Fatalf("%q %q, want unreachable naming the password problem", p.Status, p.Reason)
		}
		if strings.Contains(p.Reason, "Wr0ng-R3dis-pw") {
			t.Fatalf("password in %q", p.Reason)
		}
	})
	t.Run("bad url", func(t *testing.T) {
		_, err := NewRedis("redis://:s3cret@host:notaport")
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestRedisMachineServer reads the machine's shared Redis: its counters are
// everyone's, so only the shape of the reading is checked here.
func TestRedisMachineServer(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DialTimeout: time.Second})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		sourcestest.Need(t, "Redis at 127.0.0.1:6379: %v", err)
	}
	src, err := NewRedis("redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p, _ := pollRedis(t, src)
	if p.Status != metrics.StatusHealthy || p.ConnectedClients == nil || *p.ConnectedClients < 2 || p.MemoryMB == nil || *p.MemoryMB <= 0 {
		t.Fatalf("%+v", p)
	}
}

// TestRedisLogQuietsLibrary polls a dead Redis with go-redis's logger set
// to RedisLog, as the hub does: the library's "failed to dial" line, which
// it otherwise prints to stderr on every poll, becomes a debug line of the
// hub's logger, and an info-level logger shows nothing.
func TestRedisLogQuietsLibrary(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  bool
	}{{slog.LevelDebug, true}, {slog.LevelInfo, false}} {
		// go-redis may still write to this log from another test's poll
		// while this one reads it.
		log, buf := logtest.New(tc.level)
		redis.SetLogger(RedisLog{Log: log})
		src, err := NewRedis("redis://" + sourcestest.FreeAddr(t))
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := pollRedis(t, src); p.Status != metrics.StatusUnreachable {
			t.Fatalf("dead server: %q", p.Status)
		}
		src.Close()
		got := buf.String()
		if tc.want && (!strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "component=go-redis") || !strings.Contains(got, "dial")) {
			t.Errorf("debug log %q, want go-redis's dial failure at debug level", got)
		}
		if !tc.want && got != "" {
			t.Errorf("info-level log has %q", got)
		}
	}
}
