// What the GPU section derives from the update: who holds each GPU, the
// per-host "by model" view and the VRAM headroom. Pure functions over the
// hub's JSON, so the cards and the tests read the same figures.
import type { GPUView, HostStatus, ModelView, Point, ProcessView, Update } from "../types";
import { isNum } from "./format";
import { gpuKey, pointGpus } from "./series";

/** Processes by VRAM held, largest first; a process with no figure last. */
export function byVram(procs: readonly ProcessView[] | undefined): ProcessView[] {
  return [...(procs ?? [])].sort((a, b) => (isNum(b.vram_gb) ? b.vram_gb : -1) - (isNum(a.vram_gb) ? a.vram_gb : -1) || a.pid - b.pid);
}

/** A process's model, or null when the agent could not attribute it. */
export const modelOf = (p: ProcessView): string | null => (p.model && p.model.trim() ? p.model : null);

export interface VramSplit {
  /** Held by processes the agent attributed to a model, by model, largest first. */
  models: { model: string; gb: number }[];
  modelGb: number;
  /** Used but not held by a model's process: other processes and the driver. */
  otherGb: number;
  freeGb: number | null;
  totalGb: number | null;
  usedGb: number | null;
}

/** The VRAM of one GPU split into model-held, other and free. */
export function vramSplit(g: GPUView): VramSplit {
  const by = new Map<string, number>();
  for (const p of g.processes ?? []) {
    const m = modelOf(p);
    if (m && isNum(p.vram_gb)) by.set(m, (by.get(m) ?? 0) + p.vram_gb);
  }
  const models = [...by.entries()].map(([model, gb]) => ({ model, gb })).sort((a, b) => b.gb - a.gb || a.model.localeCompare(b.model));
  const modelGb = models.reduce((s, m) => s + m.gb, 0);
  const used = isNum(g.vram_used_gb) ? g.vram_used_gb : null;
  const total = isNum(g.vram_total_gb) && g.vram_total_gb > 0 ? g.vram_total_gb : null;
  // NVML's used figure includes what processes hold; a process list read a
  // moment later can exceed it by a little, never make "other" negative.
  const otherGb = used === null ? 0 : Math.max(0, used - modelGb);
  return { models, modelGb, otherGb, freeGb: total !== null && used !== null ? Math.max(0, total - used) : null, totalGb: total, usedGb: used };
}

/** GPUs grouped by host, in the order the hub lists them. */
export function gpusByHost(gpus: readonly GPUView[]): { host: string; gpus: GPUView[] }[] {
  const out = new Map<string, GPUView[]>();
  for (const g of gpus) {
    const h = g.host ?? "";
    const list = out.get(h);
    if (list) list.push(g);
    else out.set(h, [g]);
  }
  return [...out.entries()].map(([host, list]) => ({ host, gpus: list }));
}

export interface ModelOnGpu {
  /** The GPU's key (host#index) and index. */
  key: string;
  index: number;
  vramGb: number;
  /** Sum of the model's processes' SM share of this GPU, or null when NVML gave none. */
  smPercent: number | null;
  /** SM share × the board's power draw: an estimate, not a measurement. */
  powerW: number | null;
}

export interface ModelRow {
  /** The model's name, or null for processes no model claims. */
  model: string | null;
  gpus: ModelOnGpu[];
  vramGb: number;
  processes: number;
  /** Mean SM share over the model's GPUs. */
  smPercent: number | null;
  powerW: number | null;
  /** The VRAM the model server itself reports (e.g. RT-DETRv2's /health), kept apart from the processes' figure. */
  serverVramGb: number | null;
  /** Which server reported serverVramGb ("rtdetr"). */
  server: string | null;
}

export interface HostModels {
  host: string;
  rows: ModelRow[];
  /** VRAM of every listed process on the host: what the rows add up to. */
  processVramGb: number;
  /** VRAM NVML counts as used on the host's GPUs. */
  usedGb: number | null;
}

/** The model server entry that describes a model, matched by role key or by the model it serves. */
function serverOf(u: Update, host: string, model: string): { key: string; view: ModelView } | null {
  const hs: HostStatus | undefined = (u.hosts ?? []).find((h) => h.host === host);
  const candidates: [string, ModelView][] = Object.entries(hs?.models ?? {});
  if (!candidates.length) {
    // An older hub without per-host models: the top-level entries, when they say they are on this host.
    for (const [k, v] of Object.entries(u.ai_models ?? {}) as [string, ModelView][]) if (v && v.host === host) candidates.push([k, v]);
  }
  for (const [k, v] of candidates) if (k === model || (v.model && v.model === model)) return { key: k, view: v };
  return null;
}

/**
 * Per host, for each model: its GPUs, the VRAM its processes hold, its SM
 * share and an estimated power share. Never summed across hosts: a model
 * served on two hosts is two rows, one in each host's view.
 */
export function modelsByHost(u: Update, gpus: readonly GPUView[]): HostModels[] {
  return gpusByHost(gpus).map(({ host, gpus: list }) => {
    const rows = new Map<string, ModelRow>();
    let processVramGb = 0;
    let used: number | null = null;
    for (const g of list) {
      if (isNum(g.vram_used_gb)) used = (used ?? 0) + g.vram_used_gb;
      const perModel = new Map<string, { vram: number; sm: number | null; n: number }>();
      for (const p of g.processes ?? []) {
        const name = modelOf(p) ?? "";
        const e = perModel.get(name) ?? { vram: 0, sm: null, n: 0 };
        if (isNum(p.vram_gb)) {
          e.vram += p.vram_gb;
          processVramGb += p.vram_gb;
        }
        if (isNum(p.sm_percent)) e.sm = (e.sm ?? 0) + p.sm_percent;
        e.n++;
        perModel.set(name, e);
      }
      for (const [name, e] of perModel) {
        let row = rows.get(name);
        if (!row) {
          const srv = name ? serverOf(u, host, name) : null;
          row = {
            model: name || null,
            gpus: [],
            vramGb: 0,
            processes: 0,
            smPercent: null,
            powerW: null,
            serverVramGb: srv && isNum(srv.view.vram_gb) ? srv.view.vram_gb : null,
            server: srv ? srv.key : null,
          };
          rows.set(name, row);
        }
        const sm = e.sm === null ? null : Math.min(100, e.sm);
        const powerW = sm !== null && isNum(g.power_watts) ? (sm / 100) * g.power_watts : null;
        row.gpus.push({ key: gpuKey(g), index: g.index ?? 0, vramGb: e.vram, smPercent: sm, powerW });
        row.vramGb += e.vram;
        row.processes += e.n;
      }
    }
    for (const row of rows.values()) {
      const sms = row.gpus.map((x) => x.smPercent).filter(isNum);
      row.smPercent = sms.length ? sms.reduce((a, b) => a + b, 0) / row.gpus.length : null;
      const ws = row.gpus.map((x) => x.powerW).filter(isNum);
      row.powerW = ws.length ? ws.reduce((a, b) => a + b, 0) : null;
    }
    // Models by VRAM, largest first; unattributed processes last.
    const sorted = [...rows.values()].sort((a, b) => (a.model === null ? 1 : 0) - (b.model === null ? 1 : 0) || b.vramGb - a.vramGb);
    return { host, rows: sorted, processVramGb, usedGb: used };
  });
}

/** The slot's highest VRAM use of a GPU: the history's max when it has one, else the slot's mean (a live point). */
function peakUsed(p: Point, g: GPUView): number | null {
  const mx = p.max?.[`gpus.${g.host ?? ""}.${g.index ?? 0}.vram_used_gb`];
  if (isNum(mx)) return mx;
  return isNum(g.vram_used_gb) ? g.vram_used_gb : null;
}

/**
 * Each GPU's highest VRAM use over the window (by gpuKey), in one pass: the
 * cards take it from a value memoised per window, so a live update does not
 * walk the history once per card.
 */
export function vramPeaks(history: readonly Point[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of history) {
    for (const g of pointGpus(p)) {
      const v = peakUsed(p, g);
      if (v === null) continue;
      const k = gpuKey(g);
      const cur = out.get(k);
      if (cur === undefined || v > cur) out.set(k, v);
    }
  }
  return out;
}

/** Lowest free VRAM of a GPU: its total less the higher of the window's peak and its use now. */
export function lowFree(g: GPUView, peak: number | null | undefined): number | null {
  if (!isNum(g.vram_total_gb) || g.vram_total_gb <= 0) return null;
  const used = [peak, g.vram_used_gb].filter(isNum);
  return used.length ? Math.max(0, g.vram_total_gb - Math.max(...used)) : null;
}

export interface Headroom {
  freeGb: number | null;
  totalGb: number | null;
  /** Lowest free VRAM over the window, from each slot's peak use. */
  lowGb: number | null;
  /** Change of VRAM use from the window's first slot with data to now (GB; positive = less headroom). */
  trendGb: number | null;
}

/** Headroom of one GPU over the window's points. */
export function gpuHeadroom(g: GPUView, history: readonly Point[]): Headroom {
  const total = isNum(g.vram_total_gb) && g.vram_total_gb > 0 ? g.vram_total_gb : null;
  const free = total !== null && isNum(g.vram_used_gb) ? Math.max(0, total - g.vram_used_gb) : null;
  const key = gpuKey(g);
  let first: number | null = null;
  for (const p of history) {
    const pg = pointGpus(p).find((x) => gpuKey(x) === key);
    if (pg && isNum(pg.vram_used_gb)) {
      first = pg.vram_used_gb;
      break;
    }
  }
  return {
    freeGb: free,
    totalGb: total,
    lowGb: lowFree(g, vramPeaks(history).get(key)),
    trendGb: total !== null && first !== null && isNum(g.vram_used_gb) ? g.vram_used_gb - first : null,
  };
}

export interface HostHeadroom extends Headroom {
  host: string;
  gpus: number;
  /** The most free VRAM on any one GPU now: the largest model that would fit without splitting. */
  largestFitGb: number | null;
  /** Which GPU that is. */
  largestFitIndex: number | null;
}

/**
 * A host's headroom: free VRAM over its GPUs now, its low point over the
 * window (the lowest sum over slots where every GPU reported), and the
 * largest free VRAM on one GPU.
 */
export function hostHeadroom(host: string, gpus: readonly GPUView[], history: readonly Point[]): HostHeadroom {
  let free: number | null = null;
  let total: number | null = null;
  let fit: number | null = null;
  let fitIndex: number | null = null;
  for (const g of gpus) {
    const h = gpuHeadroom(g, []);
    if (h.totalGb !== null) total = (total ?? 0) + h.totalGb;
    if (h.freeGb !== null) {
      free = (free ?? 0) + h.freeGb;
      if (fit === null || h.freeGb > fit) {
        fit = h.freeGb;
        fitIndex = g.index ?? 0;
      }
    }
  }
  const keys = new Map(gpus.map((g) => [gpuKey(g), g]));
  let low: number | null = free;
  let first: number | null = null;
  for (const p of history) {
    let sum = 0;
    let used = 0;
    let seen = 0;
    for (const pg of pointGpus(p)) {
      const cur = keys.get(gpuKey(pg));
      if (!cur || !isNum(cur.vram_total_gb)) continue;
      const v = peakUsed(p, pg);
      if (v === null || !isNum(pg.vram_used_gb)) continue;
      sum += Math.max(0, cur.vram_total_gb - v);
      used += pg.vram_used_gb;
      seen++;
    }
    if (seen !== keys.size || seen === 0) continue;
    low = low === null ? sum : Math.min(low, sum);
    if (first === null) first = used;
  }
  const usedNow = gpus.every((g) => isNum(g.vram_used_gb)) && gpus.length ? gpus.reduce((s, g) => s + (g.vram_used_gb as number), 0) : null;
  return {
    host,
    gpus: gpus.length,
    freeGb: free,
    totalGb: total,
    lowGb: low,
    trendGb: first !== null && usedNow !== null ? usedNow - first : null,
    largestFitGb: fit,
    largestFitIndex: fitIndex,
  };
}

/** Throttle reasons that say something is wrong: every one but idle. */
export function activeThrottle(reasons: readonly string[] | undefined): string[] {
  return (reasons ?? []).filter((r) => r !== "gpu_idle" && r !== "none");
}

const THROTTLE_NAMES: Record<string, string> = {
  gpu_idle: "idle",
  applications_clocks_setting: "application clocks",
  sw_power_cap: "software power cap",
  hw_slowdown: "hardware slowdown",
  sync_boost: "sync boost",
  sw_thermal_slowdown: "software thermal slowdown",
  hw_thermal_slowdown: "hardware thermal slowdown",
  hw_power_brake: "hardware power brake",
  display_clocks_setting: "display clock setting",
  board_limit: "board limit",
  reliability: "reliability",
};

export const throttleName = (r: string): string => THROTTLE_NAMES[r] ?? r.replace(/_/g, " ");
