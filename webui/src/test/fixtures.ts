// Fixtures built from a hand-written update that follows pkg/metrics'
// Update JSON (update.go) field for field; variants change only what a test
// is about.
import type { Alert, FleetUpdate, GPUView, History, ModelView, Point, Update } from "../types";
import fleetGen from "./fixtures/fleet.gen.json";
import base from "./fixtures/update.json";

export const T0 = Date.parse("2026-12-01T12:00:00Z");

export function update(): Update {
  return structuredClone(base) as Update;
}

/** A model server's view as the hub sends it: every seed field, null or "" where unknown. */
export function modelView(over: Partial<ModelView> = {}): ModelView {
  return { vram_gb: null, model: "", device: "", slots_active: null, slots_total: null, context_size: null, ...over };
}

/** The GPU host without NVML: the agent says why, the hub passes it on. */
export function noGpu(): Update {
  const u = update();
  const err = "NVML unavailable: ERROR_LIBRARY_NOT_FOUND";
  u.gpu = { name: null, utilization: null, vram_used_gb: null, vram_total_gb: null, temperature: null, power_watts: null };
  u.gpus = [];
  u.sources = { ...u.sources, gpu: "none" };
  u.errors = { gpu: err };
  u.hosts![0]!.gpu_count = 0;
  u.hosts![0]!.errors = { gpu: err };
  return u;
}

function gpu(host: string, index: number, util: number): GPUView {
  return {
    host,
    index,
    uuid: `GPU-${host}-${index}`,
    name: "NVIDIA H100 80GB HBM3",
    utilization: util,
    vram_used_gb: 40 + index * 5,
    vram_total_gb: 80,
    temperature: 50 + index * 3,
    power_watts: 250 + index * 20,
    power_limit_watts: 700,
    processes: [{ pid: 1000 + index, name: "python3", vram_gb: 30 + index, sm_percent: 40, model: `model-${index % 2}` }],
  };
}

/** 8 GPUs on 2 hosts, the size the render budget is measured at. */
export function manyGpus(hosts = 2, perHost = 4): Update {
  const u = update();
  const names = Array.from({ length: hosts }, (_, i) => `gpu-box-${i + 1}`);
  u.gpus = names.flatMap((h, hi) => Array.from({ length: perHost }, (_, i) => gpu(h, i, 20 + hi * 30 + i * 5)));
  u.gpu = u.gpus[0]!;
  u.hosts = names.map((h, i) => ({
    ...structuredClone(base.hosts[0]!),
    host: h,
    gpu_count: perHost,
    system: { ...structuredClone(base.hosts[0]!.system), cpu_percent: 10 + i * 40 },
  }));
  return u;
}

/** The only host went quiet two minutes ago; the hub marks its sections stale. */
export function staleHost(): Update {
  const u = update();
  const seen = new Date(T0 - 120_000).toISOString();
  u.hosts![0]!.online = false;
  u.hosts![0]!.last_seen = seen;
  u.gpus![0]!.stale = true;
  u.ai_models.rtdetr.stale = true;
  u.stale = { ...u.stale, gpu: true, host: true, "ai_models.rtdetr": true, "ai_models.nemotron": true, inference: true };
  return u;
}

export const warning: Alert = {
  severity: "warning",
  metric: "gpu_temperature",
  value: 82,
  threshold: 75,
  message: "GPU temperature high: 82°C",
  host: "gpu-box-1",
  target: "GPU 0",
  state: "firing",
  since: new Date(T0 - 180_000).toISOString(),
  rule: "gpu_temperature",
};

export const critical: Alert = {
  severity: "critical",
  metric: "redis_hit_ratio",
  value: 0.01,
  threshold: 10,
  message: "Redis keyspace hit ratio critical: 0.01%",
  target: "redis",
  state: "firing",
  since: new Date(T0 - 60_000).toISOString(),
  rule: "redis_hit_ratio",
};

export function withAlerts(): Update {
  const u = update();
  u.alerts = [warning, critical];
  return u;
}

/** Nothing but the agent: no databases, no containers, no models, no latency. */
export function onlyAgent(): Update {
  const u = update();
  u.ai_models = { rtdetr: modelView({ status: "unconfigured" }), nemotron: modelView({ status: "unconfigured" }) };
  u.inference = {
    rtdetr_latency_ms: { avg: null, p95: null, p99: null },
    nemotron_latency_ms: { avg: null, p95: null, p99: null },
    pipeline_latency_ms: { avg: null, p95: null, p99: null },
    throughput: { images_per_min: null, events_per_min: null },
  };
  u.databases = {
    postgresql: { status: "unconfigured", connections_active: null, connections_max: null, cache_hit_ratio: null, transactions_per_min: null },
    redis: { status: "unconfigured", connected_clients: null, memory_mb: null, hit_ratio: null, blocked_clients: null },
  };
  u.containers = [];
  u.sources = { gpu: "agent:gpu-box-1", host: "agent:gpu-box-1", "ai_models.rtdetr": "none", "ai_models.nemotron": "none", inference: "none", "databases.postgresql": "none", "databases.redis": "none", containers: "none" };
  return u;
}

/** `n` history points of `resolutionS` ending at T0, CPU rising 1 % a slot. */
export function points(n: number, resolutionS: number, from: Update = update()): Point[] {
  return Array.from({ length: n }, (_, i) => {
    const ts = new Date(T0 - (n - 1 - i) * resolutionS * 1000).toISOString();
    const host = { ...from.host, cpu_percent: 10 + i };
    return {
      timestamp: ts,
      gpu: from.gpu,
      gpus: from.gpus ?? [],
      host,
      hosts: (from.hosts ?? []).map((h) => ({ ...h, system: { ...h.system, cpu_percent: 10 + i } })),
      ai_models: from.ai_models,
      inference: from.inference,
      databases: from.databases,
    };
  });
}

export function history(range: "5m" | "15m" | "60m", n = 60): History {
  const res = { "5m": 5, "15m": 15, "60m": 60 }[range];
  return { type: "performance_history", range, resolution_s: res, points: points(n, res) };
}

/**
 * The fleet view as the hub sends it: fleet.gen.json is written by
 * internal/server's TestGoldenFleet (`make generate`) from a real history
 * store: a 5m performance_history whose last three slots (15:40:00–10)
 * hold a two-host site's totals, and the fleet_update of the next slot.
 */
export function fleetGolden(): { history: History; update: FleetUpdate } {
  // Assigned, not cast: the generated types must accept the hub's output.
  const g: { history: History; update: FleetUpdate } = structuredClone(fleetGen);
  return g;
}
