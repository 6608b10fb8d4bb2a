package alerts

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// observation is one target's value in one update; a nil value is "no
// data" for that target. detail says what failed ("unreachable: connection
// refused", the names of the failing containers) for the message.
type observation struct {
	host, target string
	value        *float64
	detail       string
}

// extractFunc appends the observations of one metric in u to out and
// returns it: the engine hands every rule the same buffer, so a fleet's
// 16,000 GPUs are not a new list per rule per tick.
type extractFunc func(u *metrics.Update, out []observation) []observation

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
			// Draw as a share of the card's enforced limit: a 700 W H200 at
			// 500 W is busy, not alarming. No limit, no value.
			"gpu_power_percent":  gpuMetric(func(g *metrics.GPUView) *float64 { return percent(g.PowerWatts, g.PowerLimitWatts) }),
			"gpu_power_no_limit": gpuPowerNoLimit,
			"gpu_throttled":      gpuThrottled,
			"gpu_vram_percent":   gpuMetric(func(g *metrics.GPUView) *float64 { return percent(g.VRAMUsedGB, g.VRAMTotalGB) }),

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
			"model_unhealthy":      modelStatus(metrics.StatusUnhealthy, metrics.StatusUnreachable),
			"model_loading":        modelStatus(metrics.StatusLoading),
			"model_slots_busy_percent": func(u *metrics.Update, out []observation) []observation {
				m := &u.AIModels.Nemotron
				var v *float64
				if m.SlotsActive != nil && m.SlotsTotal != nil && *m.SlotsTotal > 0 {
					v = ptr(float64(*m.SlotsActive) / float64(*m.SlotsTotal) * 100)
				}
				return append(out, observation{host: m.Host, target: metrics.RoleNemotron, value: v})
			},
		}
	case KindDatabase:
		return map[string]extractFunc{
			"database_unreachable": databaseUnreachable,
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
			"container_unhealthy": func(u *metrics.Update, out []observation) []observation {
				unknown := containersUnknown(u)
				for _, c := range u.Containers {
					o := observation{target: c.Name}
					if !unknown {
						o.value, o.detail = containerUnhealthy(c), containerDetail(c)
					}
					out = append(out, o)
				}
				return out
			},
		}
	case KindContainersCount:
		return map[string]extractFunc{
			"containers_unhealthy": func(u *metrics.Update, out []observation) []observation {
				// An empty list from the source means there is nothing
				// to watch.
				if containersUnknown(u) {
					return append(out, observation{target: "containers"})
				}
				n := 0.0
				var names []string
				for _, c := range u.Containers {
					if v := containerUnhealthy(c); v != nil && *v == 1 {
						n++
						names = append(names, containerDetail(c))
					}
				}
				return append(out, observation{target: "containers", value: &n, detail: strings.Join(names, ", ")})
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

// gpuTargets holds the targets of GPUs 0 to 9, cut without allocating: a
// fleet's GPUs are named once per rule per update.
const gpuTargets = "gpu0gpu1gpu2gpu3gpu4gpu5gpu6gpu7gpu8gpu9"

func gpuTarget(g *metrics.GPUView) string {
	switch {
	case g.Index == nil:
		return "gpu"
	case *g.Index >= 0 && *g.Index <= 9:
		return gpuTargets[4**g.Index : 4**g.Index+4]
	}
	return "gpu" + strconv.Itoa(*g.Index)
}

func gpuMetric(get func(*metrics.GPUView) *float64) extractFunc {
	return func(u *metrics.Update, out []observation) []observation {
		list := gpus(u)
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
	return func(u *metrics.Update, out []observation) []observation {
		list := hosts(u)
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

func hostOffline(u *metrics.Update, out []observation) []observation {
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
	return func(u *metrics.Update, out []observation) []observation {
		return append(out,
			observation{host: u.AIModels.RTDETR.Host, target: metrics.RoleRTDETR, value: get(&u.Inference.RTDETR)},
			observation{host: u.AIModels.Nemotron.Host, target: metrics.RoleNemotron, value: get(&u.Inference.Nemotron)},
			observation{target: metrics.RolePipeline, value: get(&u.Inference.Pipeline)},
		)
	}
}

// modelStatus is 1 for a model server whose status is one of bad, 0 for
// any other status a server reports, and no data for the hub's "unknown"
// and "unconfigured" (nothing has answered: that is not healthy either) and
// for a model of an offline host. Every host's models are watched, not
// only the first host's that ai_models shows.
func modelStatus(bad ...metrics.Status) extractFunc {
	return func(u *metrics.Update, out []observation) []observation {
		one := func(host, role string, m *metrics.ModelView) observation {
			o := observation{host: host, target: role}
			if m.Stale {
				return o
			}
			switch m.Status {
			case metrics.StatusHealthy, metrics.StatusDegraded, metrics.StatusLoading, metrics.StatusUnhealthy, metrics.StatusUnreachable:
			default:
				return o
			}
			o.value = ptr(0.0)
			if slices.Contains(bad, m.Status) {
				o.value = ptr(1.0)
			}
			o.detail = string(m.Status)
			if m.Reason != "" {
				o.detail += ": " + m.Reason
			}
			return o
		}
		for _, h := range u.Hosts {
			if len(h.Models) == 0 {
				continue // a host without model servers: nothing to sort
			}
			for _, role := range slices.Sorted(maps.Keys(h.Models)) {
				m := h.Models[role]
				out = append(out, one(h.Host, role, &m))
			}
		}
		if len(u.Hosts) == 0 {
			out = append(out, one(u.AIModels.RTDETR.Host, metrics.RoleRTDETR, &u.AIModels.RTDETR),
				one(u.AIModels.Nemotron.Host, metrics.RoleNemotron, &u.AIModels.Nemotron))
		}
		return out
	}
}

// databaseUnreachable is 1 for a database the hub cannot reach, 0 for one
// that answers, and no data while its source has not answered yet
// ("unknown"), is not configured or its answer is stale. The further PostgreSQL databases are
// targets "postgresql/<database>".
func databaseUnreachable(u *metrics.Update, out []observation) []observation {
	one := func(target string, status metrics.Status, reason string) observation {
		o := observation{target: target}
		switch status {
		case metrics.StatusHealthy:
			o.value = ptr(0.0)
		case metrics.StatusUnreachable, metrics.StatusUnhealthy:
			o.value, o.detail = ptr(1.0), reason
		}
		return o
	}
	pg, rd := &u.Databases.PostgreSQL, &u.Databases.Redis
	pgStatus, rdStatus := pg.Status, rd.Status
	// A stale section is an old answer, not the database's state now.
	if u.Stale[metrics.SectionPostgreSQL] {
		pgStatus = ""
	}
	if u.Stale[metrics.SectionRedis] {
		rdStatus = ""
	}
	out = append(out, one("postgresql", pgStatus, pg.Reason), one("redis", rdStatus, rd.Reason))
	for i, p := range u.Databases.PostgreSQLExtra {
		name := p.Database
		if name == "" {
			name = strconv.Itoa(i + 2)
		}
		out = append(out, one("postgresql/"+name, p.Status, p.Reason))
	}
	return out
}

// NVML clock-event reason bits that mean the hardware is protecting itself
// (nvmlClocksEventReason*): not idle, application clocks, sync boost or the
// software power cap, which are normal under load.
const (
	throttleHWSlowdown   = 0x08
	throttleSWThermal    = 0x20
	throttleHWThermal    = 0x40
	throttleHWPowerBrake = 0x80
)

// gpuThrottled is 1 for a GPU slowed down by hardware, thermal or
// power-brake reasons, 0 for one that is not, and no data when the driver
// gave no reasons (neither mask nor names).
func gpuThrottled(u *metrics.Update, out []observation) []observation {
	bad := []struct {
		bit  uint64
		name string
	}{
		{throttleHWSlowdown, "hw_slowdown"},
		{throttleSWThermal, "sw_thermal_slowdown"},
		{throttleHWThermal, "hw_thermal_slowdown"},
		{throttleHWPowerBrake, "hw_power_brake"},
	}
	list := gpus(u)
	for i := range list {
		g := &list[i]
		o := observation{host: g.Host, target: gpuTarget(g)}
		if g.Stale || g.ThrottleMask == nil && g.Throttle == nil {
			out = append(out, o)
			continue
		}
		var names []string
		for _, b := range bad {
			if g.ThrottleMask != nil && *g.ThrottleMask&b.bit != 0 || g.ThrottleMask == nil && slices.Contains(g.Throttle, b.name) {
				names = append(names, b.name)
			}
		}
		o.value = ptr(0.0)
		if len(names) > 0 {
			o.value, o.detail = ptr(1.0), strings.Join(names, ", ")
		}
		out = append(out, o)
	}
	return out
}

// gpuPowerNoLimit is the draw in watts of the GPUs whose power limit is
// unknown, the fallback of gpu_power_percent; a GPU with a known limit is
// not a target of it at all.
func gpuPowerNoLimit(u *metrics.Update, out []observation) []observation {
	list := gpus(u)
	for i := range list {
		g := &list[i]
		if g.PowerLimitWatts != nil && *g.PowerLimitWatts > 0 {
			continue
		}
		o := observation{host: g.Host, target: gpuTarget(g)}
		if !g.Stale {
			o.value = g.PowerWatts
		}
		out = append(out, o)
	}
	return out
}

func pgMetric(get func(*metrics.PostgreSQL) *float64) extractFunc {
	return func(u *metrics.Update, out []observation) []observation {
		return append(out, observation{target: "postgresql", value: get(&u.Databases.PostgreSQL)})
	}
}

func redisMetric(get func(*metrics.Redis) *float64) extractFunc {
	return func(u *metrics.Update, out []observation) []observation {
		return append(out, observation{target: "redis", value: get(&u.Databases.Redis)})
	}
}

// sourceNone is Update.Sources' value for a section no source filled: the
// hub's placeholder until its source first answers.
const sourceNone = "none"

// containersUnknown reports whether the update's container list is no
// data: nil, not filled by any source (the hub sends an empty list until
// its containers source first answers, which is not "all healthy"), or
// stale.
func containersUnknown(u *metrics.Update) bool {
	return u.Containers == nil || u.Sources[metrics.SectionContainers] == sourceNone || u.Stale[metrics.SectionContainers]
}

// containerDetail names a failing container and says how it fails:
// "backend (unhealthy: HTTP 500)", "worker (exited)".
func containerDetail(c metrics.Container) string {
	var why []string
	switch c.Health {
	case metrics.StatusUnhealthy, metrics.StatusUnreachable:
		why = append(why, string(c.Health))
	}
	if c.Status != "" && c.Status != "running" && c.Status != "unknown" {
		why = append(why, c.Status)
	}
	if c.Reason != "" {
		why = append(why, c.Reason)
	}
	if len(why) == 0 {
		return c.Name
	}
	return c.Name + " (" + strings.Join(why, ": ") + ")"
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
