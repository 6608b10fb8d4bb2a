package history

import (
	"math"
	"strconv"
	"strings"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// field is one numeric series kind. A series is a field plus, for GPU
// fields, the GPU index.
type field uint8

// Host fields (one series per host).
const (
	fCPU field = iota
	fRAMUsed
	fRAMTotal
	fDiskUsed
	fDiskTotal
	fLoad1
	fLoad5
	fLoad15
	fSwapUsed
	fSwapTotal
	fDiskRead
	fDiskWrite
	fNetRx
	fNetTx
	// GPU fields (one series per GPU of a host).
	fGPUUtil
	fGPUMemUtil
	fGPUVRAMUsed
	fGPUVRAMTotal
	fGPUTemp
	fGPUPower
	// Model fields (per host that runs the model).
	fRTDETRVRAM
	fNemotronVRAM
	fNemotronSlotsActive
	fNemotronSlotsTotal
	// Hub fields, from Record: inference figures, databases, containers.
	fRTDETRAvg
	fRTDETRP95
	fRTDETRP99
	fNemotronAvg
	fNemotronP95
	fNemotronP99
	fPipelineAvg
	fPipelineP95
	fPipelineP99
	fImagesPerMin
	fEventsPerMin
	fPGConnActive
	fPGConnMax
	fPGCacheHit
	fPGTxPerMin
	fRedisClients
	fRedisMemory
	fRedisHitRatio
	fRedisBlocked
	fContainersTotal
	fContainersUnhealthy
	numFields
)

// paths are the fields' JSON paths in an update; GPU fields are relative
// to a GPU view.
func paths() [numFields]string {
	return [numFields]string{
		fCPU: "host.cpu_percent", fRAMUsed: "host.ram_used_gb", fRAMTotal: "host.ram_total_gb",
		fDiskUsed: "host.disk_used_gb", fDiskTotal: "host.disk_total_gb",
		fLoad1: "host.load1", fLoad5: "host.load5", fLoad15: "host.load15",
		fSwapUsed: "host.swap_used_gb", fSwapTotal: "host.swap_total_gb",
		fDiskRead: "host.disk_read_mb_s", fDiskWrite: "host.disk_write_mb_s",
		fNetRx: "host.net_rx_mb_s", fNetTx: "host.net_tx_mb_s",
		fGPUUtil: "utilization", fGPUMemUtil: "memory_utilization", fGPUVRAMUsed: "vram_used_gb",
		fGPUVRAMTotal: "vram_total_gb", fGPUTemp: "temperature", fGPUPower: "power_watts",
		fRTDETRVRAM: "ai_models.rtdetr.vram_gb", fNemotronVRAM: "ai_models.nemotron.vram_gb",
		fNemotronSlotsActive: "ai_models.nemotron.slots_active", fNemotronSlotsTotal: "ai_models.nemotron.slots_total",
		fRTDETRAvg: "inference.rtdetr_latency_ms.avg", fRTDETRP95: "inference.rtdetr_latency_ms.p95", fRTDETRP99: "inference.rtdetr_latency_ms.p99",
		fNemotronAvg: "inference.nemotron_latency_ms.avg", fNemotronP95: "inference.nemotron_latency_ms.p95", fNemotronP99: "inference.nemotron_latency_ms.p99",
		fPipelineAvg: "inference.pipeline_latency_ms.avg", fPipelineP95: "inference.pipeline_latency_ms.p95", fPipelineP99: "inference.pipeline_latency_ms.p99",
		fImagesPerMin: "inference.throughput.images_per_min", fEventsPerMin: "inference.throughput.events_per_min",
		fPGConnActive: "databases.postgresql.connections_active", fPGConnMax: "databases.postgresql.connections_max",
		fPGCacheHit: "databases.postgresql.cache_hit_ratio", fPGTxPerMin: "databases.postgresql.transactions_per_min",
		fRedisClients: "databases.redis.connected_clients", fRedisMemory: "databases.redis.memory_mb",
		fRedisHitRatio: "databases.redis.hit_ratio", fRedisBlocked: "databases.redis.blocked_clients",
		fContainersTotal: "containers.total", fContainersUnhealthy: "containers.unhealthy",
	}
}

func (f field) isGPU() bool { return f >= fGPUUtil && f <= fGPUPower }

// key identifies a series within one host: the field and the GPU index.
type key uint32

func mkKey(f field, gpu int) key { return key(uint32(f) | uint32(gpu)<<8) }
func (k key) field() field       { return field(k & 0xff) }
func (k key) gpu() int           { return int(k >> 8) }

// wireName is the series' name in rollups and hub readings: its path, with
// "gpu.<index>." before a GPU field.
func (k key) wireName(p *[numFields]string) string {
	if k.field().isGPU() {
		return "gpu." + strconv.Itoa(k.gpu()) + "." + p[k.field()]
	}
	return p[k.field()]
}

// parseWireName is wireName's inverse.
func parseWireName(byPath map[string]field, name string) (key, bool) {
	if rest, ok := strings.CutPrefix(name, "gpu."); ok {
		idx, fname, ok := strings.Cut(rest, ".")
		if !ok {
			return 0, false
		}
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= 1<<24 {
			return 0, false
		}
		f, ok := byPath[fname]
		if !ok || !f.isGPU() {
			return 0, false
		}
		return mkKey(f, i), true
	}
	f, ok := byPath[name]
	if !ok || f.isGPU() {
		return 0, false
	}
	return mkKey(f, 0), true
}

// value is one series' reading.
type value struct {
	k key
	v float64
}

// The dashboard's binary units, as the hub's merge uses them.
const (
	bytesPerGB = 1 << 30
	bytesPerMB = 1 << 20
)

// collector appends the non-nil readings to a reused slice.
type collector struct{ out []value }

func (c *collector) add(k key, v *float64) {
	if v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) {
		c.out = append(c.out, value{k, *v})
	}
}

func (c *collector) addF(k key, v float64) { c.add(k, &v) }

func (c *collector) addScaled(k key, v *float64, div float64) {
	if v != nil {
		c.addF(k, *v/div)
	}
}

func (c *collector) addBytes(k key, b *uint64, div float64) {
	if b != nil {
		c.addF(k, float64(*b)/div)
	}
}

func (c *collector) addInt(k key, v *int) {
	if v != nil {
		c.addF(k, float64(*v))
	}
}

func (c *collector) addInt64(k key, v *int64) {
	if v != nil {
		c.addF(k, float64(*v))
	}
}

// sampleValues reads a sample's series, in the units of the update.
func (c *collector) sampleValues(s *metrics.Sample) {
	c.out = c.out[:0]
	if sys := s.System; sys != nil {
		c.add(mkKey(fCPU, 0), sys.CPUPercent)
		if sys.MemTotal > 0 { // zero totals mean "not read", as in the hub's merge
			c.addF(mkKey(fRAMUsed, 0), float64(sys.MemUsed)/bytesPerGB)
			c.addF(mkKey(fRAMTotal, 0), float64(sys.MemTotal)/bytesPerGB)
			c.addF(mkKey(fSwapUsed, 0), float64(sys.SwapUsed)/bytesPerGB)
			c.addF(mkKey(fSwapTotal, 0), float64(sys.SwapTotal)/bytesPerGB)
		}
		var used, total uint64
		for _, d := range sys.Disks {
			used += d.Used
			total += d.Total
		}
		if total > 0 {
			c.addF(mkKey(fDiskUsed, 0), float64(used)/bytesPerGB)
			c.addF(mkKey(fDiskTotal, 0), float64(total)/bytesPerGB)
		}
		c.add(mkKey(fLoad1, 0), sys.Load1)
		c.add(mkKey(fLoad5, 0), sys.Load5)
		c.add(mkKey(fLoad15, 0), sys.Load15)
		c.addScaled(mkKey(fDiskRead, 0), sys.DiskReadBps, bytesPerMB)
		c.addScaled(mkKey(fDiskWrite, 0), sys.DiskWriteBps, bytesPerMB)
		c.addScaled(mkKey(fNetRx, 0), sys.NetRxBps, bytesPerMB)
		c.addScaled(mkKey(fNetTx, 0), sys.NetTxBps, bytesPerMB)
	}
	for i := range s.GPUs {
		g := &s.GPUs[i]
		if g.Index < 0 || g.Index >= 1<<24 {
			continue
		}
		c.add(mkKey(fGPUUtil, g.Index), g.Util)
		c.add(mkKey(fGPUMemUtil, g.Index), g.MemUtil)
		c.addBytes(mkKey(fGPUVRAMUsed, g.Index), g.MemUsed, bytesPerGB)
		c.addBytes(mkKey(fGPUVRAMTotal, g.Index), g.MemTotal, bytesPerGB)
		c.add(mkKey(fGPUTemp, g.Index), g.Temp)
		c.add(mkKey(fGPUPower, g.Index), g.Power)
	}
	if m, ok := s.Models[metrics.RoleRTDETR]; ok {
		c.addBytes(mkKey(fRTDETRVRAM, 0), m.MemUsed, bytesPerGB)
	}
	if m, ok := s.Models[metrics.RoleNemotron]; ok {
		c.addBytes(mkKey(fNemotronVRAM, 0), m.MemUsed, bytesPerGB)
		c.addInt(mkKey(fNemotronSlotsActive, 0), m.SlotsActive)
		c.addInt(mkKey(fNemotronSlotsTotal, 0), m.SlotsTotal)
	}
}

// updateValues reads the hub's own figures from an update: inference,
// databases and containers. The agents' sections come from their samples.
func (c *collector) updateValues(u *metrics.Update) {
	c.out = c.out[:0]
	stats := func(s *metrics.Stats, avg, p95, p99 field) {
		c.add(mkKey(avg, 0), s.Avg)
		c.add(mkKey(p95, 0), s.P95)
		c.add(mkKey(p99, 0), s.P99)
	}
	stats(&u.Inference.RTDETR, fRTDETRAvg, fRTDETRP95, fRTDETRP99)
	stats(&u.Inference.Nemotron, fNemotronAvg, fNemotronP95, fNemotronP99)
	stats(&u.Inference.Pipeline, fPipelineAvg, fPipelineP95, fPipelineP99)
	c.add(mkKey(fImagesPerMin, 0), u.Inference.Throughput.ImagesPerMin)
	c.add(mkKey(fEventsPerMin, 0), u.Inference.Throughput.EventsPerMin)
	pg := &u.Databases.PostgreSQL
	c.addInt(mkKey(fPGConnActive, 0), pg.ConnectionsActive)
	c.addInt(mkKey(fPGConnMax, 0), pg.ConnectionsMax)
	c.add(mkKey(fPGCacheHit, 0), pg.CacheHitRatio)
	c.add(mkKey(fPGTxPerMin, 0), pg.TransactionsPerMin)
	rd := &u.Databases.Redis
	c.addInt64(mkKey(fRedisClients, 0), rd.ConnectedClients)
	c.add(mkKey(fRedisMemory, 0), rd.MemoryMB)
	c.add(mkKey(fRedisHitRatio, 0), rd.HitRatio)
	c.addInt64(mkKey(fRedisBlocked, 0), rd.BlockedClients)
	// A nil container list means the source has not answered: no figure.
	if u.Containers != nil {
		unhealthy := 0
		for _, ct := range u.Containers {
			// The alert rule's count, so the chart agrees with the alert.
			if bad, _ := ct.Unhealthy(); bad {
				unhealthy++
			}
		}
		c.addF(mkKey(fContainersTotal, 0), float64(len(u.Containers)))
		c.addF(mkKey(fContainersUnhealthy, 0), float64(unhealthy))
	}
}
