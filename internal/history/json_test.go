package history

import (
	"encoding/json"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// lookup walks decoded JSON by object keys and array indexes.
func lookup(v any, path ...any) (any, bool) {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil, false
			}
			v = a[k]
		}
	}
	return v, true
}

// TestPointJSONOmitsEmptyIdentity checks that a history point, which holds
// figures only, does not send "status":"", "boot":"" and "seq":0, and that
// the same keys are sent once they hold something.
func TestPointJSONOmitsEmptyIdentity(t *testing.T) {
	st := New()
	add(st, sample("h1", 1, base, 10, 1))
	st.Record(hubUpdate(base, 10))
	h, err := st.Window(base, "5m", "")
	if err != nil {
		t.Fatal(err)
	}
	fromWindow := h.Points[59]
	set := fromWindow
	set.Hosts = []metrics.HostStatus{fromWindow.Hosts[0]}
	set.Hosts[0].Boot, set.Hosts[0].Seq = "boot-h1", 7
	models, dbs := *fromWindow.AIModels, *fromWindow.Databases
	models.RTDETR.Status, models.Nemotron.Status = "healthy", "loading"
	dbs.PostgreSQL.Status, dbs.Redis.Status = "healthy", "unreachable"
	set.AIModels, set.Databases = &models, &dbs

	keys := []struct {
		name string
		path []any
		set  any // the value when set (JSON numbers decode as float64)
	}{
		{"host boot", []any{"hosts", 0, "boot"}, "boot-h1"},
		{"host seq", []any{"hosts", 0, "seq"}, 7.0},
		{"rtdetr status", []any{"ai_models", "rtdetr", "status"}, "healthy"},
		{"nemotron status", []any{"ai_models", "nemotron", "status"}, "loading"},
		{"postgresql status", []any{"databases", "postgresql", "status"}, "healthy"},
		{"redis status", []any{"databases", "redis", "status"}, "unreachable"},
	}
	tests := []struct {
		name  string
		point metrics.Point
		isSet bool
	}{
		{"window point", fromWindow, false},
		{"point with identity set", set, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.point)
			if err != nil {
				t.Fatal(err)
			}
			var doc any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			// The sections are there with their figures, so an absent key
			// is the tag's doing, not a missing section.
			for _, p := range [][]any{{"hosts", 0, "system", "cpu_percent"}, {"ai_models", "rtdetr", "vram_gb"}, {"databases", "redis", "memory_mb"}} {
				if _, ok := lookup(doc, p...); !ok {
					t.Fatalf("%v missing from %s", p, b)
				}
			}
			for _, k := range keys {
				v, ok := lookup(doc, k.path...)
				switch {
				case tc.isSet && (!ok || v != k.set):
					t.Errorf("%s: %v (present %t), want %v", k.name, v, ok, k.set)
				case !tc.isSet && ok:
					t.Errorf("%s: sent as %#v, want absent", k.name, v)
				}
			}
			if t.Failed() {
				t.Logf("point: %s", b)
			}
		})
	}
}
