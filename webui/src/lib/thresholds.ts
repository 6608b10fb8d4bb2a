// The default alert thresholds of the seed design's table (and of
// pkg/alerts' default rule set), mirrored here so bars and figures turn
// yellow/red at the same values the hub alerts on. The hub's rules are the
// source of truth for alerts; these only colour the UI. If the defaults in
// pkg/alerts change, change them here too.

import type { Color } from "@tremor/react";

export type Level = "ok" | "warning" | "critical";

export interface Threshold {
  warning: number;
  critical: number;
  /** "above": higher is worse (CPU); "below": lower is worse (cache hit). */
  direction: "above" | "below";
}

const above = (warning: number, critical: number): Threshold => ({ warning, critical, direction: "above" });
const below = (warning: number, critical: number): Threshold => ({ warning, critical, direction: "below" });

export const THRESHOLDS = {
  gpuUtilization: above(90, 98), // % (sustained 2 / 5 min for the alert)
  gpuTemperature: above(75, 85), // °C
  gpuVramPercent: above(90, 95), // % of total
  gpuPowerWatts: above(300, 350), // W
  rtdetrP95Ms: above(200, 500), // ms
  nemotronP95Ms: above(10_000, 30_000), // ms
  pgConnectionsPercent: above(80, 95), // % of max_connections
  pgCacheHit: below(90, 80), // %
  redisMemoryMb: above(100, 500), // MB
  redisHitRatio: below(50, 10), // %
  hostCpu: above(80, 95), // % sustained
  hostRamPercent: above(85, 95), // %
  hostDiskPercent: above(80, 90), // %
  containersUnhealthy: above(0.5, 1.5), // 1 unhealthy warns, 2+ critical
} as const satisfies Record<string, Threshold>;

export function levelOf(value: number | null | undefined, t: Threshold): Level {
  if (value === null || value === undefined || Number.isNaN(value)) return "ok";
  if (t.direction === "above") {
    if (value > t.critical) return "critical";
    if (value > t.warning) return "warning";
    return "ok";
  }
  if (value < t.critical) return "critical";
  if (value < t.warning) return "warning";
  return "ok";
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
