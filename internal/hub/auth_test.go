package hub

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// enrol enrols name as kind on h's data directory, applies it at once and
// returns the credentials file.
func enrol(t testing.TB, h *Hub, name, kind string) string {
	t.Helper()
	creds, err := enroll.Open(h.cfg.DataDir).Add(name, kind)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+"."+kind+".creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.ReloadEnrolment(); err != nil {
		t.Fatal(err)
	}
	return path
}

// as are the connection options of an agent of host with creds, as the
// agent sets them.
func as(t testing.TB, host, creds string) []nats.Option {
	t.Helper()
	opts, err := natsx.Auth{Creds: creds}.Options()
	if err != nil {
		t.Fatal(err)
	}
	return append(opts, nats.CustomInboxPrefix(natsx.InboxPrefix(host)), nats.MaxReconnects(0))
}

// violations collects a connection's asynchronous errors.
func violations(errs chan<- error) nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	})
}

func wantViolation(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("%s: %v, want a permission violation", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no permission violation", what)
	}
}

func TestNATSWithoutCredentialIsRefused(t *testing.T) {
	t.Parallel()
	h := startHub(t, testConfig(t))
	if _, err := nats.Connect(h.NATSURL(), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect without credential: %v, want an authorization violation", err)
	}
}

func TestAgentCredentialPublishesOnlyItsOwnHost(t *testing.T) {
	t.Parallel()
	h := startHub(t, testConfig(t))
	good := enrol(t, h, "gpu01", enroll.Agent)
	evil := enrol(t, h, "gpu02", enroll.Agent)

	errs := make(chan error, 8)
	nc, err := nats.Connect(h.NATSURL(), append(as(t, "gpu02", evil), violations(errs))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// gpu01's next sample, forged by gpu02 with gpu01's de-duplication id.
	forged := &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: 1, TS: time.Now().UnixNano(), System: system()}
	msg := nats.NewMsg(metrics.SampleSubject("gpu01"))
	msg.Data = encode(t, forged)
	msg.Header.Set(jetstream.MsgIDHeader, metrics.MsgID(forged, "k"))
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, errs, "publish on another host's subject")
	// Forged alert transitions and updates.
	_ = nc.Publish("sysperf.v1.alert.firing", []byte(`{"rule":"forged"}`))
	wantViolation(t, errs, "publish an alert transition")
	_ = nc.Publish(metrics.SubjectUpdate, []byte(`{}`))
	wantViolation(t, errs, "publish an update")
	_ = nc.Publish(metrics.UpdateSubject("gpu02"), []byte(`{}`))
	wantViolation(t, errs, "publish its own host's view")
	_ = nc.Publish(metrics.SubjectFleet, []byte(`{}`))
	wantViolation(t, errs, "publish the fleet view")
	if _, err := nc.Subscribe(">", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, errs, "subscribe to >")
	if _, err := nc.Request("$JS.API.STREAM.DELETE."+metrics.StreamSamples, nil, 2*time.Second); err == nil {
		t.Fatal("stream delete answered")
	}
	wantViolation(t, errs, "$JS.API.STREAM.DELETE")
	if _, err := nc.Request("$JS.API.CONSUMER.DELETE."+metrics.StreamSamples+"."+h.cfg.Consumer, nil, 2*time.Second); err == nil {
		t.Fatal("consumer delete answered")
	}
	wantViolation(t, errs, "$JS.API.CONSUMER.DELETE")

	// The stream is still there, and gpu01's real sample with the same
	// id is stored, not dropped as a duplicate.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.js.Stream(ctx, metrics.StreamSamples); err != nil {
		t.Fatalf("the samples stream after the attack: %v", err)
	}
	js := jsAs(t, h, "gpu01", good)
	real := &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: 1, TS: time.Now().UnixNano(), System: system()}
	ack, err := js.Publish(ctx, metrics.SampleSubject("gpu01"), encode(t, real), jetstream.WithMsgID(metrics.MsgID(real, "k")))
	if err != nil {
		t.Fatalf("gpu01's own sample: %v", err)
	}
	if ack.Duplicate {
		t.Fatal("gpu01's real sample was taken for a duplicate of the forged one")
	}
	u := performance(t, h, hasHost("gpu01"))
	if len(u.Hosts) != 1 || u.Hosts[0].Boot != "b1" {
		t.Fatalf("hosts %+v", u.Hosts)
	}
	if st := h.Stats(); st.Samples != 1 {
		t.Fatalf("samples %d, want only gpu01's own", st.Samples)
	}
}

// jsAs is a JetStream client of h as an agent of host.
func jsAs(t testing.TB, h *Hub, host, creds string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(h.NATSURL(), as(t, host, creds)...)
	if err != nil {
		t.Fatalf("connect as %s: %v", host, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestMsgIDOfAnotherHostIsDroppedAndCounted(t *testing.T) {
	t.Parallel()
	h := startHub(t, testConfig(t))
	creds := enrol(t, h, "gpu02", enroll.Agent)
	js := jsAs(t, h, "gpu02", creds)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := &metrics.Sample{Host: "gpu02", Boot: "b", Seq: 1, TS: time.Now().UnixNano()}
	if _, err := js.Publish(ctx, metrics.SampleSubject("gpu02"), encode(t, s), jetstream.WithMsgID("gpu01/b1/2")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the poisoning attempt to be counted", func() bool { return h.Stats().Dropped[DropMsgID] == 1 })
	if h.Stats().Samples != 0 {
		t.Fatal("a sample with another host's id was accepted")
	}
}

func TestRevocationCutsOffAConnectedAgent(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startHub(t, cfg)
	creds := enrol(t, h, "gpu01", enroll.Agent)
	nc, err := nats.Connect(h.NATSURL(), as(t, "gpu01", creds)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Revoked with the command, picked up by the hub's own watch.
	if err := enroll.Command([]string{"revoke", "gpu01", "--data-dir", cfg.DataDir}, cfg.DataDir, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the revoked agent to be disconnected", func() bool { return !nc.IsConnected() })
	if _, err := nats.Connect(h.NATSURL(), as(t, "gpu01", creds)...); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("reconnect after revocation: %v, want an authorization violation", err)
	}
	if err := h.health(); err != nil {
		t.Fatalf("health after a revocation: %v", err)
	}
}

func TestPipelineCredentialPublishesLatencyOnly(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	cfg := testConfig(t)
	h := startHub(t, cfg, Plugs{Latency: rec})
	creds := enrol(t, h, "gpu01", enroll.Pipeline)
	errs := make(chan error, 8)
	nc, err := nats.Connect(h.NATSURL(), append(as(t, "gpu01", creds), violations(errs))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	obs := []byte(`{"v":1,"ts":1733000000000000000,"ms":42}`)
	if err := nc.Publish(metrics.LatencySubject("gpu01", "pipeline"), obs); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the pipeline's observation", func() bool { return h.Stats().Observations == 1 })

	s := &metrics.Sample{Host: "gpu01", Boot: "b", Seq: 1, TS: time.Now().UnixNano()}
	_ = nc.Publish(metrics.SampleSubject("gpu01"), encode(t, s))
	wantViolation(t, errs, "pipeline publishing a sample")
	_ = nc.Publish(metrics.LatencySubject("gpu02", "pipeline"), obs)
	wantViolation(t, errs, "pipeline publishing another host's latency")
	if _, err := nc.SubscribeSync(metrics.SubjectUpdate); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, errs, "pipeline subscribing to the update")
	if st := h.Stats(); st.Samples != 0 || st.Observations != 1 {
		t.Fatalf("stats %+v: want 1 observation and no sample", st)
	}
}

func TestUnknownOrBadlyStampedSamplesAreRefused(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Replay = time.Hour
	h := startHub(t, cfg)
	enrol(t, h, "gpu02", enroll.Agent)
	now := time.Now()
	for cause, s := range map[string]*metrics.Sample{
		DropFuture: {Host: "gpu02", Boot: "b", Seq: 1, TS: now.Add(365 * 24 * time.Hour).UnixNano()},
		DropOld:    {Host: "gpu02", Boot: "b", Seq: 2, TS: now.Add(-2 * time.Hour).UnixNano()},
	} {
		if h.in.sample(metrics.SampleSubject(s.Host), encode(t, s)) {
			t.Fatalf("%s: accepted", cause)
		}
	}
	// Until enrolled, gpu01 is unknown though its subject and payload
	// agree (as with samples left in the stream from before).
	s := &metrics.Sample{Host: "gpu01", Boot: "b", Seq: 3, TS: now.UnixNano()}
	if h.in.sample(metrics.SampleSubject("gpu01"), encode(t, s)) {
		t.Fatal("sample of a host never enrolled accepted")
	}
	enrol(t, h, "gpu01", enroll.Agent)
	if !h.in.sample(metrics.SampleSubject("gpu01"), encode(t, s)) {
		t.Fatal("sample of the enrolled host refused")
	}
	want := map[string]uint64{DropFuture: 1, DropOld: 1, DropUnknown: 1}
	for k, v := range want {
		if got := h.Stats().Dropped[k]; got != v {
			t.Fatalf("dropped %v, want %v", h.Stats().Dropped, want)
		}
	}
}

func TestSecondHubOnTheDataDirRefusesToStart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	startHub(t, cfg)
	_, err := Start(context.Background(), cfg, Plugs{}, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("a second hub started on the same data directory")
	}
	for _, want := range []string{cfg.DataDir, "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %q", err, want)
		}
	}
}

func TestHostEnrolledWhileTheHubRunsMayConnect(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startHub(t, cfg)
	creds := filepath.Join(t.TempDir(), "gpu03.creds")
	// The command only writes the file; the hub's watch applies it.
	if err := enroll.Command([]string{"add", "gpu03", "--out", creds}, cfg.DataDir, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the new credential to be accepted", func() bool {
		nc, err := nats.Connect(h.NATSURL(), as(t, "gpu03", creds)...)
		if err != nil {
			return false
		}
		nc.Close()
		return true
	})
}

// The enrolment watch reads the file again unless os.Stat vouches that it
// did not change since the last read.
func TestEnrolmentUnchanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "enrolled.json")
	write := func(body string, mtime time.Time) os.FileInfo {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	first := write(`{"a":1}`, old)
	read := old.Add(3 * time.Second)
	if !unchanged(first, first, read) {
		t.Error("a file untouched since a read 3 s after its mtime reads as changed")
	}
	if unchanged(nil, first, read) || unchanged(first, nil, read) {
		t.Error("a file never read, or gone, reads as unchanged")
	}
	// Rewritten in place in the second it was read, on a file system that
	// keeps mtimes to the second: only the read's closeness tells.
	if unchanged(first, first, old.Add(time.Second)) {
		t.Error("a read within a second of the mtime vouches for the file")
	}
	if now := write(`{"a":12}`, old); unchanged(first, now, read) {
		t.Error("a file of another size reads as unchanged")
	}
	if now := write(`{"a":2}`, old.Add(time.Minute)); unchanged(first, now, read) {
		t.Error("a file with a newer mtime reads as unchanged")
	}
	// Renamed over (the enrolment command's way): another inode, with
	// first's size and mtime.
	tmp := filepath.Join(dir, "new.json")
	if err := os.WriteFile(tmp, []byte(`{"a":3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(first, now) || now.Size() != first.Size() || !now.ModTime().Equal(first.ModTime()) {
		t.Fatal("the renamed file differs from the first in more than its inode")
	}
	if unchanged(first, now, read) {
		t.Error("a file renamed over the old one reads as unchanged")
	}
}
