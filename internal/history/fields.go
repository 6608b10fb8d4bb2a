package history

import (
	"math"
	"strconv"
	"strings"

	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// section is the view type a field is read from and written back to.
type section uint8

const (
	secHost       section = iota // metrics.HostView of a host
	secGPU                       // metrics.GPUView of one GPU of a host
	secModels                    // metrics.AIModels of a host
	secInference                 // metrics.Latencies, the hub's
	secDatabases                 // metrics.Databases
	secContainers                // metrics.ContainerCounts
	secFleet                     // metrics.FleetFigures
	numSections
)

// ofHub reports whether s is one of the sections Record reads from an
// update.
func (s section) ofHub() bool {
	switch s {
	case secInference, secDatabases, secContainers, secFleet:
		return true
	}
	return false
}

// field is one figure history keeps. path is its wire name and JSON path:
// in rollups, hub readings and Point.Max. It is the path in an update
// ("host.cpu_percent"), relative to a GPU view for GPU fields
// ("utilization"), and "fleet." + the FleetFigures key for the fleet's.
// get reads the figure from its section's view type (false: absent) and
// set writes it back there.
type field struct {
	path string
	sec  section
	get  func(view any) (float64, bool)
	set  func(view any, v float64)
}

// num is a field at a *float64 of T.
func num[T any](sec section, path string, at func(*T) **float64) field {
	return field{
		path: path, sec: sec,
		get: func(v any) (float64, bool) {
			if p := *at(v.(*T)); p != nil {
				return *p, true
			}
			return 0, false
		},
		set: func(v any, x float64) { *at(v.(*T)) = &x },
	}
}

// whole is a field at a *int or *int64 of T, rounded back.
func whole[T any, I int | int64](sec section, path string, at func(*T) **I) field {
	return field{
		path: path, sec: sec,
		get: func(v any) (float64, bool) {
			if p := *at(v.(*T)); p != nil {
				return float64(*p), true
			}
			return 0, false
		},
		set: func(v any, x float64) {
			i := I(math.Round(x))
			*at(v.(*T)) = &i
		},
	}
}

// fields is the one table of what history keeps. A field's place in it is
// its id in memory only; what is persisted is its path, so fields may be
// added anywhere.
func fields() []field {
	type (
		host   = metrics.HostView
		gpu    = metrics.GPUView
		models = metrics.AIModels
		inf    = metrics.Latencies
		db     = metrics.Databases
		cc     = metrics.ContainerCounts
		fleet  = metrics.FleetFigures
	)
	return []field{
		num(secHost, "host.cpu_percent", func(v *host) **float64 { return &v.CPUPercent }),
		num(secHost, "host.ram_used_gb", func(v *host) **float64 { return &v.RAMUsedGB }),
		num(secHost, "host.ram_total_gb", func(v *host) **float64 { return &v.RAMTotalGB }),
		num(secHost, "host.disk_used_gb", func(v *host) **float64 { return &v.DiskUsedGB }),
		num(secHost, "host.disk_total_gb", func(v *host) **float64 { return &v.DiskTotalGB }),
		num(secHost, "host.load1", func(v *host) **float64 { return &v.Load1 }),
		num(secHost, "host.load5", func(v *host) **float64 { return &v.Load5 }),
		num(secHost, "host.load15", func(v *host) **float64 { return &v.Load15 }),
		num(secHost, "host.swap_used_gb", func(v *host) **float64 { return &v.SwapUsedGB }),
		num(secHost, "host.swap_total_gb", func(v *host) **float64 { return &v.SwapTotalGB }),
		num(secHost, "host.disk_read_mb_s", func(v *host) **float64 { return &v.DiskReadMBps }),
		num(secHost, "host.disk_write_mb_s", func(v *host) **float64 { return &v.DiskWriteMBps }),
		num(secHost, "host.net_rx_mb_s", func(v *host) **float64 { return &v.NetRxMBps }),
		num(secHost, "host.net_tx_mb_s", func(v *host) **float64 { return &v.NetTxMBps }),

		num(secGPU, "utilization", func(v *gpu) **float64 { return &v.Utilization }),
		num(secGPU, "memory_utilization", func(v *gpu) **float64 { return &v.MemoryUtilization }),
		num(secGPU, "vram_used_gb", func(v *gpu) **float64 { return &v.VRAMUsedGB }),
		num(secGPU, "vram_total_gb", func(v *gpu) **float64 { return &v.VRAMTotalGB }),
		num(secGPU, "temperature", func(v *gpu) **float64 { return &v.Temperature }),
		num(secGPU, "power_watts", func(v *gpu) **float64 { return &v.PowerWatts }),

		num(secModels, "ai_models.rtdetr.vram_gb", func(v *models) **float64 { return &v.RTDETR.VRAMGB }),
		num(secModels, "ai_models.nemotron.vram_gb", func(v *models) **float64 { return &v.Nemotron.VRAMGB }),
		whole(secModels, "ai_models.nemotron.slots_active", func(v *models) **int { return &v.Nemotron.SlotsActive }),
		whole(secModels, "ai_models.nemotron.slots_total", func(v *models) **int { return &v.Nemotron.SlotsTotal }),

		num(secInference, "inference.rtdetr_latency_ms.avg", func(v *inf) **float64 { return &v.RTDETR.Avg }),
		num(secInference, "inference.rtdetr_latency_ms.p95", func(v *inf) **float64 { return &v.RTDETR.P95 }),
		num(secInference, "inference.rtdetr_latency_ms.p99", func(v *inf) **float64 { return &v.RTDETR.P99 }),
		num(secInference, "inference.nemotron_latency_ms.avg", func(v *inf) **float64 { return &v.Nemotron.Avg }),
		num(secInference, "inference.nemotron_latency_ms.p95", func(v *inf) **float64 { return &v.Nemotron.P95 }),
		num(secInference, "inference.nemotron_latency_ms.p99", func(v *inf) **float64 { return &v.Nemotron.P99 }),
		num(secInference, "inference.pipeline_latency_ms.avg", func(v *inf) **float64 { return &v.Pipeline.Avg }),
		num(secInference, "inference.pipeline_latency_ms.p95", func(v *inf) **float64 { return &v.Pipeline.P95 }),
		num(secInference, "inference.pipeline_latency_ms.p99", func(v *inf) **float64 { return &v.Pipeline.P99 }),
		num(secInference, "inference.throughput.images_per_min", func(v *inf) **float64 { return &v.Throughput.ImagesPerMin }),
		num(secInference, "inference.throughput.events_per_min", func(v *inf) **float64 { return &v.Throughput.EventsPerMin }),

		whole(secDatabases, "databases.postgresql.connections_active", func(v *db) **int { return &v.PostgreSQL.ConnectionsActive }),
		whole(secDatabases, "databases.postgresql.connections_max", func(v *db) **int { return &v.PostgreSQL.ConnectionsMax }),
		num(secDatabases, "databases.postgresql.cache_hit_ratio", func(v *db) **float64 { return &v.PostgreSQL.CacheHitRatio }),
		num(secDatabases, "databases.postgresql.transactions_per_min", func(v *db) **float64 { return &v.PostgreSQL.TransactionsPerMin }),
		whole(secDatabases, "databases.redis.connected_clients", func(v *db) **int64 { return &v.Redis.ConnectedClients }),
		num(secDatabases, "databases.redis.memory_mb", func(v *db) **float64 { return &v.Redis.MemoryMB }),
		num(secDatabases, "databases.redis.hit_ratio", func(v *db) **float64 { return &v.Redis.HitRatio }),
		whole(secDatabases, "databases.redis.blocked_clients", func(v *db) **int64 { return &v.Redis.BlockedClients }),

		num(secContainers, "containers.total", func(v *cc) **float64 { return &v.Total }),
		num(secContainers, "containers.unhealthy", func(v *cc) **float64 { return &v.Unhealthy }),

		num(secFleet, "fleet.hosts", func(v *fleet) **float64 { return &v.Hosts }),
		num(secFleet, "fleet.online", func(v *fleet) **float64 { return &v.Online }),
		num(secFleet, "fleet.gpus", func(v *fleet) **float64 { return &v.GPUs }),
		num(secFleet, "fleet.util_mean", func(v *fleet) **float64 { return &v.UtilMean }),
		num(secFleet, "fleet.util_max", func(v *fleet) **float64 { return &v.UtilMax }),
		num(secFleet, "fleet.vram_used_gb", func(v *fleet) **float64 { return &v.VRAMUsed }),
		num(secFleet, "fleet.vram_total_gb", func(v *fleet) **float64 { return &v.VRAMTotal }),
		num(secFleet, "fleet.power_watts", func(v *fleet) **float64 { return &v.Power }),
		num(secFleet, "fleet.power_limit_watts", func(v *fleet) **float64 { return &v.PowerLimit }),
		num(secFleet, "fleet.alerts_critical", func(v *fleet) **float64 { return &v.Critical }),
		num(secFleet, "fleet.alerts_warning", func(v *fleet) **float64 { return &v.Warning }),
	}
}

// fieldID is a field's place in the table.
type fieldID uint8

// table is the field table indexed for the store's use.
type table struct {
	fields []field
	bySec  [numSections][]fieldID
	byPath map[string]fieldID
}

func newTable() *table {
	t := &table{fields: fields(), byPath: map[string]fieldID{}}
	for i, f := range t.fields {
		t.bySec[f.sec] = append(t.bySec[f.sec], fieldID(i))
		t.byPath[f.path] = fieldID(i)
	}
	return t
}

func (t *table) isGPU(f fieldID) bool { return t.fields[f].sec == secGPU }

// key identifies a series within one host: the field and the GPU index.
type key uint32

func mkKey(f fieldID, gpu int) key { return key(uint32(f) | uint32(gpu)<<8) }
func (k key) field() fieldID       { return fieldID(k & 0xff) }
func (k key) gpu() int             { return int(k >> 8) }

// maxGPU bounds the GPU index a key holds.
const maxGPU = 1 << 24

// wireName is the series' name in rollups and hub readings: its path, with
// "gpu.<index>." before a GPU field.
func (t *table) wireName(k key) string {
	f := &t.fields[k.field()]
	if f.sec == secGPU {
		return "gpu." + strconv.Itoa(k.gpu()) + "." + f.path
	}
	return f.path
}

// parse is wireName's inverse.
func (t *table) parse(name string) (key, bool) {
	if rest, ok := strings.CutPrefix(name, "gpu."); ok {
		idx, fname, ok := strings.Cut(rest, ".")
		if !ok {
			return 0, false
		}
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= maxGPU {
			return 0, false
		}
		f, ok := t.byPath[fname]
		if !ok || !t.isGPU(f) {
			return 0, false
		}
		return mkKey(f, i), true
	}
	f, ok := t.byPath[name]
	if !ok || t.isGPU(f) {
		return 0, false
	}
	return mkKey(f, 0), true
}

// value is one series' reading.
type value struct {
	k key
	v float64
}

// read appends the figures of section sec that view v (of the section's
// type) has; gpu is the GPU index for a GPU view.
func (t *table) read(out []value, sec section, v any, gpu int) []value {
	for _, f := range t.bySec[sec] {
		if x, ok := t.fields[f].get(v); ok && !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, value{mkKey(f, gpu), x})
		}
	}
	return out
}

// hostValues reads a host's converted sample, reusing out and models.
func (t *table) hostValues(out []value, fig *view.Figures, models *metrics.AIModels) []value {
	out = out[:0]
	if fig.System != nil {
		out = t.read(out, secHost, fig.System, 0)
	}
	for i := range fig.GPUs {
		g := &fig.GPUs[i]
		if g.Index == nil || *g.Index < 0 || *g.Index >= maxGPU {
			continue
		}
		out = t.read(out, secGPU, g, *g.Index)
	}
	if len(fig.Models) > 0 {
		*models = metrics.AIModels{RTDETR: fig.Models[metrics.RoleRTDETR], Nemotron: fig.Models[metrics.RoleNemotron]}
		out = t.read(out, secModels, models, 0)
	}
	return out
}

// hubValues reads the hub's own figures of an update (inference,
// databases, containers) and the fleet's totals, when it has hosts; the
// agents' sections come from their samples.
func (t *table) hubValues(out []value, u *metrics.Update) []value {
	out = t.read(out[:0], secInference, &u.Inference, 0)
	out = t.read(out, secDatabases, &u.Databases, 0)
	if c := view.Counts(u.Containers); c != nil {
		out = t.read(out, secContainers, c, 0)
	}
	if len(u.Hosts) == 0 {
		return out
	}
	totals := view.Totals(u)
	return t.read(out, secFleet, &totals, 0)
}
