package export

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// The dashboard's units are GB (GiB) and MB (MiB); the exposition uses
// bytes, ratios 0–1 and seconds, as Prometheus' conventions ask.
const (
	bytesPerGB = 1 << 30
	bytesPerMB = 1 << 20
)

// Vocabularies exported as one series per value (1 for the current one),
// so a dashboard can count or alert without the series set changing.
func modelStatuses() []metrics.Status {
	return []metrics.Status{metrics.StatusHealthy, metrics.StatusDegraded, metrics.StatusLoading, metrics.StatusUnhealthy, metrics.StatusUnreachable}
}

func containerHealths() []metrics.Status {
	return []metrics.Status{metrics.StatusHealthy, metrics.StatusUnhealthy, metrics.StatusStarting, metrics.StatusNone, metrics.StatusUnknown}
}

// droppedReporter is a Hub that also counts the WebSocket clients it
// dropped for being slow.
type droppedReporter interface{ ClientsDropped() uint64 }

// refusedReporter is a Hub that also counts the WebSocket upgrades it
// refused for its client cap (--ws-max-clients).
type refusedReporter interface{ ClientsRefused() uint64 }

type desc struct{ *prometheus.Desc }

func newDesc(name, help string, labels ...string) desc {
	return desc{prometheus.NewDesc(name, help, labels, nil)}
}

// updateCollector turns the hub's counters and latest update into metrics
// at scrape time; nothing is cached between scrapes, and a field the update
// does not have is not exported (absent, never 0).
type updateCollector struct {
	hub Hub

	samples, late, observations, dropped, obsDropped, hosts, clients, clientsDropped, updateTS desc
	clientsRefused, gaps, readBack                                                             desc

	gpuUtil, gpuMemUsed, gpuMemTotal, gpuTemp, gpuPower desc

	modelStatus, modelSlotsActive, modelSlotsTotal, latency, images, events desc

	pgConns, pgConnsMax, pgHit, pgTPS, pgDeadlocks, pgSize, pgLongest desc
	pgStatus, redisStatus                                             desc

	redisClients, redisMem, redisHit, redisBlocked, redisOps, redisEvicted, redisKeys desc

	hostOnline, hostCPU, hostMemUsed, hostMemTotal, hostDiskUsed, hostDiskTotal desc

	containerHealth, containerState, alerts desc
}

func newUpdateCollector(hub Hub) *updateCollector {
	gpu := []string{"host", "gpu", "name"}
	return &updateCollector{
		hub:            hub,
		samples:        newDesc("sysperf_ingest_samples_total", "Agent samples accepted, late ones included."),
		late:           newDesc("sysperf_ingest_late_samples_total", "Samples older than their host's newest, kept for history only."),
		observations:   newDesc("sysperf_ingest_observations_total", "Latency observations accepted from sysperf.v1.latency.*."),
		dropped:        newDesc("sysperf_ingest_dropped_samples_total", "Agent samples dropped, by cause.", "cause"),
		obsDropped:     newDesc("sysperf_ingest_dropped_observations_total", "Latency messages dropped, by cause.", "cause"),
		hosts:          newDesc("sysperf_hosts", "Hosts the hub knows."),
		clients:        newDesc("sysperf_websocket_clients", "Connected WebSocket clients."),
		clientsDropped: newDesc("sysperf_websocket_dropped_clients_total", "WebSocket clients dropped for being too slow to take the updates."),
		clientsRefused: newDesc("sysperf_websocket_refused_clients_total", "WebSocket upgrades refused with 503 because --ws-max-clients were connected."),
		updateTS:       newDesc("sysperf_update_timestamp_seconds", "When the latest performance update was built (unix time)."),
		gaps:           newDesc("sysperf_ingest_gaps_total", "Times the live samples subscription lost messages or reconnected, and the hub read the span back from the stream."),
		readBack:       newDesc("sysperf_ingest_read_back_total", "Messages read from the samples stream rather than the live subscription: the start-up replay and the gaps."),

		gpuUtil:     newDesc("sysperf_gpu_utilization_ratio", "GPU utilization, 0 to 1.", gpu...),
		gpuMemUsed:  newDesc("sysperf_gpu_memory_used_bytes", "GPU memory in use.", gpu...),
		gpuMemTotal: newDesc("sysperf_gpu_memory_total_bytes", "GPU memory in all.", gpu...),
		gpuTemp:     newDesc("sysperf_gpu_temperature_celsius", "GPU temperature.", gpu...),
		gpuPower:    newDesc("sysperf_gpu_power_watts", "GPU power draw.", gpu...),

		modelStatus:      newDesc("sysperf_model_status", "1 for the model server's current status, 0 for the others.", "model", "status"),
		modelSlotsActive: newDesc("sysperf_model_slots_active", "LLM server slots processing a request.", "model"),
		modelSlotsTotal:  newDesc("sysperf_model_slots", "LLM server slots in all.", "model"),
		latency:          newDesc("sysperf_inference_latency_seconds", "Inference latency over the hub's window, by statistic (avg, p95, p99).", "stage", "statistic"),
		images:           newDesc("sysperf_pipeline_images_per_second", "Images processed per second over the window."),
		events:           newDesc("sysperf_pipeline_events_per_second", "Events created per second over the window."),

		pgStatus:    newDesc("sysperf_postgres_healthy", "1 when PostgreSQL answered the last poll, 0 otherwise."),
		pgConns:     newDesc("sysperf_postgres_connections", "Client backends of the monitored database."),
		pgConnsMax:  newDesc("sysperf_postgres_connections_max", "The application's pool size, else max_connections."),
		pgHit:       newDesc("sysperf_postgres_cache_hit_ratio", "Buffer cache hits over the last interval, 0 to 1."),
		pgTPS:       newDesc("sysperf_postgres_transactions_per_second", "Commits and rollbacks per second over the last interval."),
		pgDeadlocks: newDesc("sysperf_postgres_deadlocks_total", "Deadlocks detected in the monitored database."),
		pgSize:      newDesc("sysperf_postgres_database_size_bytes", "Size of the monitored database."),
		pgLongest:   newDesc("sysperf_postgres_longest_query_seconds", "Age of the longest running active query."),

		redisStatus:  newDesc("sysperf_redis_healthy", "1 when Redis answered the last poll, 0 otherwise."),
		redisClients: newDesc("sysperf_redis_connected_clients", "Client connections."),
		redisMem:     newDesc("sysperf_redis_memory_used_bytes", "Memory Redis has allocated (used_memory)."),
		redisHit:     newDesc("sysperf_redis_keyspace_hit_ratio", "Key lookups that hit over the last interval, 0 to 1."),
		redisBlocked: newDesc("sysperf_redis_blocked_clients", "Clients blocked in a blocking call."),
		redisOps:     newDesc("sysperf_redis_operations_per_second", "Commands per second as Redis reports it."),
		redisEvicted: newDesc("sysperf_redis_evicted_keys_total", "Keys evicted for the memory limit."),
		redisKeys:    newDesc("sysperf_redis_keys", "Keys over all databases."),

		hostOnline:    newDesc("sysperf_host_online", "1 when the host's agent reported within three intervals.", "host"),
		hostCPU:       newDesc("sysperf_host_cpu_utilization_ratio", "Host CPU busy, 0 to 1.", "host"),
		hostMemUsed:   newDesc("sysperf_host_memory_used_bytes", "Host memory in use.", "host"),
		hostMemTotal:  newDesc("sysperf_host_memory_total_bytes", "Host memory in all.", "host"),
		hostDiskUsed:  newDesc("sysperf_host_disk_used_bytes", "Host disk space in use.", "host"),
		hostDiskTotal: newDesc("sysperf_host_disk_total_bytes", "Host disk space in all.", "host"),

		containerHealth: newDesc("sysperf_container_health", "1 for the container's current health, 0 for the others.", "container", "health"),
		containerState:  newDesc("sysperf_container_state", "1 for the container's current state as the engine reports it.", "container", "state"),
		alerts:          newDesc("sysperf_alerts", "Alerts now pending or firing, by severity.", "severity"),
	}
}

func (c *updateCollector) all() []desc {
	return []desc{c.samples, c.late, c.observations, c.dropped, c.obsDropped, c.hosts, c.clients, c.clientsDropped, c.clientsRefused, c.updateTS, c.gaps, c.readBack,
		c.gpuUtil, c.gpuMemUsed, c.gpuMemTotal, c.gpuTemp, c.gpuPower,
		c.modelStatus, c.modelSlotsActive, c.modelSlotsTotal, c.latency, c.images, c.events,
		c.pgStatus, c.pgConns, c.pgConnsMax, c.pgHit, c.pgTPS, c.pgDeadlocks, c.pgSize, c.pgLongest,
		c.redisStatus, c.redisClients, c.redisMem, c.redisHit, c.redisBlocked, c.redisOps, c.redisEvicted, c.redisKeys,
		c.hostOnline, c.hostCPU, c.hostMemUsed, c.hostMemTotal, c.hostDiskUsed, c.hostDiskTotal,
		c.containerHealth, c.containerState, c.alerts}
}

// Describe sends every descriptor, so the registry checks label
// consistency.
func (c *updateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.all() {
		ch <- d.Desc
	}
}

// emitter writes const metrics and drops a second series with the same
// labels (two sources naming the same GPU), which would otherwise fail the
// whole scrape.
type emitter struct {
	ch   chan<- prometheus.Metric
	seen map[string]bool
}

func (e *emitter) emit(d desc, t prometheus.ValueType, v float64, labels ...string) {
	key := d.String()
	for _, l := range labels {
		key += "\xff" + l
	}
	if e.seen[key] {
		return
	}
	e.seen[key] = true
	e.ch <- prometheus.MustNewConstMetric(d.Desc, t, v, labels...)
}

func (e *emitter) gauge(d desc, v float64, labels ...string) {
	e.emit(d, prometheus.GaugeValue, v, labels...)
}

// opt emits a gauge only when the value exists, scaled.
func (e *emitter) opt(d desc, v *float64, scale float64, labels ...string) {
	if v != nil {
		e.gauge(d, *v*scale, labels...)
	}
}

func (e *emitter) optInt(d desc, t prometheus.ValueType, v *int64, labels ...string) {
	if v != nil {
		e.emit(d, t, float64(*v), labels...)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect reads the hub now.
func (c *updateCollector) Collect(ch chan<- prometheus.Metric) {
	e := &emitter{ch: ch, seen: map[string]bool{}}
	in := c.hub.Ingest()
	e.emit(c.samples, prometheus.CounterValue, float64(in.Samples))
	e.emit(c.late, prometheus.CounterValue, float64(in.Late))
	e.emit(c.observations, prometheus.CounterValue, float64(in.Observations))
	e.emit(c.gaps, prometheus.CounterValue, float64(in.Gaps))
	e.emit(c.readBack, prometheus.CounterValue, float64(in.ReadBack))
	for cause, n := range in.Dropped {
		e.emit(c.dropped, prometheus.CounterValue, float64(n), cause)
	}
	for cause, n := range in.ObservationsDropped {
		e.emit(c.obsDropped, prometheus.CounterValue, float64(n), cause)
	}
	e.gauge(c.hosts, float64(in.Hosts))
	e.gauge(c.clients, float64(c.hub.Clients()))
	if d, ok := c.hub.(droppedReporter); ok {
		e.emit(c.clientsDropped, prometheus.CounterValue, float64(d.ClientsDropped()))
	}
	if r, ok := c.hub.(refusedReporter); ok {
		e.emit(c.clientsRefused, prometheus.CounterValue, float64(r.ClientsRefused()))
	}

	u := c.hub.Latest()
	if u == nil {
		return
	}
	e.gauge(c.updateTS, float64(u.Timestamp.UnixNano())/1e9)
	c.collectGPUs(e, u)
	c.collectModels(e, u)
	c.collectDatabases(e, u)
	c.collectHosts(e, u)
	c.collectContainers(e, u)
	// Both severities always have a series, so "no alerts" reads 0.
	counts := map[metrics.Severity]int{metrics.SeverityWarning: 0, metrics.SeverityCritical: 0}
	for _, a := range u.Alerts {
		counts[a.Severity]++
	}
	for sev, n := range counts {
		e.gauge(c.alerts, float64(n), string(sev))
	}
}

func (c *updateCollector) collectGPUs(e *emitter, u *metrics.Update) {
	gpus := u.GPUs
	if len(gpus) == 0 && u.GPU.Name != nil {
		gpus = []metrics.GPUView{u.GPU}
	}
	for _, g := range gpus {
		idx := ""
		if g.Index != nil {
			idx = strconv.Itoa(*g.Index)
		}
		name := ""
		if g.Name != nil {
			name = *g.Name
		}
		l := []string{g.Host, idx, name}
		e.opt(c.gpuUtil, g.Utilization, 0.01, l...)
		e.opt(c.gpuMemUsed, g.VRAMUsedGB, bytesPerGB, l...)
		e.opt(c.gpuMemTotal, g.VRAMTotalGB, bytesPerGB, l...)
		e.opt(c.gpuTemp, g.Temperature, 1, l...)
		e.opt(c.gpuPower, g.PowerWatts, 1, l...)
	}
}

func (c *updateCollector) collectModels(e *emitter, u *metrics.Update) {
	for _, m := range []struct {
		name string
		v    metrics.ModelView
	}{{metrics.RoleRTDETR, u.AIModels.RTDETR}, {metrics.RoleNemotron, u.AIModels.Nemotron}} {
		if m.v.Status != "" {
			known := false
			for _, st := range modelStatuses() {
				known = known || st == m.v.Status
				e.gauge(c.modelStatus, b2f(st == m.v.Status), m.name, string(st))
			}
			if !known {
				e.gauge(c.modelStatus, 1, m.name, string(m.v.Status))
			}
		}
		if m.v.SlotsActive != nil {
			e.gauge(c.modelSlotsActive, float64(*m.v.SlotsActive), m.name)
		}
		if m.v.SlotsTotal != nil {
			e.gauge(c.modelSlotsTotal, float64(*m.v.SlotsTotal), m.name)
		}
	}
	for _, s := range []struct {
		stage string
		v     metrics.Stats
	}{{metrics.RoleRTDETR, u.Inference.RTDETR}, {metrics.RoleNemotron, u.Inference.Nemotron}, {metrics.RolePipeline, u.Inference.Pipeline}} {
		e.opt(c.latency, s.v.Avg, 0.001, s.stage, "avg")
		e.opt(c.latency, s.v.P95, 0.001, s.stage, "p95")
		e.opt(c.latency, s.v.P99, 0.001, s.stage, "p99")
	}
	e.opt(c.images, u.Inference.Throughput.ImagesPerMin, 1.0/60)
	e.opt(c.events, u.Inference.Throughput.EventsPerMin, 1.0/60)
}

func (c *updateCollector) collectDatabases(e *emitter, u *metrics.Update) {
	pg := u.Databases.PostgreSQL
	if pg.Status != "" && pg.Status != "unconfigured" {
		e.gauge(c.pgStatus, b2f(pg.Status == metrics.StatusHealthy))
	}
	if pg.ConnectionsActive != nil {
		e.gauge(c.pgConns, float64(*pg.ConnectionsActive))
	}
	if pg.ConnectionsMax != nil {
		e.gauge(c.pgConnsMax, float64(*pg.ConnectionsMax))
	}
	e.opt(c.pgHit, pg.CacheHitRatio, 0.01)
	e.opt(c.pgTPS, pg.TransactionsPerMin, 1.0/60)
	e.optInt(c.pgDeadlocks, prometheus.CounterValue, pg.Deadlocks)
	e.optInt(c.pgSize, prometheus.GaugeValue, pg.SizeBytes)
	e.opt(c.pgLongest, pg.LongestQueryS, 1)

	r := u.Databases.Redis
	if r.Status != "" && r.Status != "unconfigured" {
		e.gauge(c.redisStatus, b2f(r.Status == metrics.StatusHealthy))
	}
	e.optInt(c.redisClients, prometheus.GaugeValue, r.ConnectedClients)
	e.opt(c.redisMem, r.MemoryMB, bytesPerMB)
	e.opt(c.redisHit, r.HitRatio, 0.01)
	e.optInt(c.redisBlocked, prometheus.GaugeValue, r.BlockedClients)
	e.opt(c.redisOps, r.OpsPerSec, 1)
	e.optInt(c.redisEvicted, prometheus.CounterValue, r.EvictedKeys)
	e.optInt(c.redisKeys, prometheus.GaugeValue, r.Keys)
}

func (c *updateCollector) collectHosts(e *emitter, u *metrics.Update) {
	for _, h := range u.Hosts {
		e.gauge(c.hostOnline, b2f(h.Online), h.Host)
		s := h.System
		e.opt(c.hostCPU, s.CPUPercent, 0.01, h.Host)
		e.opt(c.hostMemUsed, s.RAMUsedGB, bytesPerGB, h.Host)
		e.opt(c.hostMemTotal, s.RAMTotalGB, bytesPerGB, h.Host)
		e.opt(c.hostDiskUsed, s.DiskUsedGB, bytesPerGB, h.Host)
		e.opt(c.hostDiskTotal, s.DiskTotalGB, bytesPerGB, h.Host)
	}
}

func (c *updateCollector) collectContainers(e *emitter, u *metrics.Update) {
	for _, ct := range u.Containers {
		known := false
		for _, h := range containerHealths() {
			known = known || h == ct.Health
			e.gauge(c.containerHealth, b2f(h == ct.Health), ct.Name, string(h))
		}
		if !known && ct.Health != "" {
			e.gauge(c.containerHealth, 1, ct.Name, string(ct.Health))
		}
		if ct.Status != "" {
			e.gauge(c.containerState, 1, ct.Name, ct.Status)
		}
	}
}
