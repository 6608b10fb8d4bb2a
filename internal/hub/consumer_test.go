package hub

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// TestIngestConsumerStateInMemoryOnOneServer: on one server (here the
// embedded one) the hub's consumer keeps its state in memory, and the
// hub ingests through it.
func TestIngestConsumerStateInMemoryOnOneServer(t *testing.T) {
	t.Parallel()
	h := startHub(t, testConfig(t))
	nc, err := h.emb.Connect("test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, metrics.StreamSamples, h.cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if !cons.CachedInfo().Config.MemoryStorage {
		t.Fatal("the ingest consumer's state is written to the store")
	}
	publish(t, h.NATSURL(), &metrics.Sample{Host: "gpu01", Boot: "b", Seq: 1, TS: time.Now().UnixNano()}, as(t, "gpu01", enrol(t, h, "gpu01", enroll.Agent))...)
	performance(t, h, hasHost("gpu01"))
}

// TestIngestConsumerOnAClusterOutlivesItsLeader: on a 3-node cluster the
// hub's consumer, replicated on the stream's three nodes with its state
// in their stores, delivers on when the node leading it stops.
func TestIngestConsumerOnAClusterOutlivesItsLeader(t *testing.T) {
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
	cons, err := js.Consumer(ctx, metrics.StreamSamples, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	info := cons.CachedInfo()
	if info.Config.MemoryStorage {
		t.Fatal("the replicated ingest consumer's state is in memory")
	}
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("consumer cluster %+v, want a leader and 2 replicas", info.Cluster)
	}
	for _, srv := range servers {
		if srv.Name() == info.Cluster.Leader {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
	}
	s.Seq, s.TS = 2, time.Now().UnixNano()
	publish(t, cfg.NATSURL, s)
	performance(t, h, func(u metrics.Update) bool { return len(u.Hosts) == 1 && u.Hosts[0].Seq == 2 })
}

// TestIngestCountsOnceAfterAClusterRestart: after a restart of the whole
// cluster the hub's consumer goes on after what the hub handled. (Had
// its state been in memory, lost with every node, it would start again
// from where the hub created it and send all that again: the hub's
// ingest would count none of it twice, as duplicates or too old, but
// would decode up to the stream's whole retention.)
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
	poll.Until(t, "the stream to store a sample after the restart", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.Publish(ctx, metrics.SampleSubject(s.Host), encode(t, s), jetstream.WithMsgID(metrics.MsgID(s, "k")))
		return err == nil
	})
	// The hub's pulls died with the nodes: the client pulls again once
	// their heartbeats are missed, some 20 s later.
	poll.UntilWithin(t, 90*time.Second, "the sample after the restart", func() bool { return h.Stats().Samples >= 4 })
	if st := h.Stats(); st.Samples != 4 || len(st.Dropped) != 0 {
		t.Fatalf("samples %d, dropped %v; want 4, nothing sent again", st.Samples, st.Dropped)
	}
}
