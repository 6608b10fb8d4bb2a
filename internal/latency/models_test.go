package latency

import (
	"fmt"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// A model's series are its host's alone, and a host inventing model names
// cannot grow the tracker past MaxModels.
func TestModelSeriesPerHost(t *testing.T) {
	tr := New(Config{MaxModels: 3})
	t0 := time.Unix(1_767_268_800, 0)
	for i, tokens := range []float64{100, 700} {
		for _, host := range []string{"a", "b"} {
			v := tokens
			if host == "b" {
				v *= 2
			}
			models := map[string]metrics.Model{}
			for m := range 5 {
				models[fmt.Sprintf("m%d", m)] = metrics.Model{Counters: map[string]float64{metrics.CounterGenTokens: v}}
			}
			tr.AddSample(&metrics.Sample{Host: host, TS: t0.Add(time.Duration(i) * 10 * time.Second).UnixNano(), Models: models})
		}
	}
	now := t0.Add(10 * time.Second)
	// Which three of the five are kept depends on map order; each kept one
	// has its own host's increase.
	for host, want := range map[string]float64{"a": 600, "b": 1200} {
		kept := 0
		for m := range 5 {
			inc, secs, ok := tr.HostIncrease(host, ModelRole(fmt.Sprintf("m%d", m), metrics.CounterGenTokens), now, time.Minute)
			if !ok {
				continue
			}
			kept++
			if inc != want || secs != 10 {
				t.Errorf("host %s m%d: +%v over %vs, want +%v over 10s", host, m, inc, secs, want)
			}
		}
		if kept != 3 {
			t.Errorf("host %s kept %d models, want MaxModels = 3", host, kept)
		}
	}
	if st := tr.HostStats("nohost", ModelRole("m0", metrics.HistTTFT), now, time.Minute); st.Count != nil {
		t.Errorf("figures for an unknown host: %+v", st)
	}
}
