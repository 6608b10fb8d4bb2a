package export

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

type fakeHub struct {
	in      Ingest
	clients int
	latest  *metrics.Update
}

func (f *fakeHub) Ingest() Ingest          { return f.in }
func (f *fakeHub) Clients() int            { return f.clients }
func (f *fakeHub) Latest() *metrics.Update { return f.latest }
func (f *fakeHub) ClientsDropped() uint64  { return 3 }
func (f *fakeHub) ClientsRefused() uint64  { return 4 }

func p[T any](v T) *T { return &v }

// fullUpdate has every section filled, with the seed's figures, plus two
// GPUs of which one reports the same identity twice (agent and Prometheus).
func fullUpdate() *metrics.Update {
	g0 := metrics.GPUView{Host: "box", Index: p(0), Name: p("NVIDIA RTX A5500"), Utilization: p(38.0), VRAMUsedGB: p(22.7), VRAMTotalGB: p(24.0), Temperature: p(38.0), PowerWatts: p(31.0)}
	g1 := metrics.GPUView{Host: "box2", Index: p(1), Name: p("NVIDIA H200"), Utilization: p(90.0)} // no memory reading
	return &metrics.Update{
		Type: metrics.TypeUpdate, Timestamp: time.Unix(1_735_732_800, 0),
		GPU: g0, GPUs: []metrics.GPUView{g0, g1, g0},
		AIModels: metrics.AIModels{
			RTDETR:   metrics.ModelView{Status: "healthy"},
			Nemotron: metrics.ModelView{Status: "unreachable", Reason: "connection refused", SlotsActive: p(1), SlotsTotal: p(2)},
		},
		Inference: metrics.Latencies{
			RTDETR:     metrics.Stats{Avg: p(45.0), P95: p(82.0), P99: p(120.0)},
			Pipeline:   metrics.Stats{Avg: p(3200.0), P95: p(6100.0)},
			Throughput: metrics.Throughput{ImagesPerMin: p(12.4)},
		},
		Databases: metrics.Databases{
			PostgreSQL: metrics.PostgreSQL{Status: "healthy", ConnectionsActive: p(5), ConnectionsMax: p(30), CacheHitRatio: p(98.2), TransactionsPerMin: p(1200.0), Deadlocks: p(int64(0)), SizeBytes: p(int64(8 << 20))},
			Redis:      metrics.Redis{Status: "healthy", ConnectedClients: p(int64(8)), MemoryMB: p(1.44), HitRatio: nil, BlockedClients: p(int64(2)), Keys: p(int64(7))},
		},
		Hosts: []metrics.HostStatus{{Host: "box", Online: true, System: metrics.HostView{CPUPercent: p(12.0), RAMUsedGB: p(8.2), RAMTotalGB: p(32.0), DiskUsedGB: p(156.0), DiskTotalGB: p(500.0)}}},
		Containers: []metrics.Container{
			{Name: "backend", Status: "running", Health: "healthy"},
			{Name: "worker", Status: "exited", Health: "none"},
			{Name: "odd", Status: "running", Health: "weird"},
		},
		Alerts: []metrics.Alert{{Severity: "warning", Metric: "gpu_temperature"}},
	}
}

func scrape(t *testing.T, e *Exporter) []byte {
	t.Helper()
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func parse(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	return fams
}

// value finds the sample of a family whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func newTestExporter(t *testing.T) (*Exporter, *fakeHub) {
	t.Helper()
	held := 90 * time.Minute
	hub := &fakeHub{
		in:      Ingest{Samples: 120, Late: 3, Observations: 40, Dropped: map[string]uint64{"decode": 2, "schema": 1}, ObservationsDropped: map[string]uint64{"decode": 5}, Hosts: 2, Gaps: 1, ReadBack: 17, Stalls: 2, Short: 1, Held: &held},
		clients: 4,
		latest:  fullUpdate(),
	}
	e := New(hub)
	// Two polls of PostgreSQL that reached it, one of a Prometheus that
	// did not answer, as the hub reports them.
	e.Observe(metrics.SectionPostgreSQL, 2*time.Millisecond, true)
	e.Observe(metrics.SectionPostgreSQL, 3*time.Millisecond, true)
	e.Observe("prometheus", 2*time.Millisecond, false)
	return e, hub
}

func TestExporterValues(t *testing.T) {
	e, _ := newTestExporter(t)
	fams := parse(t, scrape(t, e))
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sysperf_ingest_samples_total", nil, 120},
		{"sysperf_ingest_gaps_total", nil, 1},
		{"sysperf_ingest_read_back_total", nil, 17},
		{"sysperf_ingest_read_back_stalls_total", nil, 2},
		{"sysperf_ingest_read_back_short_total", nil, 1},
		{"sysperf_ingest_stream_held_seconds", nil, 5400},
		{"sysperf_ingest_dropped_samples_total", map[string]string{"cause": "decode"}, 2},
		{"sysperf_ingest_dropped_observations_total", map[string]string{"cause": "decode"}, 5},
		{"sysperf_websocket_clients", nil, 4},
		{"sysperf_websocket_dropped_clients_total", nil, 3},
		{"sysperf_websocket_refused_clients_total", nil, 4},
		{"sysperf_source_up", map[string]string{"source": "databases.postgresql"}, 1},
		{"sysperf_source_up", map[string]string{"source": "prometheus"}, 0},
		{"sysperf_source_poll_duration_seconds", map[string]string{"source": "databases.postgresql"}, 2},
		{"sysperf_gpu_utilization_ratio", map[string]string{"host": "box", "gpu": "0"}, 0.38},
		{"sysperf_gpu_memory_used_bytes", map[string]string{"host": "box", "gpu": "0"}, 22.7 * (1 << 30)},
		{"sysperf_gpu_temperature_celsius", map[string]string{"host": "box"}, 38},
		{"sysperf_gpu_power_watts", map[string]string{"host": "box"}, 31},
		{"sysperf_model_status", map[string]string{"model": "nemotron", "status": "unreachable"}, 1},
		{"sysperf_model_status", map[string]string{"model": "nemotron", "status": "healthy"}, 0},
		{"sysperf_model_slots", map[string]string{"model": "nemotron"}, 2},
		{"sysperf_inference_latency_seconds", map[string]string{"stage": "rtdetr", "statistic": "p95"}, 0.082},
		{"sysperf_pipeline_images_per_second", nil, 12.4 / 60},
		{"sysperf_postgres_connections", nil, 5},
		{"sysperf_postgres_cache_hit_ratio", nil, 0.982},
		{"sysperf_postgres_transactions_per_second", nil, 20},
		{"sysperf_redis_memory_used_bytes", nil, 1.44 * (1 << 20)},
		{"sysperf_host_memory_total_bytes", map[string]string{"host": "box"}, 32 << 30},
		{"sysperf_host_cpu_utilization_ratio", map[string]string{"host": "box"}, 0.12},
		{"sysperf_container_health", map[string]string{"container": "backend", "health": "healthy"}, 1},
		{"sysperf_container_health", map[string]string{"container": "worker", "health": "healthy"}, 0},
		{"sysperf_container_health", map[string]string{"container": "odd", "health": "weird"}, 1},
		{"sysperf_container_state", map[string]string{"container": "worker", "state": "exited"}, 1},
		{"sysperf_alerts", map[string]string{"severity": "warning"}, 1},
		{"sysperf_alerts", map[string]string{"severity": "critical"}, 0},
	}
	for _, tt := range tests {
		got, ok := value(fams, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v missing", tt.name, tt.labels)
			continue
		}
		if d := got - tt.want; d > 1e-9*(1+tt.want) || d < -1e-9*(1+tt.want) {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// Absent stays absent: no zero for what nobody measured.
	for _, absent := range []struct {
		name   string
		labels map[string]string
	}{
		{"sysperf_redis_keyspace_hit_ratio", nil},
		{"sysperf_gpu_memory_used_bytes", map[string]string{"host": "box2"}},
		{"sysperf_inference_latency_seconds", map[string]string{"stage": "nemotron"}},
		{"sysperf_inference_latency_seconds", map[string]string{"stage": "pipeline", "statistic": "p99"}},
		{"sysperf_pipeline_events_per_second", nil},
	} {
		if v, ok := value(fams, absent.name, absent.labels); ok {
			t.Errorf("%s%v = %v, want absent", absent.name, absent.labels, v)
		}
	}
	if n := len(fams["sysperf_gpu_utilization_ratio"].Metric); n != 2 {
		t.Errorf("%d GPU series, want 2 (the duplicate dropped)", n)
	}
}

func TestExporterBeforeFirstUpdate(t *testing.T) {
	e := New(&fakeHub{})
	fams := parse(t, scrape(t, e))
	if _, ok := fams["sysperf_gpu_utilization_ratio"]; ok {
		t.Error("GPU series before any update")
	}
	if v, ok := value(fams, "sysperf_ingest_samples_total", nil); !ok || v != 0 {
		t.Errorf("samples %v %v", v, ok)
	}
}

// TestPromtoolCheckMetrics runs Prometheus' own linter on the exposition,
// and client_golang's promlint on the registry and on the whole body as
// parsed (the update's families are not in the registry).
func TestPromtoolCheckMetrics(t *testing.T) {
	e, _ := newTestExporter(t)
	body := scrape(t, e)
	gathered, err := e.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := promlint.NewWithMetricFamilies(gathered).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %+v", err, problems)
	}
	var all []*dto.MetricFamily
	for _, f := range parse(t, body) {
		all = append(all, f)
	}
	if problems, err := promlint.NewWithMetricFamilies(all).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("promlint on the body: %v %+v", err, problems)
	}
	bin, err := exec.LookPath("promtool")
	if err != nil {
		sourcestest.Need(t, "promtool (apt-get install prometheus): %v", err)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	t.Logf("promtool check metrics: clean on %d bytes, %d families", len(body), len(parse(t, body)))
}
