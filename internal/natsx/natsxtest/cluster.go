package natsxtest

import (
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/natsd"
	"github.com/sysperf/sysperf/internal/poll"
)

// Cluster starts an n-node JetStream cluster of the hub's embedded
// servers on loopback, each with its own store, and returns the nodes'
// client URLs once a node counts all n as JetStream peers (before that an
// R3 stream cannot be placed). The nodes are shut down when the test ends.
func Cluster(t testing.TB, n int) []string {
	t.Helper()
	// Every node lists every route, so the route ports are picked first.
	routes := make([]string, n)
	for i := range routes {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		routes[i] = l.Addr().String()
		_ = l.Close()
	}
	log := slog.New(slog.DiscardHandler)
	urls := make([]string, n)
	nodes := make([]*natsd.Server, n)
	for i := range n {
		e, err := natsd.Start(natsd.Config{
			// Open: it stands in for an external NATS, which the hubs
			// reach by URL alone.
			Name: fmt.Sprintf("n%d", i), Listen: "127.0.0.1:0", StoreDir: t.TempDir(), ReadyTimeout: 30 * time.Second, Open: true,
			Cluster: &natsd.Cluster{Name: "sysperf-test", Listen: routes[i], Routes: routes},
		}, log)
		if err != nil {
			t.Fatalf("cluster node %d: %v", i, err)
		}
		t.Cleanup(e.Shutdown)
		nodes[i], urls[i] = e, e.ClientURL()
	}
	poll.Until(t, fmt.Sprintf("a JetStream meta group of %d peers", n), func() bool {
		for _, e := range nodes {
			if e.ClusterPeers() == n {
				return true
			}
		}
		return false
	})
	return urls
}
