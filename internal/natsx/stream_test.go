package natsx_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// These tests need only a JetStream, and take natsxtest's, which an
// internal test of natsx could not import.

func TestEnsureSamplesStream(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx := context.Background()

	st, err := natsx.EnsureSamplesStream(ctx, js, natsx.SamplesStream{})
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo()
	if info.Config.MaxAge != 24*time.Hour || info.Config.Duplicates != natsx.DefaultDuplicates ||
		info.Config.Storage != jetstream.FileStorage || len(info.Config.Subjects) != 1 ||
		info.Config.Subjects[0] != metrics.SubjectSamples {
		t.Fatalf("defaults not applied: %+v", info.Config)
	}

	// A second call with other limits updates the same stream.
	st, err = natsx.EnsureSamplesStream(ctx, js, natsx.SamplesStream{MaxAge: time.Hour, Duplicates: 3 * time.Hour})
	if err != nil {
		t.Fatalf("second ensure: %v", err)
	}
	info, err = st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != time.Hour || info.Config.Duplicates != time.Hour {
		t.Fatalf("update not applied or duplicates window not capped at max age: %+v", info.Config)
	}

	// A replayed sample (same Nats-Msg-Id) is stored once.
	s := &metrics.Sample{Host: "h1", Boot: "b", Seq: 7, TS: time.Now().UnixNano()}
	body, err := metrics.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ack, err := js.Publish(ctx, metrics.SampleSubject("h1"), body, jetstream.WithMsgID(metrics.MsgID(s, "k")))
		if err != nil {
			t.Fatal(err)
		}
		_ = ack
	}
	info, err = st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1 after de-duplication", info.State.Msgs)
	}
}

func TestReplayFromStartTime(t *testing.T) {
	js := natsxtest.JetStream(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, "t.a", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	mid := time.Now()
	time.Sleep(5 * time.Millisecond) // the server stamps messages; be clear of mid
	for i := 5; i < 2500; i++ {
		if _, err := js.Publish(ctx, "t.b", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	n, err := natsx.Replay(ctx, js, "T", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"t.>"}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &mid,
	}, func(_ string, d []byte) { got = append(got, d[0]) })
	if err != nil || n != 2495 || len(got) != 2495 || got[0] != 5 {
		t.Fatalf("replay from mid: n=%d err=%v first=%v", n, err, got[:1])
	}
	n, err = natsx.Replay(ctx, js, "T", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"t.a"}}, func(string, []byte) {})
	if err != nil || n != 5 {
		t.Fatalf("replay of t.a: n=%d err=%v", n, err)
	}
}
