// Where bars and figures turn yellow/red. The hub's rules are the source of
// truth: the page fetches the effective rule set from GET /api/v1/rules (the
// defaults of pkg/alerts with the hub's --rules file applied) and colours at
// those thresholds. THRESHOLDS below are the built-in defaults, read from
// defaultRules.gen.json (pkg/alerts' default rule set, written by
// `make generate`), used for any rule the hub does not list and whenever the
// fetch fails.

import type { Color } from "@tremor/react";
import { createContext, useContext } from "react";
import defaultRules from "../defaultRules.gen.json";
import type { LevelView, RuleView } from "../types";

export type Level = "ok" | "warning" | "critical";

export interface Threshold {
  warning: number;
  critical: number;
  /** "above": higher is worse (CPU); "below": lower is worse (cache hit). */
  direction: "above" | "below";
  /** The threshold itself breaches (the rule's ">=" or "<="). */
  inclusive?: boolean;
}

interface RuleRef {
  name: string;
  metric: string;
  match?: string;
}

/**
 * The pkg/alerts rule behind each key: its default name, and its metric
 * (plus the model it matches) for a rule of another name that replaces a
 * disabled default.
 */
const RULES = {
  gpuUtilization: { name: "gpu_utilization", metric: "gpu_utilization" },
  gpuTemperature: { name: "gpu_temperature", metric: "gpu_temperature" },
  gpuVramPercent: { name: "gpu_vram", metric: "gpu_vram_percent" },
  gpuPowerPercent: { name: "gpu_power", metric: "gpu_power_percent" },
  gpuPowerWatts: { name: "gpu_power_watts", metric: "gpu_power_no_limit" },
  rtdetrP95Ms: { name: "rtdetr_latency_p95", metric: "model_latency_p95_ms", match: "rtdetr" },
  nemotronP95Ms: { name: "nemotron_latency_p95", metric: "model_latency_p95_ms", match: "nemotron" },
  pgConnectionsPercent: { name: "postgresql_connections", metric: "postgresql_connections_percent" },
  pgCacheHit: { name: "postgresql_cache_hit", metric: "postgresql_cache_hit_ratio" },
  redisMemoryMb: { name: "redis_memory", metric: "redis_memory_mb" },
  redisHitRatio: { name: "redis_hit_ratio", metric: "redis_hit_ratio" },
  hostCpu: { name: "host_cpu", metric: "host_cpu_percent" },
  hostRamPercent: { name: "host_ram", metric: "host_ram_percent" },
  hostDiskPercent: { name: "host_disk", metric: "host_disk_percent" },
  containersUnhealthy: { name: "containers_unhealthy", metric: "containers_unhealthy" },
} as const satisfies Record<string, RuleRef>;

export type ThresholdKey = keyof typeof RULES;

/** The thresholds in force; null where the hub's rules file disabled the rule (no colouring). */
export type Thresholds = Record<ThresholdKey, Threshold | null>;

/** One rule of GET /api/v1/rules (internal/server RuleView; generated). */
export type Rule = RuleView;
/** One level of a Rule; its for is a Go duration ("2m0s"). */
export type RuleLevel = LevelView;

const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const levelThreshold = (l: unknown): number | null =>
  l && typeof l === "object" && finite((l as { threshold?: unknown }).threshold) ? (l as { threshold: number }).threshold : null;

/** A rule's levels as a Threshold, or null when the rule cannot colour anything. */
export function thresholdOf(r: Rule): Threshold | null {
  const upward = r.comparison === ">" || r.comparison === ">=";
  if (!upward && r.comparison !== "<" && r.comparison !== "<=") return null;
  const w = levelThreshold(r.warning);
  const c = levelThreshold(r.critical);
  if (w === null && c === null) return null;
  // A rule with one level colours only that one: a missing critical is
  // never reached, a missing warning coincides with critical.
  const never = upward ? Infinity : -Infinity;
  const t: Threshold = { warning: w ?? (c as number), critical: c ?? never, direction: upward ? "above" : "below" };
  if (r.comparison === ">=" || r.comparison === "<=") t.inclusive = true;
  return t;
}

function isRule(v: unknown): v is Rule {
  if (!v || typeof v !== "object") return false;
  const r = v as Record<string, unknown>;
  return typeof r.name === "string" && typeof r.metric === "string" && typeof r.comparison === "string";
}

/** Each key's default rule's levels, from pkg/alerts' defaults; a default that lost its rule or levels is a build error of the page, so it throws. */
function defaultThresholds(): Record<ThresholdKey, Threshold> {
  const rules = defaultRules.rules.filter(isRule);
  const entries = (Object.keys(RULES) as ThresholdKey[]).map((key) => {
    const r = rules.find((d) => d.name === RULES[key].name && d.metric === RULES[key].metric);
    const t = r ? thresholdOf(r) : null;
    if (!t) throw new Error(`defaultRules.gen.json: no default rule ${RULES[key].name} with levels for ${key}`);
    return [key, t] as const;
  });
  return Object.fromEntries(entries) as Record<ThresholdKey, Threshold>;
}

/** pkg/alerts' default thresholds: the page's until the hub's rules arrive. */
export const THRESHOLDS = defaultThresholds();

export const DEFAULT_THRESHOLDS: Thresholds = THRESHOLDS;

/**
 * The thresholds the hub's rules give, key by key: the rule of the default
 * name, when it still watches the key's metric (an older hub's "gpu_power"
 * compared watts, and must not colour the percentage); else an enabled rule of another name on the same metric (and model)
 * that watches every host and target, which replaces a disabled default;
 * else nothing (null) when the default was disabled; else the built-in default.
 * A body that is not a rule list leaves every default in place.
 */
export function thresholdsFromRules(body: unknown): Thresholds {
  const out: Thresholds = { ...DEFAULT_THRESHOLDS };
  const list = body && typeof body === "object" ? (body as { rules?: unknown }).rules : undefined;
  if (!Array.isArray(list)) return out;
  const rules = list.filter(isRule);
  for (const key of Object.keys(RULES) as ThresholdKey[]) {
    const want: RuleRef = RULES[key];
    const named = rules.find((r) => r.name === want.name && r.metric === want.metric);
    if (named && !named.disabled) {
      const t = thresholdOf(named);
      if (t) out[key] = t;
      continue;
    }
    const other = rules.find(
      (r) => r.name !== want.name && !r.disabled && r.metric === want.metric && !r.host && (r.match ?? "") === (want.match ?? "") && thresholdOf(r),
    );
    if (other) out[key] = thresholdOf(other);
    else if (named?.disabled) out[key] = null;
  }
  return out;
}

/** The thresholds in force on the page; the defaults until the hub's rules arrive. */
export const ThresholdsContext = createContext<Thresholds>(DEFAULT_THRESHOLDS);

export function useThresholds(): Thresholds {
  return useContext(ThresholdsContext);
}

export function levelOf(value: number | null | undefined, t: Threshold | null | undefined): Level {
  if (!t || value === null || value === undefined || Number.isNaN(value)) return "ok";
  const worse = t.direction === "above" ? (a: number, b: number) => (t.inclusive ? a >= b : a > b) : (a: number, b: number) => (t.inclusive ? a <= b : a < b);
  if (worse(value, t.critical)) return "critical";
  if (worse(value, t.warning)) return "warning";
  return "ok";
}

/** The value a bar is drawn full at: the rule's critical level, else its warning, else fallback. */
export function scaleOf(t: Threshold | null, fallback: number): number {
  for (const v of [t?.critical, t?.warning]) if (v !== undefined && Number.isFinite(v) && v > 0) return v;
  return fallback;
}

/** Tremor colour for a level; `ok` takes the bar's own colour. */
export function levelColor(level: Level, ok: Color = "emerald"): Color {
  switch (level) {
    case "critical":
      return "red";
    case "warning":
      return "amber";
    default:
      return ok;
  }
}

export function percentOf(used: number | null | undefined, total: number | null | undefined): number | null {
  if (used == null || total == null || total <= 0) return null;
  return (used / total) * 100;
}

/**
 * A GPU's power level under the power rules: the share of its power limit
 * against gpu_power where the limit is known, else the watts against
 * gpu_power_watts. percent is the bar's fill (of the limit, or of the watts
 * rule's critical level).
 */
export function powerLevel(
  watts: number | null | undefined,
  limit: number | null | undefined,
  th: Pick<Thresholds, "gpuPowerPercent" | "gpuPowerWatts">,
): { level: Level; percent: number | null } {
  if (watts == null || !Number.isFinite(watts)) return { level: "ok", percent: null };
  if (limit != null && Number.isFinite(limit) && limit > 0) {
    const pct = (watts / limit) * 100;
    return { level: levelOf(pct, th.gpuPowerPercent), percent: pct };
  }
  const scale = scaleOf(th.gpuPowerWatts, THRESHOLDS.gpuPowerWatts.critical);
  return { level: levelOf(watts, th.gpuPowerWatts), percent: (watts / scale) * 100 };
}
