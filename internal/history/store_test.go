package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// base is a time aligned to every resolution (a multiple of 168 min since
// the epoch), so slot arithmetic in the tests is easy to read.
var base = time.Unix(0, 0).Add(168 * time.Minute * 10500).UTC()

func f(v float64) *float64 { return &v }
func u64(v uint64) *uint64 { return &v }

// sample is host's reading number seq at ts, with CPU cpu and each of
// gpus GPUs at utilization cpu+index.
func sample(host string, seq uint64, ts time.Time, cpu float64, gpus int) *metrics.Sample {
	s := &metrics.Sample{
		V: 1, Host: host, Boot: "boot-" + host, Seq: seq, TS: ts.UnixNano(), Interval: int64(5 * time.Second),
		System: &metrics.System{
			CPUPercent: f(cpu), MemUsed: 8 << 30, MemTotal: 32 << 30,
			Disks: []metrics.Disk{{Mount: "/", Used: 100 << 30, Total: 400 << 30}, {Mount: "/data", Used: 50 << 30, Total: 100 << 30}},
			Load1: f(cpu / 10), NetRxBps: f(3 << 20),
		},
		Models: map[string]metrics.Model{
			"rtdetr":   {Status: "healthy", MemUsed: u64(512 << 20)},
			"nemotron": {Status: "healthy", SlotsActive: ptrInt(1), SlotsTotal: ptrInt(2)},
		},
	}
	for i := range gpus {
		s.GPUs = append(s.GPUs, metrics.GPU{
			Index: i, UUID: "GPU-" + string(rune('a'+i)), Name: "H200",
			Util: f(cpu + float64(i)), MemUsed: u64(24 << 30), MemTotal: u64(141 << 30), Temp: f(40), Power: f(300),
		})
	}
	return s
}

func ptrInt(v int) *int { return &v }

// add converts smp as the hub's ingest does and places it.
func add(st interface{ Add(*view.Figures) }, smp *metrics.Sample) {
	fig := view.Of(smp)
	st.Add(&fig)
}

// cpuAt is the test's CPU curve: different in every 5 s slot.
func cpuAt(i int) float64 { return float64(i%97) + 0.5 }

// feed adds n samples of host, 5 s apart from start, and returns them.
func feed(st *Store, host string, start time.Time, n int, gpus int) []*metrics.Sample {
	out := make([]*metrics.Sample, n)
	for i := range n {
		out[i] = sample(host, uint64(i+1), start.Add(time.Duration(i)*5*time.Second), cpuAt(i), gpus)
		add(st, out[i])
	}
	return out
}

func TestWindowShortRanges(t *testing.T) {
	st := New()
	feed(st, "h1", base, 720, 2) // one hour
	now := base.Add(720*5*time.Second - time.Nanosecond)

	for _, tc := range []struct {
		rng string
		res time.Duration
	}{{"5m", 5 * time.Second}, {"15m", 15 * time.Second}, {"60m", time.Minute}} {
		t.Run(tc.rng, func(t *testing.T) {
			h, err := st.Window(now, tc.rng, "")
			if err != nil {
				t.Fatal(err)
			}
			if h.Range != tc.rng || h.ResolutionS != int(tc.res/time.Second) || len(h.Points) != 60 {
				t.Fatalf("range %q resolution %d, %d points", h.Range, h.ResolutionS, len(h.Points))
			}
			perSlot := int(tc.res / (5 * time.Second))
			first := 720 - 60*perSlot
			for k, p := range h.Points {
				wantTS := base.Add(time.Duration(first/perSlot+k) * tc.res)
				if !p.Timestamp.Equal(wantTS) {
					t.Fatalf("point %d at %v, want %v", k, p.Timestamp, wantTS)
				}
				var sum, mx float64
				mx = math.Inf(-1)
				for j := range perSlot {
					v := cpuAt(first + k*perSlot + j)
					sum += v
					mx = math.Max(mx, v)
				}
				if p.Host == nil || p.Host.CPUPercent == nil {
					t.Fatalf("point %d has no host CPU: %+v", k, p)
				}
				if got, want := *p.Host.CPUPercent, sum/float64(perSlot); math.Abs(got-want) > 1e-9 {
					t.Fatalf("point %d CPU mean %v, want %v", k, got, want)
				}
				if p.Max["host.cpu_percent"] != mx || p.Max["hosts.h1.cpu_percent"] != mx {
					t.Fatalf("point %d CPU max %v / %v, want %v", k, p.Max["host.cpu_percent"], p.Max["hosts.h1.cpu_percent"], mx)
				}
			}
		})
	}
}

func TestPointFieldsAndUnits(t *testing.T) {
	st := New()
	add(st, sample("h1", 1, base, 10, 2))
	add(st, sample("h1", 2, base.Add(time.Second), 30, 2))
	h, err := st.Window(base, "5m", "")
	if err != nil {
		t.Fatal(err)
	}
	p := h.Points[59]
	if !p.Timestamp.Equal(base) {
		t.Fatalf("last point at %v", p.Timestamp)
	}
	hv := p.Host
	checks := []struct {
		name      string
		got       *float64
		want      float64
		wantExact bool
	}{
		{"cpu mean", hv.CPUPercent, 20, true},
		{"ram used GB", hv.RAMUsedGB, 8, true},
		{"ram total GB", hv.RAMTotalGB, 32, true},
		{"disk used GB (sum of mounts)", hv.DiskUsedGB, 150, true},
		{"disk total GB", hv.DiskTotalGB, 500, true},
		{"load1", hv.Load1, 2, true},
		{"net rx MB/s", hv.NetRxMBps, 3, true},
		{"gpu util", p.GPU.Utilization, 20, true},
		{"gpu vram used GB", p.GPU.VRAMUsedGB, 24, true},
		{"gpu vram total GB", p.GPU.VRAMTotalGB, 141, true},
		{"gpu1 util", p.GPUs[1].Utilization, 21, true},
		{"rtdetr vram GB", p.AIModels.RTDETR.VRAMGB, 0.5, true},
	}
	for _, c := range checks {
		if c.got == nil || *c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, deref(c.got), c.want)
		}
	}
	if hv.DiskReadMBps != nil {
		t.Errorf("an absent figure became %v", *hv.DiskReadMBps)
	}
	if *p.AIModels.Nemotron.SlotsActive != 1 || *p.AIModels.Nemotron.SlotsTotal != 2 {
		t.Errorf("nemotron slots %+v", p.AIModels.Nemotron)
	}
	if p.Max["gpus.h1.1.utilization"] != 31 || p.Max["gpu.utilization"] != 30 {
		t.Errorf("gpu maxima %v", p.Max)
	}
	if len(p.Hosts) != 1 || p.Hosts[0].Host != "h1" || p.Hosts[0].GPUCount != 2 || *p.Hosts[0].System.CPUPercent != 20 {
		t.Errorf("hosts %+v", p.Hosts)
	}
	if p.GPUs[0].Host != "h1" || *p.GPUs[0].Index != 0 || *p.GPUs[1].Index != 1 {
		t.Errorf("gpus %+v", p.GPUs)
	}

	// An empty slot has only its timestamp.
	b, err := json.Marshal(h.Points[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"timestamp":"` + base.Add(-59*5*time.Second).Format(time.RFC3339) + `"}`; string(b) != want {
		t.Errorf("empty point %s, want %s", b, want)
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

func TestLateAndDuplicateSamples(t *testing.T) {
	st := New()
	for i := range 12 {
		if i == 4 {
			continue // arrives late
		}
		add(st, sample("h1", uint64(i+1), base.Add(time.Duration(i)*5*time.Second), 50, 0))
	}
	add(st, sample("h1", 5, base.Add(20*time.Second), 90, 0)) // the late one
	add(st, sample("h1", 5, base.Add(20*time.Second), 90, 0)) // delivered again
	add(st, sample("h1", 3, base.Add(10*time.Second), 90, 0)) // a replay of an old one

	now := base.Add(55 * time.Second)
	h, _ := st.Window(now, "5m", "h1")
	for k := 48; k < 60; k++ {
		p := h.Points[k]
		if p.Host == nil {
			t.Fatalf("slot %d empty", k)
		}
		want := 50.0
		if k == 52 {
			want = 90
		}
		if *p.Host.CPUPercent != want {
			t.Errorf("slot %d CPU %v, want %v", k, *p.Host.CPUPercent, want)
		}
	}
	h15, _ := st.Window(now, "15m", "h1")
	// 15 s slot of samples 3,4,5 (seq 4..6): 50, 90, 50.
	if got := *h15.Points[57].Host.CPUPercent; math.Abs(got-190.0/3) > 1e-9 {
		t.Errorf("15 s slot with the late sample: mean %v, want %v", got, 190.0/3)
	}
	s := st.Stats()
	if s.Added != 12 || s.Duplicates != 2 {
		t.Errorf("stats %+v, want 12 added, 2 duplicates", s)
	}
	// Same seq from a new boot (the agent restarted) is a new sample.
	other := sample("h1", 5, base.Add(21*time.Second), 10, 0)
	other.Boot = "boot-2"
	add(st, other)
	if st.Stats().Added != 13 {
		t.Errorf("a new boot's sample was taken for a duplicate")
	}
}

func TestTooOldIsDropped(t *testing.T) {
	st := New()
	add(st, sample("h1", 100, base.Add(2*time.Hour), 10, 0))
	add(st, sample("h1", 1, base, 99, 0)) // two hours older than the newest
	if s := st.Stats(); s.TooOld != 1 || s.Added != 1 {
		t.Fatalf("stats %+v", s)
	}
	h, _ := st.Window(base.Add(2*time.Hour), "6h", "")
	for _, p := range h.Points {
		if p.Host != nil && *p.Host.CPUPercent == 99 {
			t.Fatal("a sample older than the 60m window reached a long window")
		}
	}
}

func TestBounded(t *testing.T) {
	st := New()
	feed(st, "h1", base, 3*720, 1) // three hours
	ser := st.hosts["h1"]
	for t5 := range numTiers {
		for i := range ser.rings[t5] {
			if f := &ser.rings[t5][i]; int(f.w) > len(ser.keys) || ser.isLagged(t5, i) {
				t.Fatalf("tier %d frame %d holds %d cells for %d series, lagged %v", t5, i, f.w, len(ser.keys), ser.isLagged(t5, i))
			}
		}
		if n := len(ser.packed[t5]); n > ringSize*len(ser.keys) {
			t.Fatalf("tier %d holds %d cells for %d series", t5, n, len(ser.keys))
		}
	}
	if n := len(ser.vals); n > ringSize*len(ser.keys) || len(ser.twin) != 0 {
		t.Fatalf("5m window holds %d cells for %d series, %d frames with maxima beside", n, len(ser.keys), len(ser.twin))
	}
	if ser.lag != nil {
		t.Fatalf("lag %v for samples with every series", ser.lag)
	}
	for i, r := range ser.ids {
		if n := bits.OnesCount64(r.mask); n > 12 {
			t.Fatalf("minute %d remembers %d ids for 12 samples a minute", i, n)
		}
	}
	if ser.more != nil {
		t.Fatalf("ids outside their minute's run for one boot's samples: %v", ser.more)
	}
	if len(ser.keys) > 30 {
		t.Fatalf("%d series for one host with one GPU", len(ser.keys))
	}
}

func TestLongWindows(t *testing.T) {
	st := New()
	const n = 3 * 720 // three hours at 5 s
	feed(st, "h1", base, n, 0)
	now := base.Add(n*5*time.Second - time.Nanosecond)
	st.Seal(now)

	for _, tc := range []struct {
		rng string
		res time.Duration
	}{{"6h", 6 * time.Minute}, {"24h", 24 * time.Minute}, {"7d", 168 * time.Minute}} {
		t.Run(tc.rng, func(t *testing.T) {
			h, err := st.Window(now, tc.rng, "")
			if err != nil {
				t.Fatal(err)
			}
			if h.ResolutionS != int(tc.res/time.Second) {
				t.Fatalf("resolution %d", h.ResolutionS)
			}
			filled := 0
			for _, p := range h.Points {
				var sum, mx float64
				cnt := 0
				for i := range n {
					ts := base.Add(time.Duration(i) * 5 * time.Second)
					if !ts.Before(p.Timestamp) && ts.Before(p.Timestamp.Add(tc.res)) {
						v := cpuAt(i)
						sum += v
						mx = math.Max(mx, v)
						cnt++
					}
				}
				if cnt == 0 {
					if p.Host != nil {
						t.Fatalf("slot %v has data but no sample fell in it", p.Timestamp)
					}
					continue
				}
				filled++
				if p.Host == nil {
					t.Fatalf("slot %v empty, want %d samples", p.Timestamp, cnt)
				}
				if got := *p.Host.CPUPercent; !withinHalf(got, sum/float64(cnt)) {
					t.Fatalf("slot %v mean %v, want %v", p.Timestamp, got, sum/float64(cnt))
				}
				if p.Max["host.cpu_percent"] != mx {
					t.Fatalf("slot %v max %v, want %v", p.Timestamp, p.Max["host.cpu_percent"], mx)
				}
			}
			if want := int((3*time.Hour + tc.res - 1) / tc.res); filled != want {
				t.Errorf("%d slots filled, want %d", filled, want)
			}
		})
	}
}

// TestRestoreRollups checks a restart: rollups handed back plus the
// samples from ReplayStart rebuild exactly the same windows, with no
// minute counted twice.
func TestRestoreRollups(t *testing.T) {
	st := New()
	const n = 4 * 720
	samples := feed(st, "h1", base, n, 1)
	feed(st, "h2", base.Add(time.Hour), 720, 0)
	for i := range 240 {
		st.Record(hubUpdate(base.Add(time.Duration(i)*time.Minute), float64(i)))
	}
	// The hub seals now and then while running: rollups of the same slot
	// are published several times, the stream keeps the last.
	now := base.Add(n*5*time.Second - time.Nanosecond)
	kept := map[string]Rollup{}
	for _, at := range []time.Time{now.Add(-2 * time.Hour), now.Add(-time.Hour), now} {
		for _, r := range st.Seal(at) {
			kept[RollupSubject(&r)] = r
		}
	}

	st2 := New()
	for _, r := range kept {
		if err := st2.RestoreRollup(&r); err != nil {
			t.Fatal(err)
		}
	}
	from := st2.ReplayStart(now)
	if !from.Equal(now.Add(-time.Hour)) && from.After(now.Add(-time.Hour)) {
		t.Fatalf("replay starts at %v, after now-1h", from)
	}
	for _, s := range samples {
		if !time.Unix(0, s.TS).Before(from) {
			add(st2, s)
		}
	}
	// h2's samples and the hub readings are replayed from the start too:
	// everything older than the sealed minutes must be refused.
	feed(st2, "h2", base.Add(time.Hour), 720, 0)
	for i := range 240 {
		st2.Record(hubUpdate(base.Add(time.Duration(i)*time.Minute), float64(i)))
	}
	sameWindows(t, "restore", st, st2, now)
}

// sameWindows fails unless after shows every window as before does, at
// now, naming the first point that differs after what (a restart, a
// restore).
func sameWindows(t *testing.T, what string, before, after *Store, now time.Time) {
	t.Helper()
	for _, w := range Ranges() {
		sameWindow(t, what, before, after, now, w, false)
		sameWindow(t, what, before, after, now, w, true)
	}
}

// sameWindow is sameWindows of one range, of every host or of the fleet.
func sameWindow(t *testing.T, what string, before, after *Store, now time.Time, rng string, fleet bool) {
	t.Helper()
	a, errA := before.window(now, rng, "", fleet)
	b, errB := after.window(now, rng, "", fleet)
	if errA != nil || errB != nil {
		t.Fatalf("%s window: before %v, after %s %v", rng, errA, what, errB)
	}
	if reflect.DeepEqual(a, b) {
		return
	}
	for k := range a.Points {
		if k >= len(b.Points) || !reflect.DeepEqual(a.Points[k], b.Points[k]) {
			ja, _ := json.Marshal(a.Points[k])
			var jb []byte
			if k < len(b.Points) {
				jb, _ = json.Marshal(b.Points[k])
			}
			t.Fatalf("%s point %d (fleet %v) differs after %s:\n before %s\n  after %s", rng, k, fleet, what, ja, jb)
		}
	}
	t.Fatalf("%s window (fleet %v) differs after %s:\n before %+v\n  after %+v", rng, fleet, what, a, b)
}

// hubUpdate is an update of the hub's own figures at ts, with v in them,
// and a fleet of two hosts (one offline) whose GPUs are at v and v+20 %.
func hubUpdate(ts time.Time, v float64) *metrics.Update {
	u := &metrics.Update{Timestamp: ts}
	u.Hosts = []metrics.HostStatus{{Host: "a", Online: true, GPUCount: 1}, {Host: "b", GPUCount: 1}}
	u.GPUs = []metrics.GPUView{
		{Host: "a", Utilization: f(v), VRAMUsedGB: f(10), VRAMTotalGB: f(80), PowerWatts: f(300), PowerLimitWatts: f(700)},
		{Host: "b", Utilization: f(v + 20), VRAMUsedGB: f(30), VRAMTotalGB: f(80), PowerWatts: f(100)},
	}
	u.Alerts = []metrics.Alert{
		{Rule: "gpu_temp", Host: "a", Severity: "critical", State: "firing"},
		{Rule: "gpu_util", Host: "a", Severity: "warning", State: "pending"}, // not firing yet: not counted
		{Rule: "pg_down", Severity: "warning"},                               // firing, of no host
	}
	u.Inference.RTDETR = metrics.Stats{Avg: f(v), P95: f(2 * v), P99: f(3 * v)}
	u.Databases.PostgreSQL = metrics.PostgreSQL{ConnectionsActive: ptrInt(int(v) % 30), ConnectionsMax: ptrInt(100), CacheHitRatio: f(99)}
	u.Databases.Redis = metrics.Redis{MemoryMB: f(v)}
	u.Containers = []metrics.Container{{Name: "a", Status: "running", Health: "healthy"}, {Name: "b", Status: "running", Health: "unhealthy"}}
	return u
}

func TestRecord(t *testing.T) {
	st := New()
	st.Record(hubUpdate(base, 10))
	st.Record(hubUpdate(base.Add(time.Second), 30))
	st.Record(hubUpdate(base.Add(time.Second), 30))                  // the same update twice
	st.Record(&metrics.Update{Timestamp: base.Add(2 * time.Second)}) // nothing known: no figures
	h, err := st.Window(base, "5m", "")
	if err != nil {
		t.Fatal(err)
	}
	p := h.Points[59]
	if p.Inference == nil || *p.Inference.RTDETR.Avg != 20 || *p.Inference.RTDETR.P95 != 40 || p.Inference.Nemotron.Avg != nil {
		t.Fatalf("inference %+v", p.Inference)
	}
	if p.Databases == nil || *p.Databases.PostgreSQL.ConnectionsMax != 100 || *p.Databases.Redis.MemoryMB != 20 || p.Databases.Redis.HitRatio != nil {
		t.Fatalf("databases %+v", p.Databases)
	}
	if p.Containers == nil || *p.Containers.Total != 2 || *p.Containers.Unhealthy != 1 {
		t.Fatalf("containers %+v", p.Containers)
	}
	if p.Max["inference.rtdetr_latency_ms.p95"] != 60 || p.Max["databases.redis.memory_mb"] != 30 {
		t.Fatalf("max %v", p.Max)
	}
	if p.Host != nil || p.GPU != nil || p.Fleet != nil {
		t.Fatalf("hub readings alone show host or fleet figures: %+v", p)
	}
}

// TestFleetWindow checks the fleet view's history: the site's totals of
// each update, as slot means with the maxima in max, beside the hub's own
// figures and without any host's; other windows leave them out.
func TestFleetWindow(t *testing.T) {
	st := New()
	add(st, sample("a", 1, base, 10, 1))
	st.Record(hubUpdate(base, 10))
	st.Record(hubUpdate(base.Add(time.Second), 30))
	h, err := st.FleetWindow(base, "5m")
	if err != nil {
		t.Fatal(err)
	}
	p := h.Points[59]
	if p.Fleet == nil {
		t.Fatalf("no fleet figures: %+v", p)
	}
	fl := p.Fleet
	checks := []struct {
		name string
		got  *float64
		want float64
	}{
		{"hosts", fl.Hosts, 2}, {"online", fl.Online, 1}, {"gpus", fl.GPUs, 2},
		{"util mean (10,30 then 30,50)", fl.UtilMean, 30}, {"util max (30 then 50)", fl.UtilMax, 40},
		{"vram used", fl.VRAMUsed, 40}, {"vram total", fl.VRAMTotal, 160},
		{"power", fl.Power, 400}, {"power limit (one GPU reports it)", fl.PowerLimit, 700},
		{"critical", fl.Critical, 1}, {"warning (the pending one is not)", fl.Warning, 1},
	}
	for _, c := range checks {
		if c.got == nil || *c.got != c.want {
			t.Errorf("fleet %s = %v, want %v", c.name, deref(c.got), c.want)
		}
	}
	if p.Max["fleet.util_max"] != 50 || p.Max["fleet.util_mean"] != 40 {
		t.Errorf("fleet maxima %v", p.Max)
	}
	if p.Inference == nil || p.Databases == nil || p.Containers == nil {
		t.Errorf("the fleet window lacks the hub's own figures: %+v", p)
	}
	if p.Host != nil || len(p.Hosts) != 0 || len(p.GPUs) != 0 || p.Max["host.cpu_percent"] != 0 {
		t.Errorf("the fleet window holds a host's figures: %+v", p)
	}
	for _, host := range []string{"", "a"} {
		h, _ := st.Window(base, "5m", host)
		if p := h.Points[59]; p.Fleet != nil || p.Max["fleet.hosts"] != 0 || p.Host == nil {
			t.Errorf("window of host %q: %+v", host, p)
		}
	}
	// A GPU figure no GPU reports is absent, not zero.
	u := hubUpdate(base.Add(5*time.Second), 1)
	for i := range u.GPUs {
		u.GPUs[i].PowerLimitWatts = nil
	}
	st.Record(u)
	h, _ = st.FleetWindow(base.Add(5*time.Second), "5m")
	if fl := h.Points[59].Fleet; fl == nil || fl.PowerLimit != nil || fl.Power == nil {
		t.Errorf("fleet without power limits: %+v", fl)
	}
}

// TestOldWireNames reads the series names an older hub persisted (rollups
// and hub readings in JetStream): each must still name its field, so a
// hub restarted on older data finds it.
func TestOldWireNames(t *testing.T) {
	tab := newTable()
	old := []string{
		"host.cpu_percent", "host.ram_used_gb", "host.ram_total_gb", "host.disk_used_gb", "host.disk_total_gb",
		"host.load1", "host.load5", "host.load15", "host.swap_used_gb", "host.swap_total_gb",
		"host.disk_read_mb_s", "host.disk_write_mb_s", "host.net_rx_mb_s", "host.net_tx_mb_s",
		"gpu.0.utilization", "gpu.3.memory_utilization", "gpu.7.vram_used_gb", "gpu.0.vram_total_gb",
		"gpu.1.temperature", "gpu.2.power_watts",
		"ai_models.rtdetr.vram_gb", "ai_models.nemotron.vram_gb", "ai_models.nemotron.slots_active", "ai_models.nemotron.slots_total",
		"inference.rtdetr_latency_ms.avg", "inference.rtdetr_latency_ms.p95", "inference.rtdetr_latency_ms.p99",
		"inference.nemotron_latency_ms.avg", "inference.nemotron_latency_ms.p95", "inference.nemotron_latency_ms.p99",
		"inference.pipeline_latency_ms.avg", "inference.pipeline_latency_ms.p95", "inference.pipeline_latency_ms.p99",
		"inference.throughput.images_per_min", "inference.throughput.events_per_min",
		"databases.postgresql.connections_active", "databases.postgresql.connections_max",
		"databases.postgresql.cache_hit_ratio", "databases.postgresql.transactions_per_min",
		"databases.redis.connected_clients", "databases.redis.memory_mb", "databases.redis.hit_ratio", "databases.redis.blocked_clients",
		"containers.total", "containers.unhealthy",
	}
	for _, name := range old {
		k, ok := tab.parse(name)
		if !ok || tab.wireName(k) != name {
			t.Errorf("%q no longer names a series", name)
		}
	}
}

func TestWindowUnknownHost(t *testing.T) {
	st := New()
	if _, err := st.Window(base, "5m", "a"); !errors.As(err, new(*UnknownHostError)) || err.Error() != `unknown host "a": no host has history yet` {
		t.Fatalf("no hosts yet: %v", err)
	}
	add(st, sample("b", 1, base, 10, 1))
	add(st, sample("a", 1, base, 10, 1))
	_, err := st.Window(base, "5m", "nobody")
	var uh *UnknownHostError
	if !errors.As(err, &uh) || uh.Host != "nobody" || !slices.Equal(uh.KnownHosts(), []string{"a", "b"}) {
		t.Fatalf("unknown host: %v", err)
	}
	if _, err := st.Window(base, "5m", "a"); err != nil {
		t.Fatalf("known host: %v", err)
	}
}

func TestHostFilter(t *testing.T) {
	st := New()
	add(st, sample("a", 1, base, 10, 1))
	add(st, sample("b", 1, base, 70, 1))
	all, _ := st.Window(base, "5m", "")
	p := all.Points[59]
	if len(p.Hosts) != 2 || len(p.GPUs) != 2 || *p.Host.CPUPercent != 10 || p.GPU.Host != "a" {
		t.Fatalf("all hosts: %+v", p)
	}
	only, _ := st.Window(base, "5m", "b")
	p = only.Points[59]
	if len(p.Hosts) != 1 || p.Hosts[0].Host != "b" || *p.Host.CPUPercent != 70 || p.GPU.Host != "b" || len(p.GPUs) != 1 {
		t.Fatalf("host b: %+v", p)
	}
	for k := range p.Max {
		if strings.Contains(k, ".a.") {
			t.Fatalf("host filter leaks %s", k)
		}
	}
}

func TestWindowErrors(t *testing.T) {
	st := New()
	for _, rng := range []string{"", "1h", "5M", "30d"} {
		if _, err := st.Window(base, rng, ""); err == nil || !strings.Contains(err.Error(), "unknown range") {
			t.Errorf("range %q: error %v", rng, err)
		}
	}
	if err := st.RestoreRollup(&Rollup{Res: 60, Start: base.UnixNano()}); err == nil {
		t.Error("a rollup at a short window's resolution was accepted")
	}
	if err := st.RestoreRollup(&Rollup{Res: 360, Start: base.UnixNano(), Names: []string{"host.cpu_percent"}}); err == nil {
		t.Error("a rollup with missing sums was accepted")
	}
	if err := st.RestoreRollup(&Rollup{Res: 360, Start: base.UnixNano() + 1}); err == nil {
		t.Error("a rollup off a slot start was accepted")
	}
	// Unknown series names are skipped, not fatal.
	r := &Rollup{Res: 360, Host: "h", Start: base.UnixNano(), Names: []string{"host.future", "gpu.x.utilization", "host.cpu_percent"},
		Sum: []float64{1, 2, 30}, Max: []float64{1, 2, 20}, N: []uint32{1, 1, 2}}
	if err := st.RestoreRollup(r); err != nil {
		t.Fatal(err)
	}
	h, _ := st.Window(base, "6h", "h")
	if p := h.Points[59]; p.Host == nil || *p.Host.CPUPercent != 15 || p.Max["host.cpu_percent"] != 20 {
		t.Fatalf("restored point %+v", p)
	}
}

func TestWireNames(t *testing.T) {
	tab := newTable()
	for f := range tab.fields {
		for _, gpu := range []int{0, 7, 1 << 20} {
			k := mkKey(fieldID(f), gpu)
			if !tab.isGPU(fieldID(f)) && gpu != 0 {
				continue
			}
			got, ok := tab.parse(tab.wireName(k))
			if !ok || got != k {
				t.Errorf("%s does not round-trip", tab.wireName(k))
			}
		}
	}
	for _, bad := range []string{"", "gpu.", "gpu.1", "gpu.-1.utilization", "gpu.1.host.cpu_percent", "utilization", "host.nope"} {
		if _, ok := tab.parse(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestFieldTable checks every field of the table against the view type
// of its section: a value set through it is read back and lands in the
// JSON at the field's path (the GPU view's for GPU fields),
// and no two fields share a path.
func TestFieldTable(t *testing.T) {
	tab := newTable()
	if len(tab.fields) > 255 {
		t.Fatalf("%d fields do not fit a fieldID", len(tab.fields))
	}
	views := func() [numSections]any {
		return [numSections]any{&metrics.HostView{}, &metrics.GPUView{}, &metrics.AIModels{}, &metrics.Latencies{},
			&metrics.Databases{}, &metrics.ContainerCounts{}, &metrics.FleetFigures{}}
	}
	seen := map[string]bool{}
	for _, f := range tab.fields {
		if seen[f.path] {
			t.Errorf("path %q twice", f.path)
		}
		seen[f.path] = true
		vs := views()
		v := vs[f.sec]
		if _, ok := f.get(v); ok {
			t.Errorf("%s: present in an empty view", f.path)
		}
		f.set(v, 42)
		if got, ok := f.get(v); !ok || got != 42 {
			t.Errorf("%s: set 42, read %v %v", f.path, got, ok)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		// The path's first token names the section in an update; a host
		// view's is "host", a GPU view's fields are its own.
		parts := strings.Split(f.path, ".")
		if f.sec != secGPU {
			parts = parts[1:]
		}
		path := make([]any, len(parts))
		for i, p := range parts {
			path[i] = p
		}
		if got, ok := lookup(doc, path...); !ok || got != 42.0 {
			t.Errorf("%s: JSON %s has %v at the path", f.path, b, got)
		}
	}
}

// TestRecordContainerCount counts unhealthy containers as the
// containers_unhealthy alert does: an exited container without a
// healthcheck counts, one nobody could ask about ("unknown") does not.
func TestRecordContainerCount(t *testing.T) {
	st := New()
	u := &metrics.Update{Timestamp: base, Containers: []metrics.Container{
		{Name: "up", Status: "running", Health: "healthy"},
		{Name: "nocheck", Status: "running", Health: "none"},
		{Name: "exited", Status: "exited", Health: "none"},
		{Name: "failing", Status: "unknown", Health: "unhealthy"},
		{Name: "unasked", Status: "unknown", Health: "unknown"},
	}}
	st.Record(u)
	h, _ := st.Window(base, "5m", "")
	p := h.Points[59]
	if p.Containers == nil || *p.Containers.Total != 5 || *p.Containers.Unhealthy != 2 {
		t.Fatalf("containers %+v, want 5 total, 2 unhealthy (exited, failing)", p.Containers)
	}
}

// sampleID is FNV-1a of the boot id, as hash/fnv computes it.
func TestSampleIDIsFNV(t *testing.T) {
	for _, boot := range []string{"", "3f2a9c1d0b7e4a55", "boot-gpu01"} {
		h := fnv.New64a()
		_, _ = h.Write([]byte(boot))
		seq := uint64(7)
		if got, want := sampleID(boot, seq), h.Sum64()^(seq*0x9E3779B97F4A7C15); got != want {
			t.Fatalf("sampleID(%q) = %x, want %x", boot, got, want)
		}
	}
}

// Keys past the dense table's GPUs still get their own series.
func TestSlotOfBeyondDenseTable(t *testing.T) {
	tab := newTable()
	util, temp := tab.byPath["utilization"], tab.byPath["temperature"]
	ser := newSeries("h", len(tab.fields), false)
	a, b := ser.slotOf(mkKey(util, 3)), ser.slotOf(mkKey(util, denseGPUs+5))
	c := ser.slotOf(mkKey(temp, 3))
	if a == b || a == c || b == c || ser.slotOf(mkKey(util, 3)) != a || ser.slotOf(mkKey(util, denseGPUs+5)) != b {
		t.Fatalf("slots %d %d %d", a, b, c)
	}
	if len(ser.keys) != 3 || ser.keys[b] != mkKey(util, denseGPUs+5) {
		t.Fatalf("keys %v", ser.keys)
	}
}

// TestSeriesLackingFromSomeSamples: a figure a sample lacks (a GPU that
// did not answer, a GPU that appears) counts over the samples that had it,
// in the short windows, in the long ones once sealed, and in their rollups.
func TestSeriesLackingFromSomeSamples(t *testing.T) {
	st := New()
	s1 := sample("h", 1, base, 50, 1)
	s1.GPUs[0].Util = f(10)
	s2 := sample("h", 2, base.Add(20*time.Second), 70, 1)
	s2.GPUs[0].Util = nil
	s3 := sample("h", 3, base.Add(40*time.Second), 90, 2)
	s3.GPUs[0].Util, s3.GPUs[1].Util = f(20), f(30)
	for _, s := range []*metrics.Sample{s1, s2, s3} {
		add(st, s)
	}
	check := func(what string, st *Store, now time.Time, rng string) {
		t.Helper()
		h, err := st.Window(now, rng, "h")
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(h.Points, func(p metrics.Point) bool { return p.Timestamp.Equal(base) })
		if i < 0 {
			t.Fatalf("%s: no point at %v", what, base)
		}
		p := h.Points[i]
		if p.Host == nil || *p.Host.CPUPercent != 70 || len(p.GPUs) != 2 {
			t.Fatalf("%s: point %+v", what, p)
		}
		if u := p.GPUs[0].Utilization; u == nil || *u != 15 || p.Max["gpus.h.0.utilization"] != 20 {
			t.Errorf("%s: GPU 0 utilization %v (max %v), want the mean of the two samples that had it, 15 (max 20)", what, deref(u), p.Max["gpus.h.0.utilization"])
		}
		if u := p.GPUs[1].Utilization; u == nil || *u != 30 {
			t.Errorf("%s: GPU 1 utilization %v, want 30 (one sample)", what, deref(u))
		}
		if v := p.GPUs[1].VRAMUsedGB; v == nil || *v != 24 {
			t.Errorf("%s: GPU 1 VRAM %v, want 24", what, deref(v))
		}
	}
	check("60m", st, base.Add(time.Minute), "60m")

	later := base.Add(2 * time.Hour)
	add(st, sample("h", 4, later, 10, 2)) // seals the minute
	check("6h, sealed", st, later, "6h")
	var rollups []Rollup
	for _, r := range st.Seal(later) {
		if r.Host == "h" && r.Start == base.UnixNano() {
			rollups = append(rollups, r)
			for i, name := range r.Names {
				want := map[string]uint32{"gpu.0.utilization": 2, "gpu.1.utilization": 1, "host.cpu_percent": 3}[name]
				if want != 0 && r.N[i] != want {
					t.Errorf("rollup %ds: %s counts %d samples, want %d", r.Res, name, r.N[i], want)
				}
			}
		}
	}
	if len(rollups) != 3 {
		t.Fatalf("%d rollups of the minute's long slots, want 3", len(rollups))
	}
	st2 := New()
	for _, r := range rollups {
		if err := st2.RestoreRollup(&r); err != nil {
			t.Fatal(err)
		}
	}
	check("6h, restored", st2, later, "6h")
	check("24h, restored", st2, later, "24h")
}

// TestKeepsNoMessageBuffer: the hub decodes each sample in place of its
// message, so its host name is a substring of that message; the store
// keeps a copy, not the first message of every host for as long as the
// host is known.
func TestKeepsNoMessageBuffer(t *testing.T) {
	body, err := metrics.Encode(sample("h1", 1, base, 10, 1))
	if err != nil {
		t.Fatal(err)
	}
	s, err := metrics.DecodeOwned(body)
	if err != nil {
		t.Fatal(err)
	}
	if !within(s.Host, body) {
		t.Fatal("the decoded host name does not share the message: nothing to check")
	}
	st := New()
	add(st, s)
	for name, ser := range st.hosts {
		if within(name, body) || within(ser.name, body) {
			t.Fatalf("host %q is kept in the message's buffer", name)
		}
	}
}

// within reports whether s's bytes lie in b.
func within(s string, b []byte) bool {
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return len(s) > 0 && p >= lo && p < lo+uintptr(len(b))
}

// TestLagOfAGoneSeriesStaysBounded: a host that lost a GPU keeps its
// series, which every later sample lacks; what each frame counts of
// that goes with the frame when its slot is reused, so the lags held
// stay one list per frame in use, each as long as the series lacked.
func TestLagOfAGoneSeriesStaysBounded(t *testing.T) {
	st := New()
	feed(st, "h1", base, 12, 2) // a minute with two GPUs
	for i := range 3 * 720 {    // then three hours with one
		add(st, sample("h1", uint64(13+i), base.Add(time.Duration(12+i)*5*time.Second), cpuAt(i), 1))
	}
	ser := st.hosts["h1"]
	gone := 0
	for _, k := range ser.keys {
		if k.gpu() == 1 {
			gone++
		}
	}
	if gone == 0 || len(ser.lag) > numTiers*ringSize {
		t.Fatalf("%d series gone, lags of %d frames", gone, len(ser.lag))
	}
	for key, lags := range ser.lag {
		if len(lags) > gone {
			t.Fatalf("frame %d: %d lags for %d series gone", key, len(lags), gone)
		}
		if f := ser.rings[key/ringSize][key%ringSize]; !ser.isLagged(int(key/ringSize), int(key%ringSize)) || f.start == 0 {
			t.Fatalf("frame %d holds lags but is not lagged (%+v)", key, f)
		}
	}
	// The 5m window's newest point has one GPU: the gone one counts no
	// sample there.
	w, err := st.Window(base.Add(3*time.Hour), "5m", "h1")
	if err != nil {
		t.Fatal(err)
	}
	last := w.Points[len(w.Points)-1]
	if len(last.GPUs) != 1 {
		t.Fatalf("newest 5m point has %d GPUs", len(last.GPUs))
	}
}

// withinHalf reports whether got is want as a host's frame other than its
// tier's newest keeps it: off by at most 2^-10 of itself (half's bound),
// plus float32's rounding of the sum.
func withinHalf(got, want float64) bool {
	return math.Abs(got-want) <= (1.0/1024+1e-6)*math.Abs(want)
}

// TestHalf: every half reads back as itself, a float32 is off by at most
// 2^-10 of itself across the range a half holds, and past it saturates or
// reads as 0.
func TestHalf(t *testing.T) {
	for h := range 1 << 16 {
		if h&0x7e00 == 0 {
			continue // exponent 0 is 0
		}
		if got := toHalf(half(h).float()); got != half(h) {
			t.Fatalf("half %#04x reads as %v, which packs as %#04x", h, half(h).float(), got)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		// Log-uniform over the range, either sign.
		x := float32(math.Exp2(-22 + 62*rng.Float64()))
		if rng.IntN(2) == 0 {
			x = -x
		}
		got := toHalf(x).float()
		if d := math.Abs(float64(got) - float64(x)); d > math.Abs(float64(x))/1024 {
			t.Fatalf("%v packs as %v: off by %.3g of itself, more than 2^-10", x, got, d/math.Abs(float64(x)))
		}
	}
	for _, c := range []struct{ in, want float32 }{
		{0, 0}, {1, 1}, {100, 100}, {-2.5, -2.5}, {1e-8, 0}, {-1e-8, 0}, {1e13, 0x3ff << 31}, {float32(math.Inf(1)), 0x3ff << 31},
	} {
		if got := toHalf(c.in).float(); got != c.want {
			t.Errorf("%v packs as %v, want %v", c.in, got, c.want)
		}
	}
}

// TestPackedWindowsWithinBound: a host's figures that a half does not hold
// exactly read back, in every window, within half's bound of their exact
// means and maxima, and the 5m window exactly.
func TestPackedWindowsWithinBound(t *testing.T) {
	st := New()
	const n = 3 * 720 // three hours
	val := func(i int) float64 { return 40 + 37*math.Sin(float64(i)/17) + 1.0/float64(3+i%13) }
	for i := range n {
		s := sample("h1", uint64(i+1), base.Add(time.Duration(i)*5*time.Second), val(i), 1)
		add(st, s)
	}
	now := base.Add(n*5*time.Second - time.Nanosecond)
	st.Seal(now)
	for _, rng := range Ranges() {
		h, err := st.Window(now, rng, "h1")
		if err != nil {
			t.Fatal(err)
		}
		res := time.Duration(h.ResolutionS) * time.Second
		for k, p := range h.Points {
			var sum, cnt float64
			mx := math.Inf(-1)
			for i := range n {
				if ts := base.Add(time.Duration(i) * 5 * time.Second); !ts.Before(p.Timestamp) && ts.Before(p.Timestamp.Add(res)) {
					v := float64(float32(val(i)))
					sum, cnt, mx = sum+v, cnt+1, math.Max(mx, v)
				}
			}
			if cnt == 0 {
				continue
			}
			if p.Host == nil {
				t.Fatalf("%s point %d empty, want %v samples", rng, k, cnt)
			}
			got, gotMax := *p.Host.CPUPercent, p.Max["host.cpu_percent"]
			if !withinHalf(got, sum/cnt) || !withinHalf(gotMax, mx) {
				t.Fatalf("%s point %d: mean %v max %v, want %v and %v within 2^-10", rng, k, got, gotMax, sum/cnt, mx)
			}
			// The 5m window is kept in float32 throughout (single).
			exact := rng == "5m"
			if exact && (math.Abs(got-sum/cnt) > 1e-6*math.Abs(sum/cnt) || gotMax != mx) {
				t.Fatalf("%s point %d: mean %v max %v, want %v and %v within float32", rng, k, got, gotMax, sum/cnt, mx)
			}
		}
	}
}

// Minutes handed out in batches are every changed minute once, as one
// call hands them out.
func TestMinutesInBatches(t *testing.T) {
	one, batched := New(), New()
	for _, st := range []*Store{one, batched} {
		for _, h := range []string{"a", "b", "c"} {
			feed(st, h, base, 120, 1) // 10 minutes each
		}
	}
	now := base.Add(time.Hour)
	want := len(one.Minutes(now, false))
	if want != 30 {
		t.Fatalf("%d minutes in one call, want 30", want)
	}
	type minute struct {
		host  string
		start int64
	}
	seen := map[minute]bool{}
	for {
		b := batched.minutes(now, false, 7)
		if len(b) == 0 {
			break
		}
		if len(b) > 7 {
			t.Fatalf("a batch of %d, at most 7 asked", len(b))
		}
		for _, r := range b {
			k := minute{r.Host, r.Start}
			if seen[k] {
				t.Fatalf("minute %v handed out twice", k)
			}
			seen[k] = true
		}
	}
	if len(seen) != want {
		t.Fatalf("%d minutes in batches, want %d", len(seen), want)
	}
}

// TestSingleSlotOfTwoSamples: a host's 5m frames keep one float32 a cell,
// and a frame two samples share (an agent's restart or clock step) keeps
// its maxima beside, until its slot is reused: the window reads the
// same mean and maximum, to the digit, as from a sum and a maximum.
func TestSingleSlotOfTwoSamples(t *testing.T) {
	st := New()
	add(st, sample("h1", 1, base, 10.1, 2))
	add(st, sample("h1", 2, base.Add(time.Second), 30.7, 2))
	for i := range 10 {
		add(st, sample("h1", uint64(3+i), base.Add(time.Duration(i+1)*5*time.Second), cpuAt(i), 2))
	}
	// A late third sample in the shared slot, after it was packed.
	add(st, sample("h1", 99, base.Add(2*time.Second), 20.3, 2))
	ser := st.hosts["h1"]
	if len(ser.twin) != 1 {
		t.Fatalf("%d frames with maxima beside, want the shared one's alone", len(ser.twin))
	}
	h, err := st.Window(base.Add(50*time.Second), "5m", "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[time.Time]*metrics.Point{}
	for i := range h.Points {
		got[h.Points[i].Timestamp] = &h.Points[i]
	}
	p := got[base]
	if p == nil || p.Host == nil || p.Host.CPUPercent == nil {
		t.Fatalf("no point at the shared slot: %+v", p)
	}
	sum := float32(10.1) + float32(30.7) + float32(20.3)
	if mean := float64(sum) / 3; *p.Host.CPUPercent != mean || p.Max["host.cpu_percent"] != float64(float32(30.7)) {
		t.Fatalf("shared slot mean %v max %v, want %v and %v", *p.Host.CPUPercent, p.Max["host.cpu_percent"], mean, float64(float32(30.7)))
	}
	for i := range 10 {
		p := got[base.Add(time.Duration(i+1)*5*time.Second)]
		want := float64(float32(cpuAt(i)))
		if p == nil || p.Host == nil || *p.Host.CPUPercent != want || p.Max["host.cpu_percent"] != want {
			t.Fatalf("slot %d: %+v, want mean and max %v", i+1, p, want)
		}
	}
	// The shared slot's frame reused five minutes on: its maxima go.
	add(st, sample("h1", 100, base.Add(5*time.Minute), 1, 2))
	if len(ser.twin) != 0 {
		t.Fatalf("maxima of %d frames left after their slots were reused", len(ser.twin))
	}
}

// TestSealInBatches: sealing in batches hands out each long slot once, as
// one Seal does, never more than a batch at a time.
func TestSealInBatches(t *testing.T) {
	whole, parts := New(), New()
	for _, st := range []*Store{whole, parts} {
		for h := range 5 {
			feed(st, fmt.Sprintf("h%d", h), base, 2*720, 1) // two hours
		}
	}
	now := base.Add(2 * time.Hour)
	want := map[string]int{}
	for _, r := range whole.Seal(now) {
		want[fmt.Sprintf("%s/%d/%d", r.Host, r.Res, r.Start)]++
	}
	got := map[string]int{}
	for {
		batch := parts.seal(now, 7)
		if len(batch) == 0 {
			break
		}
		if len(batch) > 7 {
			t.Fatalf("a batch of %d rollups, at most 7 asked", len(batch))
		}
		for _, r := range batch {
			got[fmt.Sprintf("%s/%d/%d", r.Host, r.Res, r.Start)]++
		}
	}
	if len(want) < 8 || !maps.Equal(got, want) {
		t.Fatalf("batches sealed %v, one Seal %v", got, want)
	}
}

// TestIDRuns: a minute's ids kept as a run of one boot's sequence
// numbers find every sample added, in any order, of any boot, however far
// apart, and none not added; and read back as sampleID makes them.
func TestIDRuns(t *testing.T) {
	type id struct {
		boot string
		seq  uint64
	}
	var added []id
	for seq := uint64(100); seq < 112; seq++ { // a minute at 5 s
		added = append(added, id{"b1", seq})
	}
	added = append(added,
		id{"b1", 95},        // late, before the run: it moves
		id{"b1", 40},        // too far before it
		id{"b1", 170},       // too far after it
		id{"b2", 0},         // the agent restarted within the minute
		id{"b2", 1},         //
		id{"b1", 1<<64 - 1}, // the largest
	)
	ser := newSeries("h", 4, false)
	for i, a := range added {
		if ser.hasID(7, bootHash(a.boot), a.seq) {
			t.Fatalf("%v found before it was added", a)
		}
		ser.addID(7, bootHash(a.boot), a.seq)
		for _, b := range added[:i+1] {
			if !ser.hasID(7, bootHash(b.boot), b.seq) {
				t.Fatalf("after adding %v, %v is not found", a, b)
			}
		}
	}
	for _, a := range []id{{"b1", 99}, {"b1", 112}, {"b2", 2}, {"b3", 100}, {"b1", 41}} {
		if ser.hasID(7, bootHash(a.boot), a.seq) {
			t.Fatalf("%v found, never added", a)
		}
		if ser.hasID(6, bootHash("b1"), 100) {
			t.Fatal("another frame holds frame 7's id")
		}
	}
	var want []uint64
	for _, a := range added {
		want = append(want, sampleID(a.boot, a.seq))
	}
	got := ser.idsOf(7, nil)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ids read back %x, want %x", got, want)
	}
	ser.clearIDs(7)
	if ser.hasID(7, bootHash("b1"), 100) || ser.more != nil || len(ser.idsOf(7, nil)) != 0 {
		t.Fatal("a cleared frame still holds ids")
	}
}
