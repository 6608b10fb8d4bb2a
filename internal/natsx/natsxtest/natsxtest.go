// Package natsxtest gives tests a real JetStream: the hub's own embedded
// NATS server, in process, with a store in the test's temporary directory,
// shut down when the test ends; or a client of a server the test started
// some other way (a hub, a cluster), closed when the test ends.
package natsxtest

import (
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsd"
)

// JetStream starts an in-process server and returns a JetStream client
// of it.
func JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	e, err := natsd.Start(natsd.Config{StoreDir: t.TempDir()}, log)
	if err != nil {
		t.Fatalf("embedded NATS: %v", err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect(t.Name(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Connect returns a JetStream client of the server (or cluster: URLs
// separated by commas) at url; opts carry a credential where one is
// needed.
func Connect(t testing.TB, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("nats connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
