// The hub's JSON, mirrored from pkg/metrics (update.go, history.go). A value
// no source could fill is null (or absent for omitempty fields), never 0.

export type Num = number | null;

export type Range = "5m" | "15m" | "60m" | "6h" | "24h" | "7d";
/** The ranges the hub's history serves (internal/history: 6h, 24h and 7d from its minute rollups). */
export const RANGES: readonly Range[] = ["5m", "15m", "60m", "6h", "24h", "7d"] as const;
/** Resolution in seconds of each range's slots (DESIGN.md; internal/history's tiers). */
export const RANGE_RESOLUTION_S: Record<Range, number> = { "5m": 5, "15m": 15, "60m": 60, "6h": 360, "24h": 1440, "7d": 10080 };
export const POINTS_PER_RANGE = 60;

export interface ProcessView {
  pid: number;
  name?: string;
  command?: string;
  vram_gb: Num;
  sm_percent: Num;
  container?: string;
  model?: string;
}

export interface GPUView {
  host?: string;
  index?: number;
  uuid?: string;
  name: string | null;
  utilization: Num;
  memory_utilization?: Num;
  vram_used_gb: Num;
  vram_total_gb: Num;
  temperature: Num;
  power_watts: Num;
  power_limit_watts?: Num;
  sm_clock_mhz?: Num;
  mem_clock_mhz?: Num;
  fan_percent?: Num;
  pstate?: Num;
  throttle_reasons?: string[];
  energy_joules?: Num;
  processes?: ProcessView[];
  stale?: boolean;
  // Health (pkg/metrics GPUView); each absent where the device does not report it.
  persistence_mode?: boolean;
  driver_version?: string;
  cuda_version?: string;
  vbios_version?: string;
  xids?: XIDView[];
  ecc?: ECCView;
  pcie?: PCIeView;
  nvlinks?: NVLinkView[];
  mig_mode?: boolean;
  mig_instances?: MIGView[];
  sm_active_percent?: number;
  sm_occupancy_percent?: number;
  tensor_active_percent?: number;
}

/** A critical XID error of the GPU's last sample. */
export interface XIDView {
  code: number;
  time: string;
  count: number;
  gpu_instance?: number;
  compute_instance?: number;
}

export interface ECCView {
  enabled?: boolean;
  volatile_corrected?: number;
  volatile_uncorrected?: number;
  aggregate_corrected?: number;
  aggregate_uncorrected?: number;
  retired_pages_sbe?: number;
  retired_pages_dbe?: number;
  retired_pages_pending?: boolean;
  remapped_rows_correctable?: number;
  remapped_rows_uncorrectable?: number;
  remap_pending?: boolean;
  remap_failure?: boolean;
}

/** Throughput in MB/s. */
export interface PCIeView {
  gen?: number;
  max_gen?: number;
  width?: number;
  max_width?: number;
  tx_mb_s?: number;
  rx_mb_s?: number;
  replay_count?: number;
  degraded?: boolean;
}

export interface NVLinkView {
  link: number;
  up?: boolean;
  tx_mb_s?: number;
  rx_mb_s?: number;
}

export interface MIGView {
  gpu_instance: number;
  compute_instance: number;
  uuid?: string;
  vram_used_gb?: number;
  vram_total_gb?: number;
  processes?: ProcessView[];
}

export type ModelStatus =
  | "healthy"
  | "degraded"
  | "loading"
  | "unhealthy"
  | "unreachable"
  | "unconfigured"
  | (string & {});

// status, boot and seq are absent where the hub has nothing for them (a
// history point); a live update always carries status.
export interface ModelView {
  status?: ModelStatus;
  reason?: string;
  host?: string;
  vram_gb?: Num;
  model?: string;
  device?: string;
  slots_active?: Num;
  slots_total?: Num;
  context_size?: Num;
  gauges?: Record<string, number>;
  extra?: Record<string, unknown>;
  stale?: boolean;
}

export interface AIModels {
  rtdetr: ModelView;
  nemotron: ModelView;
}

export interface Stats {
  avg: Num;
  p95: Num;
  p99?: Num;
  count?: Num;
}

export interface Throughput {
  images_per_min: Num;
  events_per_min: Num;
}

export interface Latencies {
  rtdetr_latency_ms: Stats;
  nemotron_latency_ms: Stats;
  pipeline_latency_ms: Stats;
  throughput: Throughput;
  window?: string;
}

export interface PostgreSQL {
  status?: string;
  reason?: string;
  connections_active: Num;
  connections_max: Num;
  /** What connections_max counts: the application's pool size or the server's max_connections. */
  connections_max_from?: "pool_size" | "max_connections";
  cache_hit_ratio: Num;
  transactions_per_min: Num;
  deadlocks?: Num;
  size_bytes?: Num;
  longest_query_s?: Num;
}

export interface Redis {
  status?: string;
  reason?: string;
  connected_clients: Num;
  memory_mb: Num;
  hit_ratio: Num;
  blocked_clients: Num;
  ops_per_sec?: Num;
  evicted_keys?: Num;
  keys?: Num;
}

export interface Databases {
  postgresql: PostgreSQL;
  redis: Redis;
}

export interface HealthPoint {
  timestamp: string;
  health: string;
}

export interface Container {
  name: string;
  status: string;
  health: string;
  reason?: string;
  timeline?: HealthPoint[];
}

export type Severity = "warning" | "critical";

export interface Alert {
  severity: Severity | (string & {});
  metric: string;
  value: number;
  threshold: number;
  message: string;
  host?: string;
  target?: string;
  state?: "pending" | "firing" | (string & {});
  since?: string;
  rule?: string;
}

export interface HostView {
  cpu_percent: Num;
  ram_used_gb: Num;
  ram_total_gb: Num;
  disk_used_gb: Num;
  disk_total_gb: Num;
  per_core?: number[];
  load1?: Num;
  load5?: Num;
  load15?: Num;
  swap_used_gb?: Num;
  swap_total_gb?: Num;
  disk_read_mb_s?: Num;
  disk_write_mb_s?: Num;
  net_rx_mb_s?: Num;
  net_tx_mb_s?: Num;
  uptime_s?: Num;
}

export interface HostStatus {
  host: string;
  online: boolean;
  last_seen: string;
  boot?: string;
  seq?: number;
  system: HostView;
  gpu_count: number;
  models?: Record<string, ModelView>;
  errors?: Record<string, string>;
}

export interface Update {
  type: "performance_update";
  timestamp: string;
  gpu: GPUView;
  ai_models: AIModels;
  inference: Latencies;
  databases: Databases;
  host: HostView;
  containers: Container[] | null;
  alerts: Alert[] | null;
  gpus: GPUView[] | null;
  hosts: HostStatus[] | null;
  sources: Record<string, string> | null;
  stale: Record<string, boolean> | null;
  errors?: Record<string, string> | null;
  /** The inference figures over each chart range, each with its window (extension). */
  inference_windows?: Partial<Record<Range, Latencies>> | null;
  /** Every model server the agents read, the seed's two included (extension). */
  models?: ModelEntry[] | null;
}

export type ModelKind = "rtdetr" | "llamacpp" | "vllm" | "sglang" | "tgi" | "triton" | "ollama" | (string & {});

/** One llama.cpp slot; n_past only from builds that report it. */
export interface SlotView {
  id: number;
  n_ctx?: number;
  n_past?: number;
  n_decoded?: number;
  busy?: boolean;
}

/** A model an Ollama server holds in memory. */
export interface LoadedModel {
  name: string;
  size_gb: number;
  vram_gb: number;
  vram_share_percent: Num;
  context_length: Num;
  expires_at?: string;
  parameter_size?: string;
  quantization_level?: string;
}

/** A model's share of its GPUs' energy: an estimate, never a measurement. */
export interface EnergyEstimate {
  estimate: boolean;
  method: string;
  interval_joules: Num;
  interval_watts: Num;
  window?: string;
  window_joules: Num;
  window_watts: Num;
  joules_per_token: Num;
  joules_per_image?: Num;
  joules_per_inference?: Num;
}

/** One configured model server of one host (update.models). */
export interface ModelEntry {
  host: string;
  name: string;
  kind: ModelKind;
  status: ModelStatus;
  reason?: string;
  model: string;
  vram_gb: Num;
  gpus?: number[];
  sm_percent: Num;
  latency_ms: Stats;
  ttft_ms: Stats;
  itl_ms: Stats;
  queue_ms: Stats;
  prompt_tokens_per_s: Num;
  generation_tokens_per_s: Num;
  requests_per_s: Num;
  requests_waiting: Num;
  requests_running: Num;
  kv_cache_percent: Num;
  slots_active?: Num;
  slots_total?: Num;
  context_size?: Num;
  slots?: SlotView[];
  loaded?: LoadedModel[];
  energy?: EnergyEstimate;
  notes?: string[];
  stale?: boolean;
}

/** One slot of a window: the Update's numeric fields (means), maxima in max. */
export interface Point {
  timestamp: string;
  gpu?: GPUView;
  gpus?: GPUView[];
  host?: HostView;
  hosts?: HostStatus[];
  ai_models?: AIModels;
  inference?: Latencies;
  databases?: Databases;
  /** Container counts by health over the slot (means). */
  containers?: { total?: number; unhealthy?: number };
  max?: Record<string, number>;
}

export interface History {
  type?: "performance_history";
  range: string;
  resolution_s: number;
  points: Point[] | null;
}

export type Connection = "connected" | "reconnecting" | "offline";

/** Section keys of Update.sources / stale / errors (pkg/metrics). */
export const Section = {
  GPU: "gpu",
  Host: "host",
  RTDETR: "ai_models.rtdetr",
  Nemotron: "ai_models.nemotron",
  Inference: "inference",
  PostgreSQL: "databases.postgresql",
  Redis: "databases.redis",
  Containers: "containers",
} as const;
