package collect

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// assertModel compares models through their JSON form, which is how the hub
// and the dashboard see them, so nil and zero stay distinct.
func assertModel(t *testing.T, got, want metrics.Model) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("model\n got %s\nwant %s", g, w)
	}
}

// stall is a server that never answers, as a wedged one holds the socket
// open: it returns only once the client has given up.
func stall(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// seedOnly keeps the fields the seed's model entries had, for tests of
// those; the figures added for issue 14 are checked by their own tests.
func seedOnly(m metrics.Model) metrics.Model {
	m.Kind, m.Histograms, m.Counters = "", nil, nil
	m.Waiting, m.Running, m.KVCache = nil, nil, nil
	m.Slots, m.Loaded, m.Notes = nil, nil, nil
	m.GPUs, m.SMPercent, m.Energy, m.Power = nil, nil, nil, nil
	return m
}
