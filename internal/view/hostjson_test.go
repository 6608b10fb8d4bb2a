package view

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// mixedSite is a fleet with what a host view may hold: GPUs with
// processes, a host without GPUs, one whose GPUs are not in one run,
// offline hosts, models healthy, missing and failing, alerts of hosts and
// of none interleaved, strings encoding/json escapes, and the site-wide
// sections filled.
func mixedSite(hosts int) *metrics.Update {
	u := fleetUpdate(hosts)
	u.Type = metrics.TypeUpdate
	u.Sources, u.Stale, u.Errors = map[string]string{}, map[string]bool{}, map[string]string{}
	u.Containers = []metrics.Container{{Name: "db <primary> & co", Status: "running"}}
	u.Models = []metrics.ModelEntry{{Host: "gpu0001", Name: "rtdetr <l>", Kind: "triton", Status: metrics.StatusHealthy}}
	u.Databases.PostgreSQL = metrics.PostgreSQL{Status: metrics.StatusHealthy}
	u.Databases.Redis = metrics.Redis{Status: metrics.StatusUnconfigured, Reason: "not configured"}
	u.Sources[metrics.SectionPostgreSQL], u.Errors[metrics.SectionRedis] = "postgres", "not configured"
	w := 7.5
	u.InferenceWindows = map[string]metrics.Latencies{"5m": {Window: "5m", Pipeline: metrics.Stats{P95: &w}}}
	name := "NVIDIA H200 \u2028<x>"
	for i := range u.GPUs {
		g := &u.GPUs[i]
		g.Name = &name
		g.Processes = []metrics.ProcessView{{PID: uint32(100 + i), Name: "python3", VRAMGB: g.VRAMUsedGB, Model: "nemotron"}}
	}
	u.GPU = u.GPUs[0]
	u.Hosts[1].Models = nil
	u.Hosts[1].Errors = map[string]string{metrics.RoleRTDETR: "connection refused", metrics.CollectorGPU: "nvml: not found"}
	u.Hosts[2].System = metrics.HostView{}
	// Host 3 has no GPUs left; host 4's are split around host 5's.
	var gs []metrics.GPUView
	for _, g := range u.GPUs {
		if g.Host != u.Hosts[3].Host {
			gs = append(gs, g)
		}
	}
	u.GPUs = append(gs, gpu(u.Hosts[4].Host, 9))
	u.Alerts = append([]metrics.Alert{{Severity: "warning", Metric: "redis_down", Message: "site-wide <redis>"}}, u.Alerts...)
	u.Alerts = append(u.Alerts, metrics.Alert{Host: u.Hosts[2].Host, Severity: "warning", State: "pending"}, metrics.Alert{Severity: "critical"})
	return u
}

// checkHostJSON checks every host view of u, then of u with a list of
// containers long enough that HostJSON splices (u itself may be below it).
func checkHostJSON(t *testing.T, u *metrics.Update) {
	t.Helper()
	checkHostJSONOf(t, u)
	big := *u
	big.Containers = append([]metrics.Container(nil), u.Containers...)
	for i := range 40 {
		big.Containers = append(big.Containers, metrics.Container{Name: fmt.Sprintf("worker-<%d>", i), Status: "running", Health: metrics.StatusHealthy})
	}
	if s := checkHostJSONOf(t, &big); s.shared.size < spliceFrom {
		t.Fatalf("shared sections %d bytes: HostJSON did not splice", s.shared.size)
	}
}

func checkHostJSONOf(t *testing.T, u *metrics.Update) *Site {
	t.Helper()
	s := New(u)
	for _, h := range u.Hosts {
		v, _ := s.Host(h.Host)
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.HostJSON(h.Host)
		if !ok || err != nil {
			t.Fatalf("%s: ok %v, err %v", h.Host, ok, err)
		}
		if !bytes.Equal(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Fatalf("%s: differs from encoding/json at byte %d:\n got %s\nwant %s", h.Host, i, got[max(0, i-80):min(len(got), i+80)], want[max(0, i-80):min(len(want), i+80)])
		}
	}
	if _, ok, err := s.HostJSON("nope"); ok || err != nil {
		t.Fatalf("unknown host: ok %v, err %v", ok, err)
	}
	return s
}

// HostJSON must be what encoding/json makes of the same host view, byte
// for byte, whichever sections the view replaced.
func TestHostJSONIsEncodingJSON(t *testing.T) {
	t.Run("agents fill every section", func(t *testing.T) { checkHostJSON(t, mixedSite(60)) })
	t.Run("other sources fill the seed's sections", func(t *testing.T) {
		u := mixedSite(12)
		u.Host = metrics.HostView{CPUPercent: u.Hosts[0].System.CPUPercent}
		for _, sec := range []string{metrics.SectionGPU, metrics.SectionHost, metrics.SectionRTDETR, metrics.SectionNemotron} {
			u.Sources[sec] = "prometheus"
		}
		u.AIModels.RTDETR = metrics.ModelView{Status: metrics.StatusHealthy, Model: "from prometheus"}
		checkHostJSON(t, u)
	})
	t.Run("no errors, no windows, nil lists", func(t *testing.T) {
		u := mixedSite(8)
		u.Errors, u.InferenceWindows, u.Models, u.Containers = nil, nil, nil, nil
		checkHostJSON(t, u)
	})
	t.Run("the golden merge", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("..", "..", "webui", "src", "test", "fixtures", "merged.gen.json"))
		if err != nil {
			t.Fatal(err)
		}
		var u metrics.Update
		if err := json.Unmarshal(b, &u); err != nil {
			t.Fatal(err)
		}
		checkHostJSON(t, &u)
	})
}

// The keys HostJSON writes are metrics.Update's, in its order: a field
// added to the update cannot go missing from host views.
func TestHostJSONFieldsAreTheUpdates(t *testing.T) {
	var want []string
	ty := reflect.TypeFor[metrics.Update]()
	for i := range ty.NumField() {
		want = append(want, strings.Split(ty.Field(i).Tag.Get("json"), ",")[0])
	}
	u := mixedSite(8)
	for range 40 {
		u.Models = append(u.Models, u.Models[0])
	}
	b, _, err := New(u).HostJSON(u.Hosts[1].Host)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var got []string
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("host view keys\n %v\nupdate's\n %v", got, want)
	}
}

// The server encodes a tick's host views from several goroutines; the
// site-wide part is encoded once among them (go test -race).
func TestHostJSONConcurrent(t *testing.T) {
	u := mixedSite(40)
	for range 40 {
		u.Models = append(u.Models, u.Models[0])
	}
	s := New(u)
	var wg sync.WaitGroup
	out := make([][]byte, len(u.Hosts))
	for i, h := range u.Hosts {
		wg.Go(func() { out[i], _, _ = s.HostJSON(h.Host) })
	}
	wg.Wait()
	for i, h := range u.Hosts {
		v, _ := s.Host(h.Host)
		want, _ := json.Marshal(v)
		if !bytes.Equal(out[i], want) {
			t.Fatalf("%s differs", h.Host)
		}
	}
}

// modelSite is mixedSite with two model servers on every host, with
// every figure a model entry has, and one of no host (a site-wide one).
func modelSite(hosts int) *metrics.Update {
	u := mixedSite(hosts)
	u.Models = []metrics.ModelEntry{{Name: "pipeline", Kind: "rtdetr", Status: metrics.StatusHealthy}}
	for _, h := range u.Hosts {
		for _, m := range []string{"rtdetr", "nemotron"} {
			p := 42.0
			u.Models = append(u.Models, metrics.ModelEntry{Host: h.Host, Name: m, Kind: "vllm", Status: metrics.StatusHealthy,
				Model: m + "-v2", VRAMGB: &p, GPUs: []int{0, 1}, SMPercent: &p, Latency: metrics.Stats{Avg: &p, P95: &p, P99: &p},
				TTFT: metrics.Stats{Avg: &p, P95: &p, P99: &p}, PromptTokensPerS: &p, GenTokensPerS: &p, RequestsPerS: &p, KVCachePercent: &p})
		}
	}
	return u
}

// TestHostViewHoldsItsOwnModels: a host view's models list is its host's
// servers and the site-wide ones, so its size does not grow with the
// fleet (the 32 KB for an 8-GPU host at any fleet size).
func TestHostViewHoldsItsOwnModels(t *testing.T) {
	u := modelSite(200)
	s := New(u)
	for _, h := range u.Hosts {
		v, _ := s.Host(h.Host)
		var got []string
		for _, m := range v.Models {
			got = append(got, m.Host+"/"+m.Name)
		}
		if want := []string{"/pipeline", h.Host + "/rtdetr", h.Host + "/nemotron"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s's view holds models %v, want %v", h.Host, got, want)
		}
		b, _, err := s.HostJSON(h.Host)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.GPUs) == 8 && len(b) > 32<<10 {
			t.Fatalf("%s's view is %d bytes, over 32 KB", h.Host, len(b))
		}
	}
}

// BenchmarkHostViews is every host view of 200 8-GPU hosts, as a tick
// with every host watched encodes them: encoding/json of each view
// against HostJSON, for the load tool's shape (GPUs and their processes,
// no model servers) and for a site whose hosts run two model servers
// each (each host view holds its own two).
func BenchmarkHostViews(b *testing.B) {
	plain := mixedSite(200)
	withModels := modelSite(200)
	for _, c := range []struct {
		name string
		u    *metrics.Update
	}{{"gpus", plain}, {"models", withModels}} {
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := New(c.u)
				for _, h := range c.u.Hosts {
					v, _ := s.Host(h.Host)
					if _, err := json.Marshal(v); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(c.name+"/spliced", func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				s := New(c.u)
				for _, h := range c.u.Hosts {
					v, _, err := s.HostJSON(h.Host)
					if err != nil {
						b.Fatal(err)
					}
					size = len(v)
				}
			}
			b.ReportMetric(float64(size), "bytes/view")
		})
	}
}
