package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// TestLiveIngestOnAClusterOutlivesTheStreamLeader: on a 3-node cluster
// samples reach the hub on its subscription when the node leading the
// samples stream stops.
func TestLiveIngestOnAClusterOutlivesTheStreamLeader(t *testing.T) {
	urls, servers := startCluster(t, 3)
	cfg := testConfig(t)
	cfg.NATSURL = strings.Join(urls, ",")
	cfg.Replicas = 3
	h := startHub(t, cfg)
	s := &metrics.Sample{Host: "c1", Boot: "b", Seq: 1, TS: time.Now().UnixNano()}
	publish(t, cfg.NATSURL, s)
	performance(t, h, hasHost("c1"))

	js := natsxtest.Connect(t, cfg.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, metrics.StreamSamples)
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster %+v, want a leader and 2 replicas", info.Cluster)
	}
	for _, srv := range servers {
		if srv.Name() == info.Cluster.Leader {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
	}
	s.Seq, s.TS = 2, time.Now().UnixNano()
	attempts := 0
	poll.Until(t, "the stream to store a sample after its leader stopped", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		attempts++
		_, err := js.Publish(ctx, metrics.SampleSubject(s.Host), encode(t, s), jetstream.WithMsgID(metrics.MsgID(s, "k")))
		return err == nil
	})
	performance(t, h, func(u metrics.Update) bool { return len(u.Hosts) == 1 && u.Hosts[0].Seq == 2 })
	sentTwice(t, h, 2, attempts-1)
}

// sentTwice checks that the hub accepted samples samples and dropped
// nothing but at most retried duplicates: a publish retried while the
// stream elected a leader carries the same Nats-Msg-Id, which the
// stream stores once, but each copy reaches the hub's subscription, and
// all but the first are duplicates to ingest.
func sentTwice(t *testing.T, h *Hub, samples uint64, retried int) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("%d samples", samples), func() bool { return h.Stats().Samples >= samples })
	st := h.Stats()
	dup := st.Dropped[DropDuplicate]
	if st.Samples != samples || dup > uint64(retried) || len(st.Dropped) > 1 || len(st.Dropped) == 1 && dup == 0 {
		t.Fatalf("samples %d, dropped %v after %d retried publishes; want %d samples, at most the retries dropped as duplicates",
			st.Samples, st.Dropped, retried, samples)
	}
}

// TestIngestCountsOnceAfterAClusterRestart: after a restart of the whole
// cluster the hub reconnects, reads back what it may have missed since
// its last check, and handles none of what it had twice.
func TestIngestCountsOnceAfterAClusterRestart(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	cfg := testConfig(t)
	cfg.NATSURL = strings.Join(c.urls, ",")
	cfg.Replicas = 3
	h := startHub(t, cfg)
	for seq := range uint64(3) {
		publish(t, cfg.NATSURL, &metrics.Sample{Host: "c1", Boot: "b", Seq: seq, TS: time.Now().UnixNano()})
	}
	poll.Until(t, "3 samples", func() bool { return h.Stats().Samples == 3 })

	c.restart(t)
	// Until the stream has elected its leader a publish gets no answer;
	// a retry carries the same id, so it is stored once.
	s := &metrics.Sample{Host: "c1", Boot: "b", Seq: 3, TS: time.Now().UnixNano()}
	js := natsxtest.Connect(t, cfg.NATSURL)
	attempts := 0
	poll.Until(t, "the stream to store a sample after the restart", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		attempts++
		_, err := js.Publish(ctx, metrics.SampleSubject(s.Host), encode(t, s), jetstream.WithMsgID(metrics.MsgID(s, "k")))
		return err == nil
	})
	poll.UntilWithin(t, 90*time.Second, "the sample after the restart", func() bool { return h.Stats().Samples >= 4 })
	// The reconnect is a gap, read back over the samples before it.
	poll.Until(t, "the gap read back", func() bool { return h.LiveStats().Gaps >= 1 && h.live.settled() })
	sentTwice(t, h, 4, attempts-1)
}
