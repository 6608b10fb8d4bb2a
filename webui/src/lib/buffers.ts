import { POINTS_PER_RANGE, RANGE_RESOLUTION_S, RANGES, type FleetFigures, type FleetUpdate, type History, type Point, type Range, type Update } from "../types";

export interface Buffer {
  resolutionS: number;
  points: Point[];
}

export type Buffers = Record<Range, Buffer>;

export function emptyBuffers(): Buffers {
  const out = {} as Buffers;
  for (const r of RANGES) out[r] = { resolutionS: RANGE_RESOLUTION_S[r], points: [] };
  return out;
}

export function isRange(v: unknown): v is Range {
  return typeof v === "string" && (RANGES as readonly string[]).includes(v);
}

/** A live update read as a history point, so charts treat both alike. */
export function toPoint(u: Update): Point {
  const p: Point = { timestamp: u.timestamp };
  if (u.gpu) p.gpu = u.gpu;
  if (u.gpus) p.gpus = u.gpus;
  if (u.host) p.host = u.host;
  if (u.hosts) p.hosts = u.hosts;
  if (u.ai_models) p.ai_models = u.ai_models;
  if (u.inference) p.inference = u.inference;
  if (u.databases) p.databases = u.databases;
  return p;
}

/** The totals a GPU may leave out (absent, never 0, when no GPU reports them). */
const SUMMED = ["util_mean", "util_max", "vram_used_gb", "vram_total_gb", "power_watts", "power_limit_watts"] as const;

/**
 * A fleet_update read as a fleet history point (the fleet view's history
 * keeps the same figures, as slot means, in Point.fleet): util_max, the
 * busiest GPU's utilization, is the totals' own (one decimal, as the
 * history's), not the rows' whole-number `ux`.
 */
export function fleetPoint(f: FleetUpdate): Point {
  const t = f.totals;
  const fleet: FleetFigures = { hosts: t.hosts, online: t.online, gpus: t.gpus, alerts_critical: t.alerts_critical, alerts_warning: t.alerts_warning };
  for (const k of SUMMED) {
    const v = t[k];
    if (v !== undefined) fleet[k] = v;
  }
  return { timestamp: f.timestamp, fleet };
}

/** The buffer a performance_history message describes, trimmed to 60 points. */
export function fromHistory(h: History, fallbackRes: number): Buffer {
  const res = h.resolution_s > 0 ? h.resolution_s : fallbackRes;
  const points = (h.points ?? []).filter((p) => Number.isFinite(Date.parse(p.timestamp)));
  return { resolutionS: res, points: points.slice(-POINTS_PER_RANGE) };
}

/**
 * Places a live point into a range's buffer. Points are aligned to the
 * range's slots: a point in the newest slot replaces it (the slot shows its
 * latest reading until it closes), a point in a later slot is appended, an
 * older one is ignored (history already holds it). Points that fell out of
 * the window's span or past 60 are dropped, so a long outage does not leave
 * a chart stretched over stale data.
 */
export function mergeLive(buf: Buffer, p: Point, cap: number = POINTS_PER_RANGE): Buffer {
  const ts = Date.parse(p.timestamp);
  if (!Number.isFinite(ts)) return buf;
  const resMs = buf.resolutionS * 1000;
  const slot = Math.floor(ts / resMs);
  const aligned: Point = { ...p, timestamp: new Date(slot * resMs).toISOString() };
  const points = buf.points.slice();
  const last = points[points.length - 1];
  if (last) {
    const lastSlot = Math.floor(Date.parse(last.timestamp) / resMs);
    if (slot < lastSlot) return buf;
    if (slot === lastSlot) points[points.length - 1] = aligned;
    else points.push(aligned);
  } else {
    points.push(aligned);
  }
  const oldest = (slot - cap + 1) * resMs;
  let start = Math.max(0, points.length - cap);
  while (start < points.length && Date.parse(points[start]!.timestamp) < oldest) start++;
  return { resolutionS: buf.resolutionS, points: start > 0 ? points.slice(start) : points };
}
