package export

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

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

// family is one metric family of the update, its HELP and TYPE lines and
// each label's `name="` prefix built once.
type family struct {
	name   string
	head   string
	labels []string
}

func newFamily(name, typ, help string, labels ...string) *family {
	f := &family{name: name, head: "# HELP " + name + " " + escapeHelp(help) + "\n# TYPE " + name + " " + typ + "\n"}
	for i, l := range labels {
		sep := ","
		if i == 0 {
			sep = "{"
		}
		f.labels = append(f.labels, sep+l+`="`)
	}
	return f
}

func gaugeFamily(name, help string, labels ...string) *family {
	return newFamily(name, "gauge", help, labels...)
}

func counterFamily(name, help string, labels ...string) *family {
	return newFamily(name, "counter", help, labels...)
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// families is the update's exposition, written as text at every scrape
// straight from the hub's counters and latest update: client_golang's
// constant metrics cost a label-pair set and a dedupe key a series, 150 MB
// and a third of a second of CPU at 2,000 hosts × 8 GPUs. Nothing is
// cached between scrapes, and a field the update does not have is not
// exported (absent, never 0).
type families struct {
	hub Hub

	samples, late, observations, dropped, obsDropped, hosts, clients, clientsDropped, updateTS *family
	clientsRefused, gaps, readBack, stalls, short, held                                        *family

	gpuUtil, gpuMemUsed, gpuMemTotal, gpuTemp, gpuPower *family

	modelStatus, modelSlotsActive, modelSlotsTotal, latency, images, events *family

	pgConns, pgConnsMax, pgHit, pgTPS, pgDeadlocks, pgSize, pgLongest *family
	pgStatus, redisStatus                                             *family

	redisClients, redisMem, redisHit, redisBlocked, redisOps, redisEvicted, redisKeys *family

	hostOnline, hostCPU, hostMemUsed, hostMemTotal, hostDiskUsed, hostDiskTotal *family

	containerHealth, containerState, alerts *family
}

func newFamilies(hub Hub) *families {
	gpu := []string{"host", "gpu", "name"}
	return &families{
		hub:            hub,
		samples:        counterFamily("sysperf_ingest_samples_total", "Agent samples accepted, late ones included."),
		late:           counterFamily("sysperf_ingest_late_samples_total", "Samples older than their host's newest, kept for history only."),
		observations:   counterFamily("sysperf_ingest_observations_total", "Latency observations accepted from sysperf.v1.latency.*."),
		dropped:        counterFamily("sysperf_ingest_dropped_samples_total", "Agent samples dropped, by cause.", "cause"),
		obsDropped:     counterFamily("sysperf_ingest_dropped_observations_total", "Latency messages dropped, by cause.", "cause"),
		hosts:          gaugeFamily("sysperf_hosts", "Hosts the hub knows."),
		clients:        gaugeFamily("sysperf_websocket_clients", "Connected WebSocket clients."),
		clientsDropped: counterFamily("sysperf_websocket_dropped_clients_total", "WebSocket clients dropped for being too slow to take the updates."),
		clientsRefused: counterFamily("sysperf_websocket_refused_clients_total", "WebSocket upgrades refused with 503 because --ws-max-clients were connected."),
		updateTS:       gaugeFamily("sysperf_update_timestamp_seconds", "When the latest performance update was built (unix time)."),
		gaps:           counterFamily("sysperf_ingest_gaps_total", "Times the live samples subscription lost messages or reconnected, and the hub read the span back from the stream."),
		readBack:       counterFamily("sysperf_ingest_read_back_total", "Messages read from the samples stream rather than the live subscription: the start-up replay and the gaps."),
		stalls:         counterFamily("sysperf_ingest_read_back_stalls_total", "Times a read-back's consumer delivered nothing while the stream held more for it, or skipped a delivery, and the read went on with a new one."),
		short:          counterFamily("sysperf_ingest_read_back_short_total", "Read-backs that began after their start: the samples stream's limits (its byte cap) had removed what they were to read first, which is lost."),
		held:           gaugeFamily("sysperf_ingest_stream_held_seconds", "Time from the oldest to the newest sample the samples stream holds: how far back a restart or a read-back reaches. Short of --retention once the stream reaches --stream-max-bytes."),

		gpuUtil:     gaugeFamily("sysperf_gpu_utilization_ratio", "GPU utilization, 0 to 1.", gpu...),
		gpuMemUsed:  gaugeFamily("sysperf_gpu_memory_used_bytes", "GPU memory in use.", gpu...),
		gpuMemTotal: gaugeFamily("sysperf_gpu_memory_total_bytes", "GPU memory in all.", gpu...),
		gpuTemp:     gaugeFamily("sysperf_gpu_temperature_celsius", "GPU temperature.", gpu...),
		gpuPower:    gaugeFamily("sysperf_gpu_power_watts", "GPU power draw.", gpu...),

		modelStatus:      gaugeFamily("sysperf_model_status", "1 for the model server's current status, 0 for the others.", "model", "status"),
		modelSlotsActive: gaugeFamily("sysperf_model_slots_active", "LLM server slots processing a request.", "model"),
		modelSlotsTotal:  gaugeFamily("sysperf_model_slots", "LLM server slots in all.", "model"),
		latency:          gaugeFamily("sysperf_inference_latency_seconds", "Inference latency over the hub's window, by statistic (avg, p95, p99).", "stage", "statistic"),
		images:           gaugeFamily("sysperf_pipeline_images_per_second", "Images processed per second over the window."),
		events:           gaugeFamily("sysperf_pipeline_events_per_second", "Events created per second over the window."),

		pgStatus:    gaugeFamily("sysperf_postgres_healthy", "1 when PostgreSQL answered the last poll, 0 otherwise."),
		pgConns:     gaugeFamily("sysperf_postgres_connections", "Client backends of the monitored database."),
		pgConnsMax:  gaugeFamily("sysperf_postgres_connections_max", "The application's pool size, else max_connections."),
		pgHit:       gaugeFamily("sysperf_postgres_cache_hit_ratio", "Buffer cache hits over the last interval, 0 to 1."),
		pgTPS:       gaugeFamily("sysperf_postgres_transactions_per_second", "Commits and rollbacks per second over the last interval."),
		pgDeadlocks: counterFamily("sysperf_postgres_deadlocks_total", "Deadlocks detected in the monitored database."),
		pgSize:      gaugeFamily("sysperf_postgres_database_size_bytes", "Size of the monitored database."),
		pgLongest:   gaugeFamily("sysperf_postgres_longest_query_seconds", "Age of the longest running active query."),

		redisStatus:  gaugeFamily("sysperf_redis_healthy", "1 when Redis answered the last poll, 0 otherwise."),
		redisClients: gaugeFamily("sysperf_redis_connected_clients", "Client connections."),
		redisMem:     gaugeFamily("sysperf_redis_memory_used_bytes", "Memory Redis has allocated (used_memory)."),
		redisHit:     gaugeFamily("sysperf_redis_keyspace_hit_ratio", "Key lookups that hit over the last interval, 0 to 1."),
		redisBlocked: gaugeFamily("sysperf_redis_blocked_clients", "Clients blocked in a blocking call."),
		redisOps:     gaugeFamily("sysperf_redis_operations_per_second", "Commands per second as Redis reports it."),
		redisEvicted: counterFamily("sysperf_redis_evicted_keys_total", "Keys evicted for the memory limit."),
		redisKeys:    gaugeFamily("sysperf_redis_keys", "Keys over all databases."),

		hostOnline:    gaugeFamily("sysperf_host_online", "1 when the host's agent reported within three intervals.", "host"),
		hostCPU:       gaugeFamily("sysperf_host_cpu_utilization_ratio", "Host CPU busy, 0 to 1.", "host"),
		hostMemUsed:   gaugeFamily("sysperf_host_memory_used_bytes", "Host memory in use.", "host"),
		hostMemTotal:  gaugeFamily("sysperf_host_memory_total_bytes", "Host memory in all.", "host"),
		hostDiskUsed:  gaugeFamily("sysperf_host_disk_used_bytes", "Host disk space in use.", "host"),
		hostDiskTotal: gaugeFamily("sysperf_host_disk_total_bytes", "Host disk space in all.", "host"),

		containerHealth: gaugeFamily("sysperf_container_health", "1 for the container's current health, 0 for the others.", "container", "health"),
		containerState:  gaugeFamily("sysperf_container_state", "1 for the container's current state as the engine reports it.", "container", "state"),
		alerts:          gaugeFamily("sysperf_alerts", "Alerts now pending or firing, by severity.", "severity"),
	}
}

// gpuKey is a GPU's identity in its series' labels.
type gpuKey struct{ host, idx, name string }

// writer appends the text exposition (version 0.0.4) of the families;
// one writer serves one scrape at a time and is reused through a pool, so
// its buffer and maps keep their room between scrapes.
type writer struct {
	b   []byte
	cur *family
	// claimed is, per GPU or host identity, the families a series
	// already went out for; mask, per GPU or host of the update, the
	// families its series go out for: a second source naming the same
	// GPU loses those the first had (a duplicate series would make the
	// exposition invalid).
	gpus  map[gpuKey]uint8
	hosts map[string]uint8
	pairs map[[3]string]bool
	mask  []uint8
}

func newWriter() *writer {
	return &writer{gpus: map[gpuKey]uint8{}, hosts: map[string]uint8{}, pairs: map[[3]string]bool{}}
}

func (w *writer) reset() {
	w.b, w.cur, w.mask = w.b[:0], nil, w.mask[:0]
	clear(w.gpus)
	clear(w.hosts)
	clear(w.pairs)
}

// sample writes one series of f; f's HELP and TYPE go out before its
// first series, and the families' samples must come together.
func (w *writer) sample(f *family, v float64, values ...string) {
	if w.cur != f {
		w.cur = f
		w.b = append(w.b, f.head...)
	}
	w.b = append(w.b, f.name...)
	for i, v := range values {
		w.b = append(w.b, f.labels[i]...)
		w.b = appendLabelValue(w.b, v)
		w.b = append(w.b, '"')
	}
	if len(values) > 0 {
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ' ')
	w.b = appendFloat(w.b, v)
	w.b = append(w.b, '\n')
}

// opt writes a series only when the value exists, scaled.
func (w *writer) opt(f *family, v *float64, scale float64, values ...string) {
	if v != nil {
		w.sample(f, *v*scale, values...)
	}
}

func (w *writer) optInt(f *family, v *int64) {
	if v != nil {
		w.sample(f, float64(*v))
	}
}

// appendLabelValue escapes as the text format asks: backslash, double
// quote and line feed. A value that is not UTF-8 has its bad bytes
// replaced, which client_golang would have refused.
func appendLabelValue(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '"':
			esc = `\"`
		case '\n':
			esc = `\n`
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendFloat formats as Prometheus' text encoder does.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// write appends the hub's counters and its latest update, families in a
// fixed order and series in the update's.
func (fs *families) write(w *writer) {
	in := fs.hub.Ingest()
	w.sample(fs.samples, float64(in.Samples))
	w.sample(fs.late, float64(in.Late))
	w.sample(fs.observations, float64(in.Observations))
	w.sample(fs.gaps, float64(in.Gaps))
	w.sample(fs.readBack, float64(in.ReadBack))
	w.sample(fs.stalls, float64(in.Stalls))
	w.sample(fs.short, float64(in.Short))
	if in.Held != nil {
		w.sample(fs.held, in.Held.Seconds())
	}
	writeCounts(w, fs.dropped, in.Dropped)
	writeCounts(w, fs.obsDropped, in.ObservationsDropped)
	w.sample(fs.hosts, float64(in.Hosts))
	w.sample(fs.clients, float64(fs.hub.Clients()))
	if d, ok := fs.hub.(droppedReporter); ok {
		w.sample(fs.clientsDropped, float64(d.ClientsDropped()))
	}
	if r, ok := fs.hub.(refusedReporter); ok {
		w.sample(fs.clientsRefused, float64(r.ClientsRefused()))
	}

	u := fs.hub.Latest()
	if u == nil {
		return
	}
	w.sample(fs.updateTS, float64(u.Timestamp.UnixNano())/1e9)
	fs.writeGPUs(w, u)
	fs.writeModels(w, u)
	fs.writeDatabases(w, u)
	fs.writeHosts(w, u)
	fs.writeContainers(w, u)
	fs.writeAlerts(w, u)
}

// writeCounts writes a counter by cause, causes sorted.
func writeCounts(w *writer, f *family, counts map[string]uint64) {
	causes := make([]string, 0, len(counts))
	for c := range counts {
		causes = append(causes, c)
	}
	slices.Sort(causes)
	for _, c := range causes {
		w.sample(f, float64(counts[c]), c)
	}
}

func (fs *families) writeGPUs(w *writer, u *metrics.Update) {
	gpus := u.GPUs
	if len(gpus) == 0 && u.GPU.Name != nil {
		gpus = []metrics.GPUView{u.GPU}
	}
	// One pass settles which GPU writes which series; then one pass a
	// family keeps each family's samples together.
	type value struct {
		f     *family
		v     func(*metrics.GPUView) *float64
		scale float64
	}
	values := [...]value{
		{fs.gpuUtil, func(g *metrics.GPUView) *float64 { return g.Utilization }, 0.01},
		{fs.gpuMemUsed, func(g *metrics.GPUView) *float64 { return g.VRAMUsedGB }, bytesPerGB},
		{fs.gpuMemTotal, func(g *metrics.GPUView) *float64 { return g.VRAMTotalGB }, bytesPerGB},
		{fs.gpuTemp, func(g *metrics.GPUView) *float64 { return g.Temperature }, 1},
		{fs.gpuPower, func(g *metrics.GPUView) *float64 { return g.PowerWatts }, 1},
	}
	for i := range gpus {
		var has uint8
		for j, v := range values {
			if v.v(&gpus[i]) != nil {
				has |= 1 << j
			}
		}
		k := gpuLabels(&gpus[i])
		seen := w.gpus[k]
		w.gpus[k] = seen | has
		w.mask = append(w.mask, has&^seen)
	}
	for j, v := range values {
		for i := range gpus {
			if w.mask[i]&(1<<j) != 0 {
				k := gpuLabels(&gpus[i])
				w.sample(v.f, *v.v(&gpus[i])*v.scale, k.host, k.idx, k.name)
			}
		}
	}
	w.mask = w.mask[:0]
}

func gpuLabels(g *metrics.GPUView) gpuKey {
	k := gpuKey{host: g.Host}
	if g.Index != nil {
		k.idx = strconv.Itoa(*g.Index)
	}
	if g.Name != nil {
		k.name = *g.Name
	}
	return k
}

func (fs *families) writeModels(w *writer, u *metrics.Update) {
	models := [...]struct {
		name string
		v    metrics.ModelView
	}{{metrics.RoleRTDETR, u.AIModels.RTDETR}, {metrics.RoleNemotron, u.AIModels.Nemotron}}
	for _, m := range models {
		if m.v.Status == "" {
			continue
		}
		known := false
		for _, st := range modelStatuses() {
			known = known || st == m.v.Status
			w.sample(fs.modelStatus, b2f(st == m.v.Status), m.name, string(st))
		}
		if !known {
			w.sample(fs.modelStatus, 1, m.name, string(m.v.Status))
		}
	}
	for _, m := range models {
		if m.v.SlotsActive != nil {
			w.sample(fs.modelSlotsActive, float64(*m.v.SlotsActive), m.name)
		}
	}
	for _, m := range models {
		if m.v.SlotsTotal != nil {
			w.sample(fs.modelSlotsTotal, float64(*m.v.SlotsTotal), m.name)
		}
	}
	for _, s := range [...]struct {
		stage string
		v     metrics.Stats
	}{{metrics.RoleRTDETR, u.Inference.RTDETR}, {metrics.RoleNemotron, u.Inference.Nemotron}, {metrics.RolePipeline, u.Inference.Pipeline}} {
		w.opt(fs.latency, s.v.Avg, 0.001, s.stage, "avg")
		w.opt(fs.latency, s.v.P95, 0.001, s.stage, "p95")
		w.opt(fs.latency, s.v.P99, 0.001, s.stage, "p99")
	}
	w.opt(fs.images, u.Inference.Throughput.ImagesPerMin, 1.0/60)
	w.opt(fs.events, u.Inference.Throughput.EventsPerMin, 1.0/60)
}

func (fs *families) writeDatabases(w *writer, u *metrics.Update) {
	pg := u.Databases.PostgreSQL
	if pg.Status != "" && pg.Status != "unconfigured" {
		w.sample(fs.pgStatus, b2f(pg.Status == metrics.StatusHealthy))
	}
	if pg.ConnectionsActive != nil {
		w.sample(fs.pgConns, float64(*pg.ConnectionsActive))
	}
	if pg.ConnectionsMax != nil {
		w.sample(fs.pgConnsMax, float64(*pg.ConnectionsMax))
	}
	w.opt(fs.pgHit, pg.CacheHitRatio, 0.01)
	w.opt(fs.pgTPS, pg.TransactionsPerMin, 1.0/60)
	w.optInt(fs.pgDeadlocks, pg.Deadlocks)
	w.optInt(fs.pgSize, pg.SizeBytes)
	w.opt(fs.pgLongest, pg.LongestQueryS, 1)

	r := u.Databases.Redis
	if r.Status != "" && r.Status != "unconfigured" {
		w.sample(fs.redisStatus, b2f(r.Status == metrics.StatusHealthy))
	}
	w.optInt(fs.redisClients, r.ConnectedClients)
	w.opt(fs.redisMem, r.MemoryMB, bytesPerMB)
	w.opt(fs.redisHit, r.HitRatio, 0.01)
	w.optInt(fs.redisBlocked, r.BlockedClients)
	w.opt(fs.redisOps, r.OpsPerSec, 1)
	w.optInt(fs.redisEvicted, r.EvictedKeys)
	w.optInt(fs.redisKeys, r.Keys)
}

func (fs *families) writeHosts(w *writer, u *metrics.Update) {
	type value struct {
		f     *family
		v     func(*metrics.HostView) *float64
		scale float64
	}
	values := [...]value{
		{fs.hostCPU, func(s *metrics.HostView) *float64 { return s.CPUPercent }, 0.01},
		{fs.hostMemUsed, func(s *metrics.HostView) *float64 { return s.RAMUsedGB }, bytesPerGB},
		{fs.hostMemTotal, func(s *metrics.HostView) *float64 { return s.RAMTotalGB }, bytesPerGB},
		{fs.hostDiskUsed, func(s *metrics.HostView) *float64 { return s.DiskUsedGB }, bytesPerGB},
		{fs.hostDiskTotal, func(s *metrics.HostView) *float64 { return s.DiskTotalGB }, bytesPerGB},
	}
	// Bit 0 is sysperf_host_online, which every host has; bit j+1 the
	// value j.
	for i := range u.Hosts {
		has := uint8(1)
		for j, v := range values {
			if v.v(&u.Hosts[i].System) != nil {
				has |= 1 << (j + 1)
			}
		}
		seen := w.hosts[u.Hosts[i].Host]
		w.hosts[u.Hosts[i].Host] = seen | has
		w.mask = append(w.mask, has&^seen)
	}
	for i, h := range u.Hosts {
		if w.mask[i]&1 != 0 {
			w.sample(fs.hostOnline, b2f(h.Online), h.Host)
		}
	}
	for j, v := range values {
		for i := range u.Hosts {
			if w.mask[i]&(1<<(j+1)) != 0 {
				w.sample(v.f, *v.v(&u.Hosts[i].System)*v.scale, u.Hosts[i].Host)
			}
		}
	}
	w.mask = w.mask[:0]
}

// pair writes a two-label series unless the same labels went out already.
func (w *writer) pair(f *family, v float64, a, b string) {
	k := [3]string{f.name, a, b}
	if w.pairs[k] {
		return
	}
	w.pairs[k] = true
	w.sample(f, v, a, b)
}

func (fs *families) writeContainers(w *writer, u *metrics.Update) {
	for _, ct := range u.Containers {
		known := false
		for _, h := range containerHealths() {
			known = known || h == ct.Health
			w.pair(fs.containerHealth, b2f(h == ct.Health), ct.Name, string(h))
		}
		if !known && ct.Health != "" {
			w.pair(fs.containerHealth, 1, ct.Name, string(ct.Health))
		}
	}
	for _, ct := range u.Containers {
		if ct.Status != "" {
			w.pair(fs.containerState, 1, ct.Name, ct.Status)
		}
	}
}

// writeAlerts writes both severities always, so "no alerts" reads 0, then
// any other severity the alerts name, sorted.
func (fs *families) writeAlerts(w *writer, u *metrics.Update) {
	var warning, critical int
	var other map[metrics.Severity]int
	for _, a := range u.Alerts {
		switch a.Severity {
		case metrics.SeverityWarning:
			warning++
		case metrics.SeverityCritical:
			critical++
		default:
			if other == nil {
				other = map[metrics.Severity]int{}
			}
			other[a.Severity]++
		}
	}
	w.sample(fs.alerts, float64(warning), string(metrics.SeverityWarning))
	w.sample(fs.alerts, float64(critical), string(metrics.SeverityCritical))
	for _, sev := range slices.Sorted(maps.Keys(other)) {
		w.sample(fs.alerts, float64(other[sev]), string(sev))
	}
}
