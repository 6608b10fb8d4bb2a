package alerts

import (
	"sort"
	"strconv"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// observation is one target's value in one update; a nil value is "no
// data" for that target.
type observation struct {
	host, target string
	value        *float64
}

type extractFunc func(u *metrics.Update) []observation

// Metrics lists the metric names each target kind offers.
func Metrics() map[Kind][]string {
	out := map[Kind][]string{}
	for _, k := range []Kind{KindGPU, KindHost, KindModel, KindDatabase, KindContainer, KindContainersCount} {
		var names []string
		for name := range metricFuncs(k) {
			names = append(names, name)
		}
		sort.Strings(names)
		out[k] = names
	}
	return out
}

func extractor(k Kind, metric string) extractFunc {
	return metricFuncs(k)[metric]
}

// metricFuncs returns the extractors of kind k, built on demand so the
// package holds no mutable tables.
func metricFuncs(k Kind) map[string]extractFunc {
	switch k {
	case KindGPU:
		return map[string]extractFunc{
			"gpu_utilization":        gpuMetric(func(g *metrics.GPUView) *float64 { return g.Utilization }),
			"gpu_memory_utilization": gpuMetric(func(g *metrics.GPUView) *float64 { return g.MemoryUtilization }),
			"gpu_temperature":        gpuMetric(func(g *metrics.GPUView) *float64 { return g.Temperature }),
			"gpu_power":              gpuMetric(func(g *metrics.GPUView) *float64 { return g.PowerWatts }),
			"gpu_vram_percent":       gpuMetric(func(g *metrics.GPUView) *float64 { return percent(g.VRAMUsedGB, g.VRAMTotalGB) }),

			// GPU health (issue 14): see xidSeverity and rowRemap.
			"gpu_xid_severity":      gpuMetric(func(g *metrics.GPUView) *float64 { return ptr(xidSeverity(g.XIDs)) }),
			"gpu_ecc_uncorrected":   gpuMetric(eccUncorrected),
			"gpu_row_remap":         gpuMetric(rowRemap),
			"gpu_pcie_degraded":     gpuMetric(pcieDegraded),
			"gpu_sm_active_percent": gpuMetric(func(g *metrics.GPUView) *float64 { return g.SMActivePercent }),
		}
	case KindHost:
		return map[string]extractFunc{
			"host_cpu_percent":  hostMetric(func(h *metrics.HostView) *float64 { return h.CPUPercent }),
			"host_ram_percent":  hostMetric(func(h *metrics.HostView) *float64 { return percent(h.RAMUsedGB, h.RAMTotalGB) }),
			"host_disk_percent": hostMetric(func(h *metrics.HostView) *float64 { return percent(h.DiskUsedGB, h.DiskTotalGB) }),
			"host_swap_percent": hostMetric(func(h *metrics.HostView) *float64 { return percent(h.SwapUsedGB, h.SwapTotalGB) }),
			"host_load1":        hostMetric(func(h *metrics.HostView) *float64 { return h.Load1 }),
			"host_offline":      hostOffline,
		}
	case KindModel:
		return map[string]extractFunc{
			"model_latency_avg_ms": latencyMetric(func(s *metrics.Stats) *float64 { return s.Avg }),
			"model_latency_p95_ms": latencyMetric(func(s *metrics.Stats) *float64 { return s.P95 }),
			"model_latency_p99_ms": latencyMetric(func(s *metrics.Stats) *float64 { return s.P99 }),
			"model_unhealthy":      modelUnhealthy,
			"model_slots_busy_percent": func(u *metrics.Update) []observation {
				m := &u.AIModels.Nemotron
				var v *float64
				if m.SlotsActive != nil && m.SlotsTotal != nil && *m.SlotsTotal > 0 {
					v = ptr(float64(*m.SlotsActive) / float64(*m.SlotsTotal) * 100)
				}
				return []observation{{host: m.Host, target: "nemotron", value: v}}
			},
		}
	case KindDatabase:
		return map[string]extractFunc{
			"postgresql_connections_percent": pgMetric(func(p *metrics.PostgreSQL) *float64 {
				if p.ConnectionsActive == nil || p.ConnectionsMax == nil || *p.ConnectionsMax <= 0 {
					return nil
				}
				return ptr(float64(*p.ConnectionsActive) / float64(*p.ConnectionsMax) * 100)
			}),
			"postgresql_cache_hit_ratio": pgMetric(func(p *metrics.PostgreSQL) *float64 { return p.CacheHitRatio }),
			"redis_memory_mb":            redisMetric(func(r *metrics.Redis) *float64 { return r.MemoryMB }),
			"redis_hit_ratio":            redisMetric(func(r *metrics.Redis) *float64 { return r.HitRatio }),
			"redis_blocked_clients": redisMetric(func(r *metrics.Redis) *float64 {
				if r.BlockedClients == nil {
					return nil
				}
				return ptr(float64(*r.BlockedClients))
			}),
		}
	case KindContainer:
		return map[string]extractFunc{
			"container_unhealthy": func(u *metrics.Update) []observation {
				out := make([]observation, 0, len(u.Containers))
				for _, c := range u.Containers {
					out = append(out, observation{target: c.Name, value: containerUnhealthy(c)})
				}
				return out
			},
		}
	case KindContainersCount:
		return map[string]extractFunc{
			"containers_unhealthy": func(u *metrics.Update) []observation {
				// A nil list means the containers source has not answered;
				// an empty one means there is nothing to watch.
				if u.Containers == nil {
					return []observation{{target: "containers"}}
				}
				n := 0.0
				for _, c := range u.Containers {
					if v := containerUnhealthy(c); v != nil && *v == 1 {
						n++
					}
				}
				return []observation{{target: "containers", value: &n}}
			},
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func percent(used, total *float64) *float64 {
	if used == nil || total == nil || *total <= 0 {
		return nil
	}
	return ptr(*used / *total * 100)
}

// gpus lists every GPU of the update. Older or single-host updates may
// fill only the seed's "gpu" field, which is then the one GPU.
func gpus(u *metrics.Update) []metrics.GPUView {
	if len(u.GPUs) > 0 {
		return u.GPUs
	}
	g := u.GPU
	if g.Utilization == nil && g.Temperature == nil && g.VRAMUsedGB == nil && g.PowerWatts == nil && g.Name == nil {
		return nil
	}
	return []metrics.GPUView{g}
}

func gpuTarget(g *metrics.GPUView) string {
	if g.Index == nil {
		return "gpu"
	}
	return "gpu" + strconv.Itoa(*g.Index)
}

func gpuMetric(get func(*metrics.GPUView) *float64) extractFunc {
	return func(u *metrics.Update) []observation {
		list := gpus(u)
		out := make([]observation, 0, len(list))
		for i := range list {
			g := &list[i]
			var v *float64
			if !g.Stale { // a stale reading is old news, not data
				v = get(g)
			}
			out = append(out, observation{host: g.Host, target: gpuTarget(g), value: v})
		}
		return out
	}
}

// hosts lists every host of the update, falling back to the seed's single
// "host" section.
func hosts(u *metrics.Update) []metrics.HostStatus {
	if len(u.Hosts) > 0 {
		return u.Hosts
	}
	h := u.Host
	if h.CPUPercent == nil && h.RAMUsedGB == nil && h.DiskUsedGB == nil {
		return nil
	}
	return []metrics.HostStatus{{Online: true, System: h}}
}

func hostMetric(get func(*metrics.HostView) *float64) extractFunc {
	return func(u *metrics.Update) []observation {
		list := hosts(u)
		out := make([]observation, 0, len(list))
		for i := range list {
			h := &list[i]
			var v *float64
			if h.Online { // an offline host's last figures are not current
				v = get(&h.System)
			}
			out = append(out, observation{host: h.Host, target: h.Host, value: v})
		}
		return out
	}
}

func hostOffline(u *metrics.Update) []observation {
	out := make([]observation, 0, len(u.Hosts))
	for _, h := range u.Hosts {
		v := 0.0
		if !h.Online {
			v = 1
		}
		out = append(out, observation{host: h.Host, target: h.Host, value: &v})
	}
	return out
}

func latencyMetric(get func(*metrics.Stats) *float64) extractFunc {
	return func(u *metrics.Update) []observation {
		return []observation{
			{host: u.AIModels.RTDETR.Host, target: "rtdetr", value: get(&u.Inference.RTDETR)},
			{host: u.AIModels.Nemotron.Host, target: "nemotron", value: get(&u.Inference.Nemotron)},
			{target: "pipeline", value: get(&u.Inference.Pipeline)},
		}
	}
}

func modelUnhealthy(u *metrics.Update) []observation {
	one := func(name string, m *metrics.ModelView) observation {
		o := observation{host: m.Host, target: name}
		switch m.Status {
		case "":
			// never reported: no data
		case metrics.StatusHealthy, metrics.StatusLoading, metrics.StatusDegraded:
			o.value = ptr(0.0)
		default:
			o.value = ptr(1.0)
		}
		return o
	}
	return []observation{one("rtdetr", &u.AIModels.RTDETR), one("nemotron", &u.AIModels.Nemotron)}
}

func pgMetric(get func(*metrics.PostgreSQL) *float64) extractFunc {
	return func(u *metrics.Update) []observation {
		return []observation{{target: "postgresql", value: get(&u.Databases.PostgreSQL)}}
	}
}

func redisMetric(get func(*metrics.Redis) *float64) extractFunc {
	return func(u *metrics.Update) []observation {
		return []observation{{target: "redis", value: get(&u.Databases.Redis)}}
	}
}

// containerUnhealthy is 1 for a container whose health check fails or
// that is not running, 0 for a healthy one, nil when nothing is known
// (metrics.Container.Unhealthy).
func containerUnhealthy(c metrics.Container) *float64 {
	bad, known := c.Unhealthy()
	switch {
	case !known:
		return nil
	case bad:
		return ptr(1.0)
	}
	return ptr(0.0)
}

// XID severities (gpu_xid_severity): the worst XID of a GPU's last sample.
const (
	xidNone = 0.0
	// xidRecoverable: the application that hit it must restart, the GPU
	// serves on (92: high single-bit ECC rate; 94: contained ECC error).
	xidRecoverable = 1.0
	// xidReset: the GPU needs a reset or is lost (see xidSeverity).
	xidReset = 2.0
)

// xidSeverity rates a GPU's XIDs after NVIDIA's XID catalog: 48 (double
// bit ECC error), 62 (internal micro-controller halt), 63 and 64 (row
// remapping or page retirement recorded, activated only by a reset, or
// failed), 74 (NVLink error), 79 (fallen off the bus), 95 (uncontained
// ECC error), 119 and 120 (GSP timeout and error) and 140 (unrecovered
// ECC error) need a GPU reset or a reboot; 92 and 94 cost the application
// only. Others (13, 31, 43, 45...) are the application's own faults.
func xidSeverity(xs []metrics.XIDView) float64 {
	worst := xidNone
	for _, x := range xs {
		switch x.Code {
		case 48, 62, 63, 64, 74, 79, 95, 119, 120, 140:
			return xidReset
		case 92, 94:
			worst = xidRecoverable
		}
	}
	return worst
}

// eccUncorrected is the GPU's uncorrectable ECC errors since the driver
// loaded.
func eccUncorrected(g *metrics.GPUView) *float64 {
	if g.ECC == nil || g.ECC.VolatileUncorrected == nil {
		return nil
	}
	return ptr(float64(*g.ECC.VolatileUncorrected))
}

// rowRemap is 2 when a row remapping failed (the memory has no spare rows
// left: replace the GPU), 1 while a remapping waits for a GPU reset, 0
// otherwise. Retired pages pending count as a pending remap on GPUs before
// Ampere.
func rowRemap(g *metrics.GPUView) *float64 {
	e := g.ECC
	if e == nil || e.RemapPending == nil && e.RemapFailure == nil && e.RetiredPending == nil {
		return nil
	}
	switch {
	case e.RemapFailure != nil && *e.RemapFailure:
		return ptr(2.0)
	case e.RemapPending != nil && *e.RemapPending, e.RetiredPending != nil && *e.RetiredPending:
		return ptr(1.0)
	}
	return ptr(0.0)
}

// pcieDegraded is 1 when the GPU's PCIe link runs below its maximum (the
// agent judges it: see metrics.PCIe), 0 when it does not.
func pcieDegraded(g *metrics.GPUView) *float64 {
	if g.PCIe == nil || g.PCIe.Degraded == nil {
		return nil
	}
	if *g.PCIe.Degraded {
		return ptr(1.0)
	}
	return ptr(0.0)
}
