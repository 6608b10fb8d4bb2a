import type { GPUView, HostView, Point } from "../types";
import { axisTime, isNum } from "./format";

export type Row = Record<string, string | number | null>;

export function gpuKey(g: GPUView): string {
  return `${g.host ?? ""}#${g.index ?? 0}`;
}

/** Labels short enough for a legend: "GPU 0", or "gpu-box-2 · GPU 1" when several hosts. */
export function gpuLabel(g: GPUView, multiHost: boolean): string {
  const idx = `GPU ${g.index ?? 0}`;
  return multiHost && g.host ? `${g.host} · ${idx}` : idx;
}

export function pointGpus(p: Point): GPUView[] {
  if (p.gpus && p.gpus.length) return p.gpus;
  return p.gpu && p.gpu.name != null ? [p.gpu] : [];
}

const round = (v: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

/**
 * Rows for a chart with one category per series. `pick` returns a point's
 * values by category; a category without a value in a slot is null, which
 * the chart draws as a gap, never as zero.
 */
export function rows(points: Point[], resolutionS: number, categories: string[], pick: (p: Point) => Record<string, number | null | undefined>, digits = 2): Row[] {
  const withSeconds = resolutionS < 60;
  // 24h spans midnight with 24-minute slots; 7d spans a week: say the day.
  const withDay = resolutionS >= 1440;
  return points.map((p) => {
    const vals = pick(p);
    const r: Row = { time: axisTime(p.timestamp, withSeconds, withDay) };
    for (const c of categories) {
      const v = vals[c];
      r[c] = isNum(v) ? round(v, digits) : null;
    }
    return r;
  });
}

/** One category per GPU for one GPU field. */
export function gpuRows(points: Point[], resolutionS: number, gpus: GPUView[], multiHost: boolean, field: (g: GPUView) => number | null | undefined): { data: Row[]; categories: string[] } {
  const labels = new Map(gpus.map((g) => [gpuKey(g), gpuLabel(g, multiHost)]));
  const categories = [...labels.values()];
  const data = rows(points, resolutionS, categories, (p) => {
    const out: Record<string, number | null | undefined> = {};
    for (const g of pointGpus(p)) {
      const label = labels.get(gpuKey(g));
      if (label) out[label] = field(g);
    }
    return out;
  });
  return { data, categories };
}

/** One category per host for one host field (the seed's single host when only one). */
export function hostRows(points: Point[], resolutionS: number, hosts: string[], field: (h: HostView) => number | null | undefined): { data: Row[]; categories: string[] } {
  const single = hosts.length <= 1;
  const categories = single ? [hosts[0] ?? "host"] : hosts;
  const data = rows(points, resolutionS, categories, (p) => {
    const out: Record<string, number | null | undefined> = {};
    if (single) {
      const hv = p.hosts?.find((h) => h.host === hosts[0])?.system ?? p.host;
      if (hv) out[categories[0]!] = field(hv);
    } else {
      for (const h of p.hosts ?? []) out[h.host] = field(h.system);
    }
    return out;
  });
  return { data, categories };
}

/**
 * The top of a y axis that shows a capacity (RAM, VRAM, a power limit):
 * four equal steps of a round size (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10ⁿ)
 * that reach the total. Recharts divides a fixed domain into four steps
 * (tickCount 5), so 700 W gives 0/200/…/800 rather than 0/175/…/700, and
 * 24 GB 0/6/…/24.
 */
export function axisTop(total: number): number {
  if (!Number.isFinite(total) || total <= 0) return 1;
  const raw = total / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * mag).find((s) => s >= raw * (1 - 1e-9))!;
  return Number((4 * step).toPrecision(12));
}
