package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/sysperf/sysperf/internal/hub"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
	"github.com/vmihailenco/msgpack/v5"
)

// seedExample is the seed design's message (DESIGN.md), which every update
// must keep field for field.
const seedExample = `{"type":"performance_update","timestamp":"2025-01-01T12:00:00Z",
 "gpu":{"name":"NVIDIA RTX A5500","utilization":38,"vram_used_gb":22.7,"vram_total_gb":24.0,"temperature":38,"power_watts":31},
 "ai_models":{"rtdetr":{"status":"healthy","vram_gb":0.17,"model":"rtdetr_r50vd_coco_o365","device":"cuda:0"},
              "nemotron":{"status":"healthy","slots_active":0,"slots_total":2,"context_size":4096}},
 "inference":{"rtdetr_latency_ms":{"avg":45,"p95":82,"p99":120},"nemotron_latency_ms":{"avg":2100,"p95":4800,"p99":8200},
              "pipeline_latency_ms":{"avg":3200,"p95":6100},"throughput":{"images_per_min":12.4,"events_per_min":2.1}},
 "databases":{"postgresql":{"status":"healthy","connections_active":5,"connections_max":30,"cache_hit_ratio":98.2,"transactions_per_min":1200},
              "redis":{"status":"healthy","connected_clients":8,"memory_mb":1.44,"hit_ratio":0.01,"blocked_clients":2}},
 "host":{"cpu_percent":12,"ram_used_gb":8.2,"ram_total_gb":32,"disk_used_gb":156,"disk_total_gb":500},
 "containers":[{"name":"backend","status":"running","health":"healthy"}],
 "alerts":[{"severity":"warning","metric":"gpu_temperature","value":82,"threshold":80,"message":"GPU temperature high: 82°C"}]}`

const gib = 1 << 30

// checkShape walks the seed example and fails for every field the update
// lacks or carries with another JSON type. A value may be null only where
// nullable says its source may be absent; strings and objects never are.
func checkShape(t *testing.T, path string, seed, got any, nullable func(path string) bool) {
	t.Helper()
	switch s := seed.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: %T, want an object", path, got)
			return
		}
		for k, v := range s {
			p := strings.TrimPrefix(path+"."+k, ".")
			gv, ok := g[k]
			if !ok {
				t.Errorf("%s: missing", p)
				continue
			}
			checkShape(t, p, v, gv, nullable)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			t.Errorf("%s: %T, want an array (empty, not null, when there is nothing)", path, got)
			return
		}
		for i, e := range g {
			checkShape(t, path+"["+strconv.Itoa(i)+"]", s[0], e, nullable)
		}
	case float64:
		switch got.(type) {
		case float64:
		case nil:
			if !nullable(path) {
				t.Errorf("%s: null, want a number", path)
			}
		default:
			t.Errorf("%s: %T, want a number", path, got)
		}
	case string:
		switch got.(type) {
		case string:
		case nil:
			if !nullable(path) {
				t.Errorf("%s: null, want a string", path)
			}
		default:
			t.Errorf("%s: %T, want a string", path, got)
		}
	}
}

func near(t *testing.T, what string, got *float64, want, tol float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: null, want %.3f", what, want)
		return
	}
	if math.Abs(*got-want) > tol {
		t.Errorf("%s = %.3f, gopsutil says %.3f (tolerance %.2f)", what, *got, want, tol)
	}
}

func TestSpineAgentToWebSocket(t *testing.T) {
	const iv = 500 * time.Millisecond
	h := StartHub(t, iv, nil)
	StartAgent(t, h.NATSURL(), "e2e-a", iv, nil)
	ws := DialWS(t, h)
	// Charts are filled at once: the 5m window comes before any update.
	if typ, b := ws.Next(t); typ != metrics.TypeHistory || !strings.Contains(string(b), `"range":"5m"`) {
		t.Fatalf("first message %s, want the 5m performance_history", b)
	}

	live := func(u metrics.Update) bool {
		st, ok := HostStatus(u, "e2e-a")
		return ok && st.Online && u.Host.CPUPercent != nil && u.Sources[metrics.SectionHost] == "agent:e2e-a"
	}
	raw, u := ws.UpdateWhere(t, "host e2e-a live with a CPU figure", live)

	// Every seed field, with the seed's JSON type.
	var seed map[string]any
	if err := json.Unmarshal([]byte(seedExample), &seed); err != nil {
		t.Fatal(err)
	}
	noGPU := raw["gpu"].(map[string]any)["name"] == nil
	nullable := func(p string) bool {
		switch {
		case strings.HasPrefix(p, "host."):
			return false // a live agent always reads the host
		case strings.HasPrefix(p, "gpu."):
			return noGPU
		}
		// Models, latency, databases: their sources are not set up here.
		return true
	}
	checkShape(t, "", seed, raw, nullable)
	if raw["type"] != metrics.TypeUpdate {
		t.Errorf("type %v", raw["type"])
	}
	if _, err := time.Parse(time.RFC3339Nano, raw["timestamp"].(string)); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	if noGPU {
		// This machine has no NVIDIA driver: the section is null and says why.
		g := raw["gpu"].(map[string]any)
		for _, k := range []string{"utilization", "vram_used_gb", "vram_total_gb", "temperature", "power_watts"} {
			if g[k] != nil {
				t.Errorf("gpu.%s = %v without a GPU, want null", k, g[k])
			}
		}
		if !strings.Contains(u.Errors[metrics.SectionGPU], "NVML") {
			t.Errorf("errors.gpu = %q, want the agent's NVML reason", u.Errors[metrics.SectionGPU])
		}
		t.Logf("errors.gpu: %s", u.Errors[metrics.SectionGPU])
	}
	for _, sec := range []string{metrics.SectionRTDETR, metrics.SectionNemotron, metrics.SectionPostgreSQL, metrics.SectionRedis} {
		if u.Errors[sec] == "" {
			t.Errorf("errors[%s] empty although nothing fills it", sec)
		}
	}
	if u.AIModels.RTDETR.Status != metrics.StatusUnconfigured || u.Databases.PostgreSQL.Status != metrics.StatusUnconfigured {
		t.Errorf("statuses %q %q, want unconfigured", u.AIModels.RTDETR.Status, u.Databases.PostgreSQL.Status)
	}

	// The host figures are this machine's, as gopsutil reads them.
	vm, err := mem.VirtualMemory()
	if err != nil {
		t.Fatal(err)
	}
	root, err := disk.Usage("/")
	if err != nil {
		t.Fatal(err)
	}
	near(t, "host.ram_total_gb", u.Host.RAMTotalGB, float64(vm.Total)/gib, 0.01)
	near(t, "host.ram_used_gb", u.Host.RAMUsedGB, float64(vm.Total-vm.Available)/gib, 2)
	near(t, "host.disk_total_gb", u.Host.DiskTotalGB, float64(root.Total)/gib, 0.01)
	near(t, "host.disk_used_gb", u.Host.DiskUsedGB, float64(root.Used)/gib, 2)

	// CPU moves, so compare the agent's figures over a few seconds with
	// gopsutil's own reading of the same seconds.
	const span = 4 * time.Second
	ref := make(chan float64, 1)
	go func() {
		p, err := cpu.Percent(span, false)
		if err != nil || len(p) != 1 {
			ref <- math.NaN()
			return
		}
		ref <- p[0]
	}()
	var sum float64
	var n int
	lastSeq := uint64(0)
	for end := time.Now().Add(span); time.Now().Before(end); {
		_, u := ws.NextUpdate(t)
		st, ok := HostStatus(u, "e2e-a")
		if !ok || st.Seq == lastSeq || st.System.CPUPercent == nil {
			continue
		}
		lastSeq = st.Seq
		p := *st.System.CPUPercent
		if p < 0 || p > 100 {
			t.Fatalf("cpu_percent %v out of range", p)
		}
		sum += p
		n++
	}
	want := <-ref
	if math.IsNaN(want) || n == 0 {
		t.Fatalf("no CPU reading to compare (gopsutil %v, %d samples)", want, n)
	}
	mean := sum / float64(n)
	near(t, "mean host.cpu_percent", &mean, want, 25)
	t.Logf("cpu_percent: agent mean %.1f over %d samples, gopsutil %.1f", mean, n, want)

	// A second agent appears in hosts; the seed's host section stays with
	// the first host by name.
	StartAgent(t, h.NATSURL(), "e2e-b", iv, nil)
	_, u = ws.UpdateWhere(t, "both hosts online", func(u metrics.Update) bool {
		a, okA := HostStatus(u, "e2e-a")
		b, okB := HostStatus(u, "e2e-b")
		return okA && okB && a.Online && b.Online && b.System.RAMTotalGB != nil
	})
	if u.Sources[metrics.SectionHost] != "agent:e2e-a" {
		t.Errorf("sources.host = %q with two hosts, want the first by name", u.Sources[metrics.SectionHost])
	}
	b, _ := HostStatus(u, "e2e-b")
	first, _ := HostStatus(u, "e2e-a")
	if b.Boot == "" || b.LastSeen.IsZero() || b.Boot == first.Boot {
		t.Errorf("host e2e-b: %+v", b)
	}

	// A client switches range and gets that window.
	ws.Send(t, map[string]string{"type": "subscribe", "range": "15m"})
	for {
		typ, b := ws.Next(t)
		if typ != metrics.TypeHistory {
			continue
		}
		var hist metrics.History
		if err := json.Unmarshal(b, &hist); err != nil {
			t.Fatal(err)
		}
		if hist.Range != "15m" || hist.ResolutionS != 15 {
			t.Fatalf("subscribe 15m answered range %q resolution %d", hist.Range, hist.ResolutionS)
		}
		break
	}

	// The REST view is the same update.
	var rest metrics.Update
	if code := GetJSON(t, h, "/api/v1/performance", &rest); code != http.StatusOK || len(rest.Hosts) != 2 {
		t.Errorf("/api/v1/performance: %d with %d hosts", code, len(rest.Hosts))
	}
}

func TestMalformedSamplesAreCountedAndDropped(t *testing.T) {
	t.Parallel()
	const iv = 500 * time.Millisecond
	h := StartHub(t, iv, nil)
	StartAgent(t, h.NATSURL(), "e2e-good", iv, nil)
	ws := DialWS(t, h)
	ws.UpdateWhere(t, "the good agent", func(u metrics.Update) bool {
		st, ok := HostStatus(u, "e2e-good")
		return ok && st.Online
	})

	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rand.IntN(256))
	}
	random[0] = 0xc1 // a byte msgpack never uses, so it cannot decode by luck
	noVersion, err := msgpack.Marshal(map[string]any{"h": "x", "t": time.Now().UnixNano(), "q": 1})
	if err != nil {
		t.Fatal(err)
	}
	oldVersion, err := msgpack.Marshal(map[string]any{"v": 0, "h": "x", "t": time.Now().UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, metrics.MaxMessage+1) // the server refuses more
	spoof, err := metrics.Encode(&metrics.Sample{Host: "e2e-good", Boot: "evil", Seq: 1, TS: time.Now().UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	subject := metrics.SampleSubject("x")
	for _, body := range [][]byte{random, noVersion, oldVersion, huge, spoof, {}} {
		Publish(t, h.NATSURL(), subject, body)
	}

	want := map[string]uint64{hub.DropInvalid: 2, hub.DropVersion: 2, hub.DropTooLarge: 1, hub.DropSubject: 1}
	seen := ""
	poll.Until(t, fmt.Sprintf("drops counted as %v", want), func() bool {
		got := h.Stats().Dropped
		if now := fmt.Sprint(got); now != seen {
			t.Logf("dropped %s", now) // so a timeout shows what was counted
			seen = now
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	})

	// The hub keeps serving: fresh updates with the good host moving on,
	// and no trace of the garbage.
	_, u := ws.NextUpdate(t)
	first, _ := HostStatus(u, "e2e-good")
	_, u = ws.UpdateWhere(t, "the good host's next sample", func(u metrics.Update) bool {
		st, ok := HostStatus(u, "e2e-good")
		return ok && st.Online && st.Seq > first.Seq
	})
	if _, ok := HostStatus(u, "x"); ok || len(u.Hosts) != 1 {
		t.Fatalf("hosts %+v: garbage became a host", u.Hosts)
	}
	if st, _ := HostStatus(u, "e2e-good"); st.Boot == "evil" {
		t.Fatal("a sample for e2e-good published on another host's subject replaced its state")
	}
	if code := GetJSON(t, h, "/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz %d after malformed input", code)
	}
	t.Logf("ingest stats: %+v", h.Stats())
}

func TestSilentHostGoesOfflineAndStale(t *testing.T) {
	const iv = 300 * time.Millisecond
	h := StartHub(t, iv, nil)
	a := StartAgent(t, h.NATSURL(), "e2e-quiet", iv, nil)
	ws := DialWS(t, h)
	_, u := ws.UpdateWhere(t, "e2e-quiet online", func(u metrics.Update) bool {
		st, ok := HostStatus(u, "e2e-quiet")
		return ok && st.Online && u.Host.RAMTotalGB != nil
	})
	if u.Stale[metrics.SectionHost] {
		t.Fatal("live host's section marked stale")
	}
	a.Stop(t)
	_, u = ws.UpdateWhere(t, "e2e-quiet offline", func(u metrics.Update) bool {
		st, ok := HostStatus(u, "e2e-quiet")
		return ok && !st.Online
	})
	st, _ := HostStatus(u, "e2e-quiet")
	if age := u.Timestamp.Sub(st.LastSeen); age <= 3*iv {
		t.Fatalf("offline after %s of silence, want more than three intervals (%s)", age, 3*iv)
	}
	// The last figures stay visible but are flagged, never passed off as live.
	if !u.Stale[metrics.SectionHost] || u.Host.RAMTotalGB == nil || u.Sources[metrics.SectionHost] != "agent:e2e-quiet" {
		t.Fatalf("stale %v host %+v sources %v", u.Stale, u.Host, u.Sources)
	}
}
