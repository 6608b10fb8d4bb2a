package metrics

import "time"

// Message types on the WebSocket.
const (
	TypeUpdate  = "performance_update"
	TypeHistory = "performance_history"
)

// Update is the merged performance update the hub sends every interval on
// /ws/system, /api/v1/performance and sysperf.v1.update. Its fields are the
// seed design's, field for field and in its units (GB, MB, W, °C, percent);
// Gpus, Hosts, Sources, Stale and Errors are extensions. A value no source
// could fill is null, never zero.
type Update struct {
	Type       string      `json:"type"`
	Timestamp  time.Time   `json:"timestamp"`
	GPU        GPUView     `json:"gpu"`
	AIModels   AIModels    `json:"ai_models"`
	Inference  Latencies   `json:"inference"`
	Databases  Databases   `json:"databases"`
	Host       HostView    `json:"host"`
	Containers []Container `json:"containers"`
	Alerts     []Alert     `json:"alerts"`

	GPUs  []GPUView    `json:"gpus"`
	Hosts []HostStatus `json:"hosts"`
	// Sources says which source filled each section ("agent:<host>",
	// "postgres", "prometheus", "none").
	Sources map[string]string `json:"sources"`
	// Stale marks sections whose newest data is older than three intervals.
	Stale map[string]bool `json:"stale"`
	// Errors says, per section, why it is empty or partial.
	Errors map[string]string `json:"errors,omitempty"`
	// InferenceWindows are the inference figures over each range the
	// dashboard offers, keyed "5m", "15m" and "60m", each with its Window
	// set, so a chart range shows figures over that range. Inference stays
	// the figures over the configured latency window.
	InferenceWindows map[string]Latencies `json:"inference_windows,omitempty"`
	// Models lists every model server the agents read, the seed's two
	// included, each with its kind's figures (see ModelEntry).
	Models []ModelEntry `json:"models"`
}

// Section names used as keys of Update.Sources, Stale and Errors.
const (
	SectionGPU        = "gpu"
	SectionHost       = "host"
	SectionRTDETR     = "ai_models." + RoleRTDETR
	SectionNemotron   = "ai_models." + RoleNemotron
	SectionInference  = "inference"
	SectionPostgreSQL = "databases.postgresql"
	SectionRedis      = "databases.redis"
	SectionContainers = "containers"
)

// GPUView is one GPU in the dashboard's units. The seed's "gpu" field is the
// first GPU of the first online host; "gpus" lists all of them.
type GPUView struct {
	Host              string        `json:"host,omitempty"`
	Index             *int          `json:"index,omitempty"`
	UUID              string        `json:"uuid,omitempty"`
	Name              *string       `json:"name"`
	Utilization       *float64      `json:"utilization"`
	MemoryUtilization *float64      `json:"memory_utilization,omitempty"`
	VRAMUsedGB        *float64      `json:"vram_used_gb"`
	VRAMTotalGB       *float64      `json:"vram_total_gb"`
	Temperature       *float64      `json:"temperature"`
	PowerWatts        *float64      `json:"power_watts"`
	PowerLimitWatts   *float64      `json:"power_limit_watts,omitempty"`
	SMClockMHz        *uint32       `json:"sm_clock_mhz,omitempty"`
	MemClockMHz       *uint32       `json:"mem_clock_mhz,omitempty"`
	FanPercent        *float64      `json:"fan_percent,omitempty"`
	PState            *int          `json:"pstate,omitempty"`
	Throttle          []string      `json:"throttle_reasons,omitempty"`
	ThrottleMask      *uint64       `json:"throttle_mask,omitempty"` // null when the driver gave none: "none" (0) is not "unknown"
	EnergyJoules      *float64      `json:"energy_joules,omitempty"`
	Processes         []ProcessView `json:"processes,omitempty"`
	Stale             bool          `json:"stale,omitempty"`

	// Health (see GPU); each absent where the device does not report it.
	PersistenceMode     *bool        `json:"persistence_mode,omitempty"`
	DriverVersion       string       `json:"driver_version,omitempty"`
	CUDAVersion         string       `json:"cuda_version,omitempty"`
	VBIOSVersion        string       `json:"vbios_version,omitempty"`
	XIDs                []XIDView    `json:"xids,omitempty"`
	ECC                 *ECC         `json:"ecc,omitempty"`
	PCIe                *PCIeView    `json:"pcie,omitempty"`
	NVLinks             []NVLinkView `json:"nvlinks,omitempty"`
	MIGMode             *bool        `json:"mig_mode,omitempty"`
	MIG                 []MIGView    `json:"mig_instances,omitempty"`
	SMActivePercent     *float64     `json:"sm_active_percent,omitempty"`
	SMOccupancyPercent  *float64     `json:"sm_occupancy_percent,omitempty"`
	TensorActivePercent *float64     `json:"tensor_active_percent,omitempty"`
}

// XIDView is a critical XID error of the GPU's last sample.
type XIDView struct {
	Code            uint64    `json:"code"`
	Time            time.Time `json:"time"`
	Count           int       `json:"count"`
	GPUInstance     *uint32   `json:"gpu_instance,omitempty"`
	ComputeInstance *uint32   `json:"compute_instance,omitempty"`
}

// PCIeView is a GPU's PCIe link, throughput in MB/s.
type PCIeView struct {
	Gen      *int     `json:"gen,omitempty"`
	MaxGen   *int     `json:"max_gen,omitempty"`
	Width    *int     `json:"width,omitempty"`
	MaxWidth *int     `json:"max_width,omitempty"`
	TxMBps   *float64 `json:"tx_mb_s,omitempty"`
	RxMBps   *float64 `json:"rx_mb_s,omitempty"`
	Replays  *uint64  `json:"replay_count,omitempty"`
	Degraded *bool    `json:"degraded,omitempty"`
}

// NVLinkView is one NVLink, throughput in MB/s.
type NVLinkView struct {
	Link   int      `json:"link"`
	Up     *bool    `json:"up,omitempty"`
	TxMBps *float64 `json:"tx_mb_s,omitempty"`
	RxMBps *float64 `json:"rx_mb_s,omitempty"`
}

// MIGView is one MIG instance, its processes attributed as the GPU's are.
type MIGView struct {
	GPUInstance     uint32        `json:"gpu_instance"`
	ComputeInstance uint32        `json:"compute_instance"`
	UUID            string        `json:"uuid,omitempty"`
	VRAMUsedGB      *float64      `json:"vram_used_gb,omitempty"`
	VRAMTotalGB     *float64      `json:"vram_total_gb,omitempty"`
	Processes       []ProcessView `json:"processes,omitempty"`
	// GPM of the instance's GPU instance, as the GPU's.
	SMActivePercent     *float64 `json:"sm_active_percent,omitempty"`
	TensorActivePercent *float64 `json:"tensor_active_percent,omitempty"`
}

// ProcessView is one GPU compute process and the model it serves.
type ProcessView struct {
	PID       uint32   `json:"pid"`
	Name      string   `json:"name,omitempty"`
	Command   string   `json:"command,omitempty"`
	VRAMGB    *float64 `json:"vram_gb"`
	SMPercent *float64 `json:"sm_percent"`
	Container string   `json:"container,omitempty"`
	Model     string   `json:"model,omitempty"`
}

// AIModels holds the two model servers of the seed.
type AIModels struct {
	RTDETR   ModelView `json:"rtdetr"`
	Nemotron ModelView `json:"nemotron"`
}

// ModelView is a model server's state in the dashboard's units. The seed's
// fields are always present: null (or "") when unknown. Status is the
// exception: the live update always has one (the hub says "unknown" or
// "unconfigured" when no source did), and a history point, which holds
// figures only, leaves it out rather than send "".
type ModelView struct {
	Status      Status             `json:"status,omitempty"`
	Reason      string             `json:"reason,omitempty"`
	Host        string             `json:"host,omitempty"`
	VRAMGB      *float64           `json:"vram_gb"`
	Model       string             `json:"model"`
	Device      string             `json:"device"`
	SlotsActive *int               `json:"slots_active"`
	SlotsTotal  *int               `json:"slots_total"`
	ContextSize *int               `json:"context_size"`
	Gauges      map[string]float64 `json:"gauges,omitempty"`
	Extra       map[string]any     `json:"extra,omitempty"`
	Stale       bool               `json:"stale,omitempty"`
}

// Latencies is the seed's "inference" section.
type Latencies struct {
	RTDETR     Stats      `json:"rtdetr_latency_ms"`
	Nemotron   Stats      `json:"nemotron_latency_ms"`
	Pipeline   Stats      `json:"pipeline_latency_ms"`
	Throughput Throughput `json:"throughput"`
	// Window is the window the figures cover ("5m").
	Window string `json:"window,omitempty"`
}

// Stats are latency figures in milliseconds over a window; null when the
// window saw no observation.
type Stats struct {
	Avg   *float64 `json:"avg"`
	P95   *float64 `json:"p95"`
	P99   *float64 `json:"p99"`
	Count *float64 `json:"count,omitempty"`
}

// Throughput is the pipeline's rate, per minute.
type Throughput struct {
	ImagesPerMin *float64 `json:"images_per_min"`
	EventsPerMin *float64 `json:"events_per_min"`
}

// Databases is the seed's "databases" section.
type Databases struct {
	PostgreSQL PostgreSQL `json:"postgresql"`
	Redis      Redis      `json:"redis"`
	// PostgreSQLExtra are the further databases of the config file's
	// postgres: list, after the first, which fills PostgreSQL.
	PostgreSQLExtra []PostgreSQL `json:"postgresql_extra,omitempty"`
}

// PostgreSQL is the monitored database's state.
type PostgreSQL struct {
	// Status is always set in the live update; a history point leaves it
	// out (see ModelView).
	Status            Status `json:"status,omitempty"`
	Reason            string `json:"reason,omitempty"`
	Database          string `json:"database,omitempty"`
	ConnectionsActive *int   `json:"connections_active"`
	ConnectionsMax    *int   `json:"connections_max"`
	// ConnectionsMaxFrom says what ConnectionsMax is: the application's
	// pool size when configured (ConnectionsMaxPool), else the server's
	// max_connections (ConnectionsMaxServer).
	ConnectionsMaxFrom string   `json:"connections_max_from,omitempty"`
	CacheHitRatio      *float64 `json:"cache_hit_ratio"`
	TransactionsPerMin *float64 `json:"transactions_per_min"`
	Deadlocks          *int64   `json:"deadlocks,omitempty"`
	SizeBytes          *int64   `json:"size_bytes,omitempty"`
	LongestQueryS      *float64 `json:"longest_query_s,omitempty"`
}

// What PostgreSQL.ConnectionsMax counts.
const (
	ConnectionsMaxPool   = "pool_size"
	ConnectionsMaxServer = "max_connections"
)

// Redis is the Redis server's state.
type Redis struct {
	// Status: as PostgreSQL's.
	Status           Status   `json:"status,omitempty"`
	Reason           string   `json:"reason,omitempty"`
	ConnectedClients *int64   `json:"connected_clients"`
	MemoryMB         *float64 `json:"memory_mb"`
	HitRatio         *float64 `json:"hit_ratio"`
	BlockedClients   *int64   `json:"blocked_clients"`
	OpsPerSec        *float64 `json:"ops_per_sec,omitempty"`
	EvictedKeys      *int64   `json:"evicted_keys,omitempty"`
	// Keys is the number of keys over all databases (INFO keyspace).
	Keys *int64 `json:"keys,omitempty"`
}

// Container is one container's state and health.
type Container struct {
	Name string `json:"name"`
	// Status is the engine's state ("running", "exited"...), not a Status.
	Status string `json:"status"`
	Health Status `json:"health"`
	Reason string `json:"reason,omitempty"`
	// Timeline is the recent health, oldest first, for the UI's Tracker.
	Timeline []HealthPoint `json:"timeline,omitempty"`
}

// Unhealthy reports whether the container counts as failing (its health
// check fails, or it is not running) and whether anything is known about
// it at all: a status of "" or "unknown" (no health URL, and no engine
// could be asked) is not known. The alert rules and the history's count
// both use it, so the chart and the alert agree.
func (c Container) Unhealthy() (unhealthy, known bool) {
	switch c.Health {
	case StatusHealthy:
		return false, true
	case StatusUnhealthy, StatusUnreachable:
		return true, true
	}
	switch c.Status {
	case "running":
		return false, true
	case "", "unknown":
		return false, false
	}
	return true, true // exited, dead, restarting, missing...
}

// HealthPoint is one entry of a container's health timeline.
type HealthPoint struct {
	Timestamp time.Time `json:"timestamp"`
	Health    Status    `json:"health"`
}

// Severity is an alert's level. The constants live here, not in
// pkg/alerts, because Alert carries it and pkg/metrics imports nothing of
// sysperf's; pkg/alerts names the same type.
type Severity string

// Severities, in increasing order.
const (
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// AlertState is where an alert is in its life, as in Alert.State and the
// transition subjects (sysperf.v1.alert.<state>). Declared here for the
// same reason as Severity.
type AlertState string

// Alert states.
const (
	StateInactive AlertState = "inactive"
	StatePending  AlertState = "pending"
	StateFiring   AlertState = "firing"
	StateResolved AlertState = "resolved"
)

// Alert is a pending or firing alert, or a transition of one.
type Alert struct {
	Severity  Severity   `json:"severity"`
	Metric    string     `json:"metric"`
	Value     float64    `json:"value"`
	Threshold float64    `json:"threshold"`
	Message   string     `json:"message"`
	Host      string     `json:"host,omitempty"`
	Target    string     `json:"target,omitempty"`
	State     AlertState `json:"state,omitempty"`
	Since     time.Time  `json:"since,omitzero"`
	Rule      string     `json:"rule,omitempty"`
	// At is when a transition happened; set on transitions only.
	At time.Time `json:"at,omitzero"`
}

// HostView is the seed's "host" section in GB, plus the extensions.
type HostView struct {
	CPUPercent    *float64  `json:"cpu_percent"`
	RAMUsedGB     *float64  `json:"ram_used_gb"`
	RAMTotalGB    *float64  `json:"ram_total_gb"`
	DiskUsedGB    *float64  `json:"disk_used_gb"`
	DiskTotalGB   *float64  `json:"disk_total_gb"`
	PerCore       []float64 `json:"per_core,omitempty"`
	Load1         *float64  `json:"load1,omitempty"`
	Load5         *float64  `json:"load5,omitempty"`
	Load15        *float64  `json:"load15,omitempty"`
	SwapUsedGB    *float64  `json:"swap_used_gb,omitempty"`
	SwapTotalGB   *float64  `json:"swap_total_gb,omitempty"`
	DiskReadMBps  *float64  `json:"disk_read_mb_s,omitempty"`
	DiskWriteMBps *float64  `json:"disk_write_mb_s,omitempty"`
	NetRxMBps     *float64  `json:"net_rx_mb_s,omitempty"`
	NetTxMBps     *float64  `json:"net_tx_mb_s,omitempty"`
	UptimeS       *uint64   `json:"uptime_s,omitempty"`
}

// HostStatus is one agent's host as the hub last heard it.
type HostStatus struct {
	Host     string    `json:"host"`
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen"`
	// Boot and Seq are the newest sample's, in the live update; a
	// history point has neither. An absent seq is 0 (a boot's first
	// sample).
	Boot     string               `json:"boot,omitempty"`
	Seq      uint64               `json:"seq,omitempty"`
	System   HostView             `json:"system"`
	GPUCount int                  `json:"gpu_count"`
	Models   map[string]ModelView `json:"models,omitempty"`
	Errors   map[string]string    `json:"errors,omitempty"`
}
