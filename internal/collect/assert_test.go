package collect

import (
	"encoding/json"
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
