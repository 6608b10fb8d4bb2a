// Package natsxtest gives tests a real JetStream: the hub's own embedded
// NATS server, in process, with a store in the test's temporary directory,
// shut down when the test ends.
package natsxtest

import (
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx"
)

// JetStream starts an in-process server and returns a JetStream client
// of it.
func JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	e, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir()}, log)
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
