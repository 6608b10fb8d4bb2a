package alerts

import (
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Defaults returns the default rule set: every row of the seed design's
// alert table, with GPU power relative to the card's limit, plus a rule
// for each thing that can be down: a host that stops reporting, a model
// server, a database, a container, a GPU slowing itself down. The seed
// gives a duration only for GPU utilization (2 min / 5 min) and says
// "sustained" for host CPU; the other durations are chosen here:
//
//	rule                      warning          critical         for (warn/crit)  clear (hysteresis)  why
//	gpu_utilization           > 90 %           > 98 %           2m / 5m          -5 %                seed
//	gpu_temperature           > 75 °C          > 85 °C          1m / 30s         -3 °C               heat builds slowly; 85 °C is urgent
//	gpu_vram                  > 90 %           > 95 %           1m / 30s         -2 %                a full GPU OOMs the next model load
//	gpu_power                 > 90 % of limit  > 98 % of limit  2m / 1m          -3 %                power_watts / power_limit_watts; at the limit the card caps its clocks
//	gpu_power_watts           > 300 W          > 350 W          2m / 1m          -20 W               the seed's watts, only for GPUs whose limit is unknown
//	gpu_throttled             throttled        throttled        1m / 5m          none                HW slowdown, HW/SW thermal or power brake; not idle, app clocks or SW power cap
//	rtdetr_latency_p95        > 200 ms         > 500 ms         1m / 1m          -20 ms              p95 is already a window figure
//	nemotron_latency_p95      > 10 s           > 30 s           1m / 1m          -1 s                idem
//	model_down                unhealthy or     unhealthy or     30s / 2m         none                a model server that fails its health check or does not answer
//	                          unreachable      unreachable
//	model_loading             loading          loading          10m / 30m        none                a load that long is stuck
//	database_unreachable      unreachable      unreachable      30s / 2m         none                postgresql (every configured database) and redis
//	postgresql_connections    > 80 % of pool   > 95 % of pool   1m / 30s         -5 %                pool exhaustion is abrupt
//	postgresql_cache_hit      < 90 %           < 80 %           5m / 5m          +2 %                cold caches after a restart
//	redis_memory              > 100 MB         > 500 MB         5m / 1m          -10 MB              growth, not a burst
//	redis_hit_ratio           < 50 %           < 10 %           5m / 5m          +5 %                idle periods have few lookups
//	host_cpu                  > 80 %           > 95 %           5m / 2m          -5 %                seed: "sustained"
//	host_ram                  > 85 %           > 95 %           2m / 1m          -3 %                page cache settles quickly
//	host_disk                 > 80 %           > 90 %           1m / 1m          -1 %                moves slowly; wait out a temp file
//	containers_unhealthy      >= 1 failing     >= 2 failing     30s / 30s        none                unhealthy, exited, restarting or missing; the message names them
//	host_offline              not reporting    not reporting    15s / 5m         none                the hub already waits 3 intervals
//
// GPU health (issue 14), read from the agent's NVML health fields:
//
//	rule                      warning          critical         for (warn/crit)  clear (hysteresis)  why
//	gpu_xid                   XID 92, 94       reset/lost XID   0 / 0            none; keeps 10m     an XID is one event in one sample (extract.go: xidSeverity lists the codes)
//	gpu_ecc_uncorrectable     >= 1 error       >= 10 errors     0 / 0            none                since driver load; only a reset clears it
//	gpu_row_remap             remap pending    remap failed     0 / 0            none                pending: reset at the next chance; failed: replace the GPU
//	gpu_pcie_degraded         degraded         degraded         5m / 30m         none                a link retrains within seconds; 30 min is a bad slot or riser
//
// Every rule except host_offline keeps firing for 30s after its condition
// ends, so one good sample does not resolve an alert that returns at once.
// No-data policy is "keep" everywhere: a source that has not answered (a
// hub just started, a model or database "unknown" or "unconfigured", the
// container list before the first poll) or whose answer is stale is no
// data, which neither starts nor resolves an alert, and host_offline
// covers a silent agent. The status rules (model_down, model_loading,
// database_unreachable, containers_unhealthy, gpu_throttled) are 0/1 or a
// count, so they need no hysteresis.
func Defaults() []Rule {
	lv := func(threshold float64, d time.Duration) *Level { return &Level{Threshold: threshold, For: d} }
	const keep = 30 * time.Second
	return []Rule{
		{
			Name: "gpu_utilization", Metric: "gpu_utilization", Target: KindGPU, Comparison: Above,
			Warning: lv(90, 2*time.Minute), Critical: lv(98, 5*time.Minute), Hysteresis: 5, KeepFiringFor: keep,
			Message: "GPU {{.Target}} utilization high on {{.Host}}: {{.Value}}% (threshold: {{.Threshold}}%)",
		},
		{
			Name: "gpu_temperature", Metric: "gpu_temperature", Target: KindGPU, Comparison: Above,
			Warning: lv(75, time.Minute), Critical: lv(85, 30*time.Second), Hysteresis: 3, KeepFiringFor: keep,
			Message: "GPU temperature high: {{.Value}}°C on {{.Host}} {{.Target}} (threshold: {{.Threshold}}°C)",
		},
		{
			Name: "gpu_vram", Metric: "gpu_vram_percent", Target: KindGPU, Comparison: Above,
			Warning: lv(90, time.Minute), Critical: lv(95, 30*time.Second), Hysteresis: 2, KeepFiringFor: keep,
			Message: "GPU {{.Target}} VRAM almost full on {{.Host}}: {{.Value}}% used (threshold: {{.Threshold}}%)",
		},
		{
			Name: "gpu_power", Metric: "gpu_power_percent", Target: KindGPU, Comparison: Above,
			Warning: lv(90, 2*time.Minute), Critical: lv(98, time.Minute), Hysteresis: 3, KeepFiringFor: keep,
			Message: "GPU {{.Target}} power draw high on {{.Host}}: {{.Value}}% of its power limit (threshold: {{.Threshold}}%)",
		},
		{
			Name: "gpu_power_watts", Metric: "gpu_power_no_limit", Target: KindGPU, Comparison: Above,
			Warning: lv(300, 2*time.Minute), Critical: lv(350, time.Minute), Hysteresis: 20, KeepFiringFor: keep,
			Message: "GPU {{.Target}} power draw high on {{.Host}}: {{.Value}} W (threshold: {{.Threshold}} W; power limit unknown)",
		},
		{
			Name: "gpu_throttled", Metric: "gpu_throttled", Target: KindGPU, Comparison: AboveOrEqual,
			Warning: lv(1, time.Minute), Critical: lv(1, 5*time.Minute), KeepFiringFor: keep,
			Message: "GPU {{.Target}} on {{.Host}} is slowing itself down: {{.Detail}}",
		},
		{
			Name: "rtdetr_latency_p95", Metric: "model_latency_p95_ms", Target: KindModel, Match: metrics.RoleRTDETR, Comparison: Above,
			Warning: lv(200, time.Minute), Critical: lv(500, time.Minute), Hysteresis: 20, KeepFiringFor: keep,
			Message: "RT-DETRv2 latency P95 high: {{.Value}} ms (threshold: {{.Threshold}} ms)",
		},
		{
			Name: "nemotron_latency_p95", Metric: "model_latency_p95_ms", Target: KindModel, Match: metrics.RoleNemotron, Comparison: Above,
			Warning: lv(10_000, time.Minute), Critical: lv(30_000, time.Minute), Hysteresis: 1000, KeepFiringFor: keep,
			Message: "Nemotron latency P95 high: {{.Value}} ms (threshold: {{.Threshold}} ms)",
		},
		{
			Name: "model_down", Metric: "model_unhealthy", Target: KindModel, Comparison: AboveOrEqual,
			Warning: lv(1, 30*time.Second), Critical: lv(1, 2*time.Minute), KeepFiringFor: keep,
			Message: "Model server {{.Target}} on {{.Host}} is {{.Detail}}",
		},
		{
			Name: "model_loading", Metric: "model_loading", Target: KindModel, Comparison: AboveOrEqual,
			Warning: lv(1, 10*time.Minute), Critical: lv(1, 30*time.Minute), KeepFiringFor: keep,
			Message: "Model server {{.Target}} on {{.Host}} has been loading for too long ({{.Detail}})",
		},
		{
			Name: "database_unreachable", Metric: "database_unreachable", Target: KindDatabase, Comparison: AboveOrEqual,
			Warning: lv(1, 30*time.Second), Critical: lv(1, 2*time.Minute), KeepFiringFor: keep,
			Message: "Database {{.Target}} is unreachable: {{.Detail}}",
		},
		{
			Name: "postgresql_connections", Metric: "postgresql_connections_percent", Target: KindDatabase, Comparison: Above,
			Warning: lv(80, time.Minute), Critical: lv(95, 30*time.Second), Hysteresis: 5, KeepFiringFor: keep,
			Message: "PostgreSQL connection pool {{.Value}}% used (threshold: {{.Threshold}}%)",
		},
		{
			Name: "postgresql_cache_hit", Metric: "postgresql_cache_hit_ratio", Target: KindDatabase, Comparison: Below,
			Warning: lv(90, 5*time.Minute), Critical: lv(80, 5*time.Minute), Hysteresis: 2, KeepFiringFor: keep,
			Message: "PostgreSQL cache hit ratio low: {{.Value}}% (threshold: {{.Threshold}}%)",
		},
		{
			Name: "redis_memory", Metric: "redis_memory_mb", Target: KindDatabase, Comparison: Above,
			Warning: lv(100, 5*time.Minute), Critical: lv(500, time.Minute), Hysteresis: 10, KeepFiringFor: keep,
			Message: "Redis memory high: {{.Value}} MB (threshold: {{.Threshold}} MB)",
		},
		{
			Name: "redis_hit_ratio", Metric: "redis_hit_ratio", Target: KindDatabase, Comparison: Below,
			Warning: lv(50, 5*time.Minute), Critical: lv(10, 5*time.Minute), Hysteresis: 5, KeepFiringFor: keep,
			Message: "Redis keyspace hit ratio low: {{.Value}}% (threshold: {{.Threshold}}%)",
		},
		{
			Name: "host_cpu", Metric: "host_cpu_percent", Target: KindHost, Comparison: Above,
			Warning: lv(80, 5*time.Minute), Critical: lv(95, 2*time.Minute), Hysteresis: 5, KeepFiringFor: keep,
			Message: "Host CPU high on {{.Host}}: {{.Value}}% (threshold: {{.Threshold}}%)",
		},
		{
			Name: "host_ram", Metric: "host_ram_percent", Target: KindHost, Comparison: Above,
			Warning: lv(85, 2*time.Minute), Critical: lv(95, time.Minute), Hysteresis: 3, KeepFiringFor: keep,
			Message: "Host RAM high on {{.Host}}: {{.Value}}% used (threshold: {{.Threshold}}%)",
		},
		{
			Name: "host_disk", Metric: "host_disk_percent", Target: KindHost, Comparison: Above,
			Warning: lv(80, time.Minute), Critical: lv(90, time.Minute), Hysteresis: 1, KeepFiringFor: keep,
			Message: "Host disk almost full on {{.Host}}: {{.Value}}% used (threshold: {{.Threshold}}%)",
		},
		{
			Name: "containers_unhealthy", Metric: "containers_unhealthy", Target: KindContainersCount, Comparison: AboveOrEqual,
			Warning: lv(1, 30*time.Second), Critical: lv(2, 30*time.Second), KeepFiringFor: keep,
			Message: "{{.Value}} container(s) failing: {{.Detail}}",
		},
		{
			Name: "host_offline", Metric: "host_offline", Target: KindHost, Comparison: AboveOrEqual,
			Warning: lv(1, 15*time.Second), Critical: lv(1, 5*time.Minute),
			Message: "Host {{.Host}} is not reporting",
		},

		// GPU health (issue 14).
		{
			Name: "gpu_xid", Metric: "gpu_xid_severity", Target: KindGPU, Comparison: AboveOrEqual,
			Warning: lv(1, 0), Critical: lv(2, 0), KeepFiringFor: 10 * time.Minute,
			Message: "GPU {{.Target}} on {{.Host}} reported a critical XID error (severity {{.Value}} of 2: 2 means reset the GPU)",
		},
		{
			Name: "gpu_ecc_uncorrectable", Metric: "gpu_ecc_uncorrected", Target: KindGPU, Comparison: AboveOrEqual,
			Warning: lv(1, 0), Critical: lv(10, 0), KeepFiringFor: keep,
			Message: "GPU {{.Target}} on {{.Host}}: {{.Value}} uncorrectable ECC error(s) since the driver loaded",
		},
		{
			Name: "gpu_row_remap", Metric: "gpu_row_remap", Target: KindGPU, Comparison: AboveOrEqual,
			Warning: lv(1, 0), Critical: lv(2, 0), KeepFiringFor: keep,
			Message: "GPU {{.Target}} on {{.Host}}: memory row remapping at {{.Value}} (1: pending a GPU reset, 2: failed, replace the GPU)",
		},
		{
			Name: "gpu_pcie_degraded", Metric: "gpu_pcie_degraded", Target: KindGPU, Comparison: AboveOrEqual,
			Warning: lv(1, 5*time.Minute), Critical: lv(1, 30*time.Minute), KeepFiringFor: keep,
			Message: "GPU {{.Target}} on {{.Host}}: PCIe link below its maximum width or speed",
		},
	}
}
