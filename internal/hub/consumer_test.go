package hub

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// TestIngestConsumerOnAClusterOutlivesItsLeader: on a 3-node cluster the
// hub's consumer keeps its state in memory (nothing written per
// delivery), replicated on the stream's three nodes, and delivers on
// when the node leading it stops.
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
	if !info.Config.MemoryStorage {
		t.Fatal("the ingest consumer's state is written to the store")
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
