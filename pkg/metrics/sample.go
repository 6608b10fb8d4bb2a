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

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Version is the schema version every message carries in "v". Decoders
// accept newer versions and ignore fields they do not know, so a newer
// agent can talk to an older hub.
const Version = 1

// Collector names, used as keys of Sample.Errors. A model server's
// collector reports under its model role (RoleRTDETR, RoleNemotron, or the
// name of a further entry of the agent's models: list).
const (
	CollectorHost      = "host"
	CollectorGPU       = "gpu"
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

	// nonFinite is how many NaN/Inf values Decode removed; not on the wire.
	nonFinite int
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

	// Health. Each field is absent when the device answers NOT_SUPPORTED.
	Persistence *bool  `msgpack:"pm,omitempty" json:"persistence_mode,omitempty"`
	Driver      string `msgpack:"dv,omitempty" json:"driver_version,omitempty"`
	CUDA        string `msgpack:"cu,omitempty" json:"cuda_version,omitempty"`
	VBIOS       string `msgpack:"vb,omitempty" json:"vbios_version,omitempty"`
	// XIDs are the critical XID errors the driver reported since the last
	// sample, one entry per code and instance.
	XIDs    []XID    `msgpack:"x,omitempty" json:"xids,omitempty"`
	ECC     *ECC     `msgpack:"ec,omitempty" json:"ecc,omitempty"`
	PCIe    *PCIe    `msgpack:"pe,omitempty" json:"pcie,omitempty"`
	NVLinks []NVLink `msgpack:"nl,omitempty" json:"nvlinks,omitempty"`
	MIGMode *bool    `msgpack:"mg,omitempty" json:"mig_mode,omitempty"`
	// MIG lists the MIG instances when MIG mode is on.
	MIG []MIGInstance `msgpack:"mi,omitempty" json:"mig_instances,omitempty"`
	// GPM (Hopper and newer): the share of time SMs had a warp resident,
	// their warp occupancy, and the share of time any tensor core was busy,
	// over the interval since the last sample.
	SMActive     *float64 `msgpack:"ga,omitempty" json:"sm_active_percent,omitempty"`
	SMOccupancy  *float64 `msgpack:"go,omitempty" json:"sm_occupancy_percent,omitempty"`
	TensorActive *float64 `msgpack:"gt,omitempty" json:"tensor_active_percent,omitempty"`
}

// XID is one critical XID error the driver reported for a GPU, or for one
// of its MIG instances. Repeats of the same code on the same instance
// within one sample are counted, not listed.
type XID struct {
	Code uint64 `msgpack:"c" json:"code"`
	// TS is when the first of them arrived, unix nanoseconds.
	TS    int64 `msgpack:"t" json:"ts"`
	Count int   `msgpack:"n" json:"count"`
	// GPUInstance and ComputeInstance name the MIG instance the error is
	// attributed to; absent for a whole-GPU error.
	GPUInstance     *uint32 `msgpack:"gi,omitempty" json:"gpu_instance,omitempty"`
	ComputeInstance *uint32 `msgpack:"ci,omitempty" json:"compute_instance,omitempty"`
}

// ECC is a device's memory error state. Volatile counters are since the
// last driver load, aggregate ones over the device's life. Pages are
// retired on GPUs before Ampere; rows are remapped from Ampere on.
type ECC struct {
	Enabled               *bool   `msgpack:"on,omitempty" json:"enabled,omitempty"`
	VolatileCorrected     *uint64 `msgpack:"vc,omitempty" json:"volatile_corrected,omitempty"`
	VolatileUncorrected   *uint64 `msgpack:"vu,omitempty" json:"volatile_uncorrected,omitempty"`
	AggregateCorrected    *uint64 `msgpack:"ac,omitempty" json:"aggregate_corrected,omitempty"`
	AggregateUncorrected  *uint64 `msgpack:"au,omitempty" json:"aggregate_uncorrected,omitempty"`
	RetiredSBE            *uint64 `msgpack:"rs,omitempty" json:"retired_pages_sbe,omitempty"`
	RetiredDBE            *uint64 `msgpack:"rd,omitempty" json:"retired_pages_dbe,omitempty"`
	RetiredPending        *bool   `msgpack:"rp,omitempty" json:"retired_pages_pending,omitempty"`
	RemappedCorrectable   *uint64 `msgpack:"mc,omitempty" json:"remapped_rows_correctable,omitempty"`
	RemappedUncorrectable *uint64 `msgpack:"mu,omitempty" json:"remapped_rows_uncorrectable,omitempty"`
	RemapPending          *bool   `msgpack:"mp,omitempty" json:"remap_pending,omitempty"`
	RemapFailure          *bool   `msgpack:"mf,omitempty" json:"remap_failure,omitempty"`
}

// PCIe is a device's PCIe link. Degraded is set when the link runs
// narrower than its maximum, or slower while the GPU is busy (an idle GPU
// lowers its link speed on purpose).
type PCIe struct {
	Gen      *int     `msgpack:"g,omitempty" json:"gen,omitempty"`
	MaxGen   *int     `msgpack:"mg,omitempty" json:"max_gen,omitempty"`
	Width    *int     `msgpack:"w,omitempty" json:"width,omitempty"`
	MaxWidth *int     `msgpack:"mw,omitempty" json:"max_width,omitempty"`
	TxBps    *float64 `msgpack:"tx,omitempty" json:"tx_bytes_per_s,omitempty"`
	RxBps    *float64 `msgpack:"rx,omitempty" json:"rx_bytes_per_s,omitempty"`
	Replays  *uint64  `msgpack:"r,omitempty" json:"replay_count,omitempty"`
	Degraded *bool    `msgpack:"d,omitempty" json:"degraded,omitempty"`
}

// NVLink is one NVLink of a device.
type NVLink struct {
	Link  int      `msgpack:"l" json:"link"`
	Up    *bool    `msgpack:"u,omitempty" json:"up,omitempty"`
	TxBps *float64 `msgpack:"tx,omitempty" json:"tx_bytes_per_s,omitempty"`
	RxBps *float64 `msgpack:"rx,omitempty" json:"rx_bytes_per_s,omitempty"`
}

// MIGInstance is one MIG device (a GPU instance and compute instance) of a
// GPU. Its processes carry PID and memory only: the same PIDs are in the
// parent GPU's Processes, which the agent attributes to commands,
// containers and models, and the hub copies that attribution here.
type MIGInstance struct {
	GPUInstance     uint32    `msgpack:"gi" json:"gpu_instance"`
	ComputeInstance uint32    `msgpack:"ci" json:"compute_instance"`
	UUID            string    `msgpack:"u,omitempty" json:"uuid,omitempty"`
	MemUsed         *uint64   `msgpack:"vu,omitempty" json:"vram_used_bytes,omitempty"`
	MemTotal        *uint64   `msgpack:"vt,omitempty" json:"vram_total_bytes,omitempty"`
	Processes       []Process `msgpack:"p,omitempty" json:"processes,omitempty"`
	// GPM (Hopper and newer) of the instance's GPU instance over the
	// interval since the last sample, as GPU.SMActive and
	// GPU.TensorActive: compute instances of one GPU instance share them.
	SMActive     *float64 `msgpack:"ga,omitempty" json:"sm_active_percent,omitempty"`
	TensorActive *float64 `msgpack:"gt,omitempty" json:"tensor_active_percent,omitempty"`
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

// Status is the health of a model server, database or container: the one
// vocabulary every part uses, from the agent's collectors to the page. It
// encodes as its plain string.
type Status string

// Statuses. Sources and collectors report the first five; the hub adds
// the last two for sections nothing could fill.
const (
	StatusHealthy     Status = "healthy"
	StatusDegraded    Status = "degraded"
	StatusLoading     Status = "loading"
	StatusUnhealthy   Status = "unhealthy"
	StatusUnreachable Status = "unreachable"
	// StatusUnknown: a source is configured but has not answered yet.
	StatusUnknown Status = "unknown"
	// StatusUnconfigured: no agent or source is set up to read the section.
	StatusUnconfigured Status = "unconfigured"
	// StatusNone and StatusStarting are the container engine's words for
	// a container's health: no healthcheck, and inside the healthcheck's
	// start period. Container.Health passes any other engine word through.
	StatusNone     Status = "none"
	StatusStarting Status = "starting"
)

// Model is what a model server says of itself. Keys of Sample.Models are the
// model roles: "rtdetr" and "nemotron" for the seed's two, and the name of
// each other entry of the agent's models: list.
type Model struct {
	Status Status `msgpack:"s" json:"status"`
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

	// Kind is the server kind (KindVLLM...) of a model configured in the
	// agent's models: list; the seed's two entries have KindRTDETR and
	// KindLlamaCpp.
	Kind string `msgpack:"k,omitempty" json:"kind,omitempty"`
	// Histograms are the server's own cumulative latency histograms, in
	// seconds, keyed HistTTFT, HistE2E, HistITL, HistQueue; the hub turns
	// them into windowed percentiles per model.
	Histograms map[string]Histogram `msgpack:"h,omitempty" json:"histograms,omitempty"`
	// Counters are the server's cumulative counters keyed CounterPromptTokens,
	// CounterGenTokens, CounterRequests, CounterImages..., plus the agent's
	// own CounterEnergy; the hub turns them into rates.
	Counters map[string]float64 `msgpack:"c,omitempty" json:"counters,omitempty"`
	// Waiting and Running are requests queued and being served now.
	Waiting *float64 `msgpack:"qw,omitempty" json:"requests_waiting,omitempty"`
	Running *float64 `msgpack:"qr,omitempty" json:"requests_running,omitempty"`
	// KVCache is the KV cache in use, percent 0–100.
	KVCache *float64 `msgpack:"kv,omitempty" json:"kv_cache_percent,omitempty"`
	// Slots are llama.cpp's slots one by one, for context use per slot.
	Slots []Slot `msgpack:"sl,omitempty" json:"slots,omitempty"`
	// Loaded are the models an Ollama server holds in memory.
	Loaded []Loaded `msgpack:"ld,omitempty" json:"loaded,omitempty"`
	// GPUs are the indexes of the GPUs the model's processes run on, and
	// SMPercent the sum of their SM shares (filled by the procs step).
	GPUs      []int    `msgpack:"gi,omitempty" json:"gpus,omitempty"`
	SMPercent *float64 `msgpack:"sm,omitempty" json:"sm_percent,omitempty"`
	// Energy is the estimated GPU energy the model's processes drew over
	// the sample's interval, in joules, and Power its average in watts:
	// each GPU's energy split by its processes' SM share (README, "Energy
	// per model").
	Energy *float64 `msgpack:"ej,omitempty" json:"energy_joules,omitempty"`
	Power  *float64 `msgpack:"ew,omitempty" json:"power_watts,omitempty"`
	// Notes say what this kind of server cannot report, so the page
	// explains a missing figure instead of showing nothing.
	Notes []string `msgpack:"nt,omitempty" json:"notes,omitempty"`
}

// Model server kinds, the values of Model.Kind and of kind in the agent's
// models: list.
const (
	KindRTDETR   = "rtdetr"
	KindLlamaCpp = "llamacpp"
	KindVLLM     = "vllm"
	KindSGLang   = "sglang"
	KindTGI      = "tgi"
	KindTriton   = "triton"
	KindOllama   = "ollama"
)

// Keys of Model.Histograms.
const (
	HistTTFT  = "ttft"  // time to first token
	HistE2E   = "e2e"   // end-to-end request latency
	HistITL   = "itl"   // inter-token latency (time per output token)
	HistQueue = "queue" // time waiting before the server starts a request
)

// Keys of Model.Counters.
const (
	CounterPromptTokens = "prompt_tokens"
	CounterGenTokens    = "generation_tokens"
	CounterRequests     = "requests"
	CounterImages       = "images"
	// CounterInferences counts inferences, a batched request counting
	// its batch size (Triton's nv_inference_count).
	CounterInferences = "inferences"
	// CounterLatencySum and CounterQueueSum are cumulative request and
	// queue time in seconds, for servers that count time instead of
	// keeping a histogram (Triton): average = Δsum / Δrequests.
	CounterLatencySum = "latency_seconds"
	CounterQueueSum   = "queue_seconds"
	// CounterEnergy is the agent's running total of Model.Energy since it
	// started, so the hub can average watts and joules per token over any
	// window.
	CounterEnergy = "energy_joules"
)

// Slot is one llama.cpp slot. Used is the tokens in its context when the
// server says (older builds' n_past); current builds do not.
type Slot struct {
	ID      int  `msgpack:"i" json:"id"`
	Ctx     int  `msgpack:"c,omitempty" json:"n_ctx,omitempty"`
	Used    *int `msgpack:"u,omitempty" json:"n_past,omitempty"`
	Decoded *int `msgpack:"d,omitempty" json:"n_decoded,omitempty"`
	Busy    bool `msgpack:"b,omitempty" json:"busy,omitempty"`
}

// Loaded is one model an Ollama server holds: its size in memory, the part
// of it in VRAM, its context length and when it is unloaded.
type Loaded struct {
	Name      string `msgpack:"n" json:"name"`
	Size      uint64 `msgpack:"s" json:"size_bytes"`
	SizeVRAM  uint64 `msgpack:"v" json:"size_vram_bytes"`
	Context   *int   `msgpack:"c,omitempty" json:"context_length,omitempty"`
	ExpiresAt string `msgpack:"e,omitempty" json:"expires_at,omitempty"`
	Params    string `msgpack:"p,omitempty" json:"parameter_size,omitempty"`
	Quant     string `msgpack:"q,omitempty" json:"quantization_level,omitempty"`
	// VRAMShare is SizeVRAM / Size in percent: below 100 the model
	// runs partly on the CPU.
	VRAMShare *float64 `msgpack:"vs,omitempty" json:"vram_share_percent,omitempty"`
}

// Roles: one name per model or stage everywhere. RoleRTDETR and
// RoleNemotron are the seed's two model roles: keys of Sample.Models and
// Sample.Errors, of Inference.Histograms, alert targets, and the tail of
// their section keys (SectionRTDETR). All five are the keys of
// Inference.Histograms (latency) and Inference.Counters (throughput), and
// the stages pipelines push under. The values are on the wire.
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

// Encode returns the msgpack encoding of s. It stamps the schema version.
func Encode(s *Sample) ([]byte, error) {
	s.V = Version
	b, err := msgpack.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode sample: %w", err)
	}
	return b, nil
}
