package sources

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A full INFO reply of the machine's Redis, ~4 KB, parsed once per poll.
func BenchmarkParseInfo(b *testing.B) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DialTimeout: time.Second})
	defer c.Close()
	text, err := c.Info(context.Background()).Result()
	if err != nil {
		text = strings.Repeat(infoReply, 8)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseInfo(text); err != nil {
			b.Fatal(err)
		}
	}
}

// One poll of the real PostgreSQL over the dedicated connection.
func BenchmarkPostgresPoll(b *testing.B) {
	src, err := NewPostgres(PostgresConfig{DSN: realPGDSN()})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	src.Poll(ctx)
	if up, why := src.Up(); !up {
		b.Skipf("PostgreSQL: %s", why)
	}
	b.ReportAllocs()
	for b.Loop() {
		src.Poll(ctx)
	}
}

// One containers poll: six inspects over the unix socket stub.
func BenchmarkContainersPollEngine(b *testing.B) {
	eng := startEngineB(b, "containers.json")
	src, err := NewContainers(ContainersConfig{EngineHost: eng.sock})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		src.Poll(ctx)
	}
}
