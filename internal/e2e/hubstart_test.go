package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// startHubsTogether starts one hub process per name at the same instant
// on one NATS and waits until each is healthy: they create the same
// streams, buckets and consumers at once.
func startHubsTogether(t *testing.T, bin string, names []string, args ...string) []*hubProcess {
	t.Helper()
	hubs := make([]*hubProcess, len(names))
	var wg sync.WaitGroup
	go1 := make(chan struct{})
	for i, name := range names {
		wg.Go(func() {
			<-go1
			hubs[i] = startHubProcess(t, bin, name, args...)
		})
	}
	close(go1)
	wg.Wait()
	for _, h := range hubs {
		poll.Until(t, h.name+" healthy", func() bool { return h.get("/healthz", nil) == http.StatusOK })
	}
	return hubs
}

// TestTwoHubsStartTogether starts two hub processes at the same instant on
// a fresh three-node cluster with R3 streams. The cluster answers only one
// of two equal stream creations that arrive together, which used to time
// out both hubs' start-up; now both start, and each serves every view of
// the samples the hosts publish: the fleet, each host, each host's history.
func TestTwoHubsStartTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/hub and runs a NATS cluster")
	}
	bin := buildHub(t)
	natsURL := strings.Join(natsxtest.Cluster(t, 3), ",")
	hubs := startHubsTogether(t, bin, []string{"hub-a", "hub-b"},
		"--nats-url", natsURL, "--stream-replicas", "3", "--interval", "200ms", "--docker-host", "none")

	hosts := []string{"gpu-a", "gpu-b"}
	for i, host := range hosts {
		PublishSample(t, natsURL, viewSample(host, uint64(i)))
	}
	for _, h := range hubs {
		poll.Until(t, h.name+" listing both hosts in the fleet view", func() bool {
			var fleet metrics.FleetUpdate
			return h.get("/api/v1/hosts", &fleet) == http.StatusOK && len(fleet.Hosts) == len(hosts) &&
				fleet.Hosts[0].Host == hosts[0] && fleet.Hosts[1].Host == hosts[1] && fleet.Totals.GPUs == 16
		})
		for _, host := range hosts {
			var u metrics.Update
			if code := h.get("/api/v1/performance?host="+host, &u); code != http.StatusOK || len(u.GPUs) != 8 || u.GPUs[0].Host != host {
				t.Fatalf("%s: performance?host=%s: %d, %d GPUs %+v", h.name, host, code, len(u.GPUs), u.GPUs)
			}
			poll.Until(t, h.name+" serving "+host+"'s history", func() bool {
				var hist metrics.History
				if h.get("/api/v1/history?range=5m&host="+host, &hist) != http.StatusOK {
					return false
				}
				for _, p := range hist.Points {
					if len(p.GPUs) == 8 && p.GPUs[0].Host == host {
						return true
					}
				}
				return false
			})
		}
	}
	// Both consume every sample: a newer one, its first GPU at 95 %,
	// reaches both hubs' fleet view.
	s := viewSample(hosts[0], 10)
	util := 95.0
	s.GPUs[0].Util = &util
	PublishSample(t, natsURL, s)
	for _, h := range hubs {
		poll.Until(t, h.name+" showing the newer sample", func() bool {
			var fleet metrics.FleetUpdate
			return h.get("/api/v1/hosts", &fleet) == http.StatusOK && len(fleet.Hosts) == 2 &&
				fleet.Hosts[0].UtilMax != nil && *fleet.Hosts[0].UtilMax == 95
		})
	}
}
