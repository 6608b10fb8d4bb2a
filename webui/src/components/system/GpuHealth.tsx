import { fmt, fmtGB, isNum, num, plural } from "../../lib/format";
import type { GPUView, XIDView } from "../../types";

// A GPU's health from the agent's NVML reading: what needs someone's
// attention first (findings, highlighted), then one muted line of the
// normal state, then the MIG instances (memory, the SM and tensor activity
// of their GPU instance, processes). Fields the device does not report
// are left out, never shown as zero.

export type FindingLevel = "critical" | "warning" | "info";

export interface Finding {
  level: FindingLevel;
  text: string;
}

// The XIDs after which the GPU needs a reset or is lost, and those that
// cost the application only: the same lists as the gpu_xid alert rule
// (pkg/alerts/extract.go, xidSeverity).
const XID_RESET = new Set([48, 62, 63, 64, 74, 79, 95, 119, 120, 140]);
const XID_APP = new Set([92, 94]);
const XID_TEXT: Record<number, string> = {
  13: "graphics engine exception",
  31: "memory page fault",
  43: "GPU stopped processing",
  45: "preemptive cleanup",
  48: "double-bit ECC error",
  62: "micro-controller halt",
  63: "row remapping recorded, reset to apply",
  64: "row remapping failed",
  74: "NVLink error",
  79: "fallen off the bus",
  92: "high single-bit ECC rate",
  94: "contained ECC error",
  95: "uncontained ECC error",
  119: "GSP timeout",
  120: "GSP error",
  140: "unrecovered ECC error",
};

function xidFinding(x: XIDView): Finding {
  const level: FindingLevel = XID_RESET.has(x.code) ? "critical" : XID_APP.has(x.code) ? "warning" : "info";
  const what = XID_TEXT[x.code];
  const times = x.count > 1 ? ` ×${x.count}` : "";
  const where = x.gpu_instance !== undefined ? ` (MIG GI ${x.gpu_instance}${x.compute_instance !== undefined ? `/CI ${x.compute_instance}` : ""})` : "";
  const action = level === "critical" ? " — reset the GPU" : "";
  return { level, text: `XID ${x.code}${times}${what ? `: ${what}` : ""}${where}${action}` };
}

function link(gen: number | undefined, width: number | undefined): string {
  return `${isNum(gen) ? `Gen${gen}` : "Gen?"} x${isNum(width) ? width : "?"}`;
}

const ORDER: Record<FindingLevel, number> = { critical: 0, warning: 1, info: 2 };

/** What needs attention on this GPU, worst first. */
export function findings(g: GPUView): Finding[] {
  const out: Finding[] = (g.xids ?? []).map(xidFinding);
  const e = g.ecc;
  if (e) {
    if (isNum(e.volatile_uncorrected) && e.volatile_uncorrected > 0) {
      out.push({ level: "critical", text: `${plural(e.volatile_uncorrected, "uncorrectable ECC error")} since the driver loaded` });
    }
    if (e.remap_failure) out.push({ level: "critical", text: "row remapping failed — replace the GPU" });
    else if (e.remap_pending) out.push({ level: "warning", text: "row remap pending — reset the GPU to apply it" });
    if (e.retired_pages_pending) out.push({ level: "warning", text: "page retirement pending — reset the GPU to apply it" });
  }
  const p = g.pcie;
  if (p?.degraded) out.push({ level: "warning", text: `PCIe link degraded: ${link(p.gen, p.width)} of ${link(p.max_gen, p.max_width)}` });
  const links = g.nvlinks ?? [];
  const down = links.filter((l) => l.up === false).length;
  if (down > 0) out.push({ level: "warning", text: `NVLink: ${down} of ${plural(links.length, "link")} down` });
  return out.sort((a, b) => ORDER[a.level] - ORDER[b.level]);
}

function mbps(v: number): string {
  return v >= 1000 ? `${num(v / 1000, 1)} GB/s` : `${num(v, 0)} MB/s`;
}

/** GPM activity of a GPU or of a MIG instance's GPU instance; "" when neither figure is known. */
export function activity(a: { sm_active_percent?: number; tensor_active_percent?: number }): string {
  const parts = [];
  if (isNum(a.sm_active_percent)) parts.push(`SM active ${fmt(a.sm_active_percent, 0, "%")}`);
  if (isNum(a.tensor_active_percent)) parts.push(`tensor ${fmt(a.tensor_active_percent, 0, "%")}`);
  return parts.join(", ");
}

/** The normal state in a few words each; nothing for what is unknown. */
export function facts(g: GPUView): string[] {
  const out: string[] = [];
  const gpm = activity(g);
  if (gpm) out.push(gpm);
  const p = g.pcie;
  if (p && (isNum(p.gen) || isNum(p.width))) {
    let s = `PCIe ${link(p.gen, p.width)}`;
    if (isNum(p.tx_mb_s) && isNum(p.rx_mb_s)) s += ` ↑${mbps(p.tx_mb_s)} ↓${mbps(p.rx_mb_s)}`;
    if (isNum(p.replay_count) && p.replay_count > 0) s += `, ${plural(p.replay_count, "replay")}`;
    out.push(s);
  }
  const links = g.nvlinks ?? [];
  if (links.length) {
    const up = links.filter((l) => l.up === true).length;
    const rates = links.flatMap((l) => [l.tx_mb_s, l.rx_mb_s]).filter(isNum);
    const total = rates.reduce((a, b) => a + b, 0);
    out.push(`NVLink ${up}/${links.length} up${rates.length ? ` ${mbps(total)}` : ""}`);
  }
  const e = g.ecc;
  if (e?.enabled === false) out.push("ECC off");
  else if (e) {
    const parts = ["ECC"];
    if (isNum(e.volatile_corrected)) parts.push(`${num(e.volatile_corrected)} corrected`);
    if (isNum(e.remapped_rows_correctable) || isNum(e.remapped_rows_uncorrectable)) {
      parts.push(`${num((e.remapped_rows_correctable ?? 0) + (e.remapped_rows_uncorrectable ?? 0))} rows remapped`);
    }
    if (isNum(e.retired_pages_sbe) || isNum(e.retired_pages_dbe)) {
      parts.push(`${num((e.retired_pages_sbe ?? 0) + (e.retired_pages_dbe ?? 0))} pages retired`);
    }
    out.push(parts.length > 1 ? parts.join(" ") : "ECC on");
  }
  if (g.mig_mode) out.push(`MIG on, ${plural(g.mig_instances?.length ?? 0, "instance")}`);
  if (g.persistence_mode === false) out.push("persistence off");
  if (g.driver_version) out.push(`driver ${g.driver_version}${g.cuda_version ? ` · CUDA ${g.cuda_version}` : ""}`);
  return out;
}

const LEVEL_CLASS: Record<FindingLevel, string> = {
  critical: "border-red-300 bg-red-50 text-red-700 dark:border-red-900 dark:bg-red-950/30 dark:text-red-300",
  warning: "border-amber-300 bg-amber-50 text-amber-800 dark:border-amber-900 dark:bg-amber-950/30 dark:text-amber-300",
  info: "border-tremor-border text-tremor-content dark:border-dark-tremor-border dark:text-dark-tremor-content",
};

/** The health block of a GPU card; nothing when the GPU reports no health field. */
export function GpuHealth({ g }: { g: GPUView }) {
  const found = findings(g);
  const known = facts(g);
  const migs = g.mig_instances ?? [];
  if (!found.length && !known.length && !migs.length) return null;
  return (
    <div data-testid="gpu-health" className="mt-2 space-y-1 text-xs" title={g.vbios_version ? `VBIOS ${g.vbios_version}` : undefined}>
      {found.length ? (
        <ul aria-label="GPU health findings" className="space-y-1">
          {found.map((f, i) => (
            <li key={i} data-level={f.level} className={`rounded border px-1.5 py-0.5 ${f.level === "info" ? "" : "font-medium "}${LEVEL_CLASS[f.level]}`}>
              {f.text}
            </li>
          ))}
        </ul>
      ) : null}
      {known.length ? <p className="text-tremor-content dark:text-dark-tremor-content">{known.join(" · ")}</p> : null}
      {migs.length ? (
        <ul aria-label="MIG instances" className="space-y-0.5 text-tremor-content dark:text-dark-tremor-content">
          {migs.map((m) => {
            const gpm = activity(m);
            return (
              <li key={`${m.gpu_instance}/${m.compute_instance}`} title={m.uuid}>
                GI {m.gpu_instance}/CI {m.compute_instance}: {fmtGB(m.vram_used_gb)} / {fmtGB(m.vram_total_gb)} GB
                {gpm ? ` · ${gpm}` : ""}
                {m.processes?.length
                  ? ` · ${m.processes.map((p) => [p.name ?? `pid ${p.pid}`, p.model ? `(${p.model})` : ""].filter(Boolean).join(" ")).join(", ")}`
                  : ""}
              </li>
            );
          })}
        </ul>
      ) : null}
    </div>
  );
}
