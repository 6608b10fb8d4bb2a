// Package metrics holds sysperf's wire contract: the sample an agent publishes,
// the latency observation a pipeline pushes, the performance update the hub
// serves, their msgpack codec and the NATS subjects they travel on.
//
// Units on the wire are SI base units: bytes, watts, joules, degrees Celsius,
// percent 0–100, milliseconds for latency and unix nanoseconds for time. The
// hub converts to the dashboard's units (GB, MB) when it builds an Update.
//
// Fields a source could not read are nil pointers and omitted from the
// encoding: an absent value is never sent as zero.
package metrics

// Version is the schema version every message carries in "v". Decoders
// accept newer versions and ignore fields they do not know, so a newer
// agent can talk to an older hub.
const Version = 1

// Collector names, used as keys of Sample.Errors.
const (
	CollectorHost      = "host"
	CollectorGPU       = "gpu"
	CollectorRTDETR    = "rtdetr"
	CollectorLLM       = "nemotron"
	CollectorInference = "inference"
	// CollectorProcs is the attribution of GPU processes to commands,
	// containers and models.
	CollectorProcs = "procs"
)

// Sample is one reading of one host by its agent.
type Sample struct {
	V        int    `msgpack:"v" json:"v"`
	Host     string `msgpack:"h" json:"host"`
	Boot     string `msgpack:"b" json:"boot"`
	Seq      uint64 `msgpack:"q" json:"seq"`
	TS       int64  `msgpack:"t" json:"ts"`
	Interval int64  `msgpack:"i,omitempty" json:"interval_ns,omitempty"`

	System    *System           `msgpack:"s,omitempty" json:"system,omitempty"`
	GPUs      []GPU             `msgpack:"g,omitempty" json:"gpus,omitempty"`
	Models    map[string]Model  `msgpack:"m,omitempty" json:"models,omitempty"`
	Inference *Inference        `msgpack:"n,omitempty" json:"inference,omitempty"`
	Errors    map[string]string `msgpack:"e,omitempty" json:"errors,omitempty"`
}

// System is the host section: CPU, memory, disks, network, uptime.
type System struct {
	CPUPercent   *float64  `msgpack:"c,omitempty" json:"cpu_percent,omitempty"`
	PerCore      []float64 `msgpack:"pc,omitempty" json:"per_core,omitempty"`
	Load1        *float64  `msgpack:"l1,omitempty" json:"load1,omitempty"`
	Load5        *float64  `msgpack:"l5,omitempty" json:"load5,omitempty"`
	Load15       *float64  `msgpack:"l15,omitempty" json:"load15,omitempty"`
	MemUsed      uint64    `msgpack:"mu" json:"mem_used_bytes"`
	MemTotal     uint64    `msgpack:"mt" json:"mem_total_bytes"`
	SwapUsed     uint64    `msgpack:"su" json:"swap_used_bytes"`
	SwapTotal    uint64    `msgpack:"st" json:"swap_total_bytes"`
	Disks        []Disk    `msgpack:"d,omitempty" json:"disks,omitempty"`
	DiskReadBps  *float64  `msgpack:"dr,omitempty" json:"disk_read_bytes_per_s,omitempty"`
	DiskWriteBps *float64  `msgpack:"dw,omitempty" json:"disk_write_bytes_per_s,omitempty"`
	NetRxBps     *float64  `msgpack:"nr,omitempty" json:"net_rx_bytes_per_s,omitempty"`
	NetTxBps     *float64  `msgpack:"nt,omitempty" json:"net_tx_bytes_per_s,omitempty"`
	Uptime       uint64    `msgpack:"u" json:"uptime_s"`
}

// Disk is the usage of one mounted file system.
type Disk struct {
	Mount string `msgpack:"m" json:"mount"`
	Used  uint64 `msgpack:"u" json:"used_bytes"`
	Total uint64 `msgpack:"t" json:"total_bytes"`
}

// GPU is one device as NVML reports it.
type GPU struct {
	Index        int      `msgpack:"i" json:"index"`
	UUID         string   `msgpack:"u" json:"uuid"`
	Name         string   `msgpack:"n" json:"name"`
	Util         *float64 `msgpack:"ut,omitempty" json:"utilization_percent,omitempty"`
	MemUtil      *float64 `msgpack:"mu,omitempty" json:"memory_utilization_percent,omitempty"`
	MemUsed      *uint64  `msgpack:"vu,omitempty" json:"vram_used_bytes,omitempty"`
	MemTotal     *uint64  `msgpack:"vt,omitempty" json:"vram_total_bytes,omitempty"`
	Temp         *float64 `msgpack:"tc,omitempty" json:"temperature_c,omitempty"`
	Power        *float64 `msgpack:"pw,omitempty" json:"power_watts,omitempty"`
	PowerLimit   *float64 `msgpack:"pl,omitempty" json:"power_limit_watts,omitempty"`
	SMClock      *uint32  `msgpack:"cs,omitempty" json:"sm_clock_mhz,omitempty"`
	MemClock     *uint32  `msgpack:"cm,omitempty" json:"mem_clock_mhz,omitempty"`
	Fan          *float64 `msgpack:"f,omitempty" json:"fan_percent,omitempty"`
	PState       *int     `msgpack:"ps,omitempty" json:"pstate,omitempty"`
	ThrottleMask *uint64  `msgpack:"tm,omitempty" json:"throttle_mask,omitempty"`
	Throttle     []string `msgpack:"tr,omitempty" json:"throttle_reasons,omitempty"`
	Energy       *float64 `msgpack:"e,omitempty" json:"energy_joules,omitempty"`
	// Processes are the compute processes on this device. A nil slice means
	// the driver could not list them; an empty one means there are none.
	Processes []Process `msgpack:"p" json:"processes"`
}

// Process is one compute process on a GPU and what it serves.
type Process struct {
	PID       uint32   `msgpack:"p" json:"pid"`
	Name      string   `msgpack:"n,omitempty" json:"name,omitempty"`
	Command   string   `msgpack:"c,omitempty" json:"command,omitempty"`
	MemUsed   *uint64  `msgpack:"m,omitempty" json:"vram_used_bytes,omitempty"`
	SMUtil    *float64 `msgpack:"s,omitempty" json:"sm_percent,omitempty"`
	Container string   `msgpack:"ct,omitempty" json:"container,omitempty"`
	Runtime   string   `msgpack:"rt,omitempty" json:"runtime,omitempty"`
	Model     string   `msgpack:"md,omitempty" json:"model,omitempty"`
}

// Model statuses, the one vocabulary every part uses.
const (
	StatusHealthy     = "healthy"
	StatusDegraded    = "degraded"
	StatusLoading     = "loading"
	StatusUnhealthy   = "unhealthy"
	StatusUnreachable = "unreachable"
)

// Model is what a model server says of itself. Keys of Sample.Models are the
// model roles: "rtdetr" and "nemotron".
type Model struct {
	Status string `msgpack:"s" json:"status"`
	// Reason says why a model is not healthy: "connection refused",
	// "timeout", "bad JSON", "HTTP 500".
	Reason      string  `msgpack:"r,omitempty" json:"reason,omitempty"`
	Model       string  `msgpack:"mn,omitempty" json:"model,omitempty"`
	Device      string  `msgpack:"d,omitempty" json:"device,omitempty"`
	MemUsed     *uint64 `msgpack:"vu,omitempty" json:"vram_used_bytes,omitempty"`
	SlotsActive *int    `msgpack:"sa,omitempty" json:"slots_active,omitempty"`
	SlotsTotal  *int    `msgpack:"st,omitempty" json:"slots_total,omitempty"`
	ContextSize *int    `msgpack:"cx,omitempty" json:"context_size,omitempty"`
	// PIDs are the processes serving the model, so the hub can attribute GPU
	// processes to it.
	PIDs []uint32 `msgpack:"pid,omitempty" json:"pids,omitempty"`
	// Container names the container serving the model, when known.
	Container string `msgpack:"ct,omitempty" json:"container,omitempty"`
	// Gauges are the server's numeric metrics (llama.cpp's tokens per
	// second, requests processing...), by their exposition name.
	Gauges map[string]float64 `msgpack:"g,omitempty" json:"gauges,omitempty"`
	// Extra keeps every other field the server's health answer had.
	Extra map[string]any `msgpack:"x,omitempty" json:"extra,omitempty"`
}

// Inference roles: the keys of Inference.Histograms (latency) and
// Inference.Counters (throughput), and the stages pipelines push under.
const (
	RoleRTDETR   = "rtdetr"   // histogram → inference.rtdetr_latency_ms
	RoleNemotron = "nemotron" // histogram → inference.nemotron_latency_ms
	RolePipeline = "pipeline" // histogram → inference.pipeline_latency_ms
	RoleImages   = "images"   // counter → throughput.images_per_min
	RoleEvents   = "events"   // counter → throughput.events_per_min
)

// Inference carries the raw series the agent scraped, keyed by role
// (RoleRTDETR...). The hub turns them into windowed averages and
// percentiles.
type Inference struct {
	Histograms map[string]Histogram `msgpack:"h,omitempty" json:"histograms,omitempty"`
	Counters   map[string]float64   `msgpack:"c,omitempty" json:"counters,omitempty"`
}

// Histogram is a cumulative Prometheus histogram as scraped, in seconds as
// the servers export them. Buckets are sorted by upper bound and leave out
// the +Inf bucket, whose count is Count (JSON has no infinity).
type Histogram struct {
	Count   float64  `msgpack:"c" json:"count"`
	Sum     float64  `msgpack:"s" json:"sum"`
	Buckets []Bucket `msgpack:"b" json:"buckets"`
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64 `msgpack:"le" json:"le"`
	Count      float64 `msgpack:"c" json:"count"`
}

// Observation is one latency measurement pushed by a pipeline on
// sysperf.v1.latency.<host>.<stage>.
type Observation struct {
	V  int     `msgpack:"v" json:"v"`
	TS int64   `msgpack:"ts" json:"ts"`
	MS float64 `msgpack:"ms" json:"ms"`
}
