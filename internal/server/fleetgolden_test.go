package server

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/history"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite the page's golden fixtures (make generate)")

// fleetGoldenFile is the page's fixture of the fleet view: the fleet
// charts' tests (webui/src/components/fleet) read its history and update
// as the hub's messages, so the page is tested against what the hub sends.
var fleetGoldenFile = filepath.Join("..", "..", "webui", "src", "test", "fixtures", "fleet.gen.json")

// fleetSite is the update of a two-host site at ts: gpu-box-1's two GPUs
// at util and util+20 %, gpu-box-2 offline with one GPU at 10 %, and a
// critical alert firing when crit.
func fleetSite(ts time.Time, util float64, crit bool) *metrics.Update {
	u := &metrics.Update{Timestamp: ts}
	u.Hosts = []metrics.HostStatus{
		{Host: "gpu-box-1", Online: true, LastSeen: ts.Add(-time.Second), GPUCount: 2},
		{Host: "gpu-box-2", LastSeen: ts.Add(-2 * time.Minute), GPUCount: 1},
	}
	u.GPUs = []metrics.GPUView{
		{Host: "gpu-box-1", Utilization: fp(util), VRAMUsedGB: fp(40), VRAMTotalGB: fp(80), PowerWatts: fp(300), PowerLimitWatts: fp(700)},
		{Host: "gpu-box-1", Utilization: fp(util + 20), VRAMUsedGB: fp(60), VRAMTotalGB: fp(80), PowerWatts: fp(500), PowerLimitWatts: fp(700)},
		{Host: "gpu-box-2", Utilization: fp(10), VRAMUsedGB: fp(8), VRAMTotalGB: fp(24), PowerWatts: fp(100), PowerLimitWatts: fp(230)},
	}
	u.Alerts = []metrics.Alert{{Rule: "gpu_util", Host: "gpu-box-1", Severity: "warning", State: "firing"}}
	if crit {
		u.Alerts = append(u.Alerts, metrics.Alert{Rule: "host_down", Host: "gpu-box-2", Severity: "critical", State: "firing"})
	}
	return u
}

// TestGoldenFleet records the site's updates of three 5 s slots in a
// history store and writes what a fleet-view browser receives: the 5m
// performance_history (FleetWindow, typed as the server sends it) and the
// fleet_update of the next slot. The second slot holds two updates (util
// 30 then 50), so its point has means and maxima apart. -update-golden
// rewrites the fixture.
func TestGoldenFleet(t *testing.T) {
	base := time.Date(2026, 12, 3, 15, 40, 0, 0, time.UTC)
	st := history.New()
	st.Record(fleetSite(base, 20, false))
	st.Record(fleetSite(base.Add(5*time.Second), 30, false))
	st.Record(fleetSite(base.Add(6*time.Second), 50, true))
	st.Record(fleetSite(base.Add(10*time.Second), 40, true))
	h, err := st.FleetWindow(base.Add(10*time.Second), "5m")
	if err != nil {
		t.Fatal(err)
	}
	h.Type = metrics.TypeHistory
	live := view.New(fleetSite(base.Add(15*time.Second), 60, false)).Fleet()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(struct {
		History metrics.History     `json:"history"`
		Update  metrics.FleetUpdate `json:"update"`
	}{h, live}); err != nil {
		t.Fatal(err)
	}
	if *updateGolden {
		if err := os.WriteFile(fleetGoldenFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(fleetGoldenFile)
	if err != nil {
		t.Fatalf("read %s: %v (run `make generate`)", fleetGoldenFile, err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatalf("%s differs from the fleet view's output: run `make generate` and commit it", fleetGoldenFile)
	}
}
