import { Metric, ProgressBar } from "@tremor/react";
import { memo } from "react";
import { fmt, fmtGB, isNum } from "../../lib/format";
import { activeThrottle, byVram, lowFree, modelOf, throttleName, vramSplit } from "../../lib/gpus";
import { gpuLabel } from "../../lib/series";
import { levelColor, levelOf, percentOf, powerLevel, useThresholds, type Level } from "../../lib/thresholds";
import type { GPUView, ProcessView } from "../../types";
import { Meter, StaleBadge } from "./common";
import { GpuHealth } from "./GpuHealth";

/** Processes listed on a card before the rest fold under "+N more". */
export const PROCESS_ROWS = 3;

const TONE: Record<Level, string> = {
  ok: "",
  warning: "!text-amber-600 dark:!text-amber-400",
  critical: "!text-red-600 dark:!text-red-400",
};

const muted = "text-tremor-content dark:text-dark-tremor-content";
const strong = "text-tremor-content-strong dark:text-dark-tremor-content-strong";

/**
 * The card's VRAM as one bar in three parts: what the models' processes
 * hold (one segment per model, in its colour), what other processes and
 * the driver hold, and what is free.
 */
export function VramBar({ g, modelColors, level }: { g: GPUView; modelColors: Map<string, string>; level: Level }) {
  const s = vramSplit(g);
  const total = s.totalGb;
  const pct = (gb: number) => (total ? Math.max(0, Math.min(100, (gb / total) * 100)) : 0);
  const used = `${fmtGB(g.vram_used_gb)} / ${fmtGB(g.vram_total_gb)} GB`;
  return (
    <div data-testid="gpu-vram" data-level={level}>
      <div className="flex flex-wrap items-baseline justify-between gap-x-2">
        <span className={`text-xs ${muted}`}>VRAM</span>
        <span className={`text-sm font-semibold tabular-nums ${strong}`}>
          <span data-role="value" className={TONE[level].replace(/!/g, "")}>
            {used}
          </span>
          {level !== "ok" ? <span className="sr-only"> ({level})</span> : null}
        </span>
      </div>
      {total === null || s.usedGb === null ? (
        <div className="mt-1.5 h-2 rounded-full bg-tremor-background-subtle dark:bg-dark-tremor-background-subtle" aria-label="VRAM: no data" />
      ) : (
        <div
          className={`mt-1.5 flex h-2 w-full overflow-hidden rounded-full bg-tremor-background-subtle dark:bg-dark-tremor-background-subtle ${level === "ok" ? "" : level === "critical" ? "ring-1 ring-red-500" : "ring-1 ring-amber-500"}`}
          role="img"
          aria-label={`VRAM: ${s.models.map((m) => `${m.model} ${fmtGB(m.gb)} GB`).join(", ") || "no model"}; other ${fmtGB(s.otherGb)} GB; free ${fmtGB(s.freeGb)} GB`}
        >
          {s.models.map((m) => (
            <span key={m.model} data-segment="model" title={`${m.model}: ${fmtGB(m.gb)} GB`} className={`h-full bg-${modelColors.get(m.model) ?? "blue-600"}`} style={{ width: `${pct(m.gb)}%` }} />
          ))}
          {s.otherGb > 0 ? (
            <span data-segment="other" title={`other processes and driver: ${fmtGB(s.otherGb)} GB`} className="h-full bg-gray-400 dark:bg-gray-500" style={{ width: `${pct(s.otherGb)}%` }} />
          ) : null}
        </div>
      )}
      {total !== null && s.usedGb !== null ? (
        <p data-testid="gpu-vram-split" className={`mt-1 flex flex-wrap gap-x-2 text-[11px] leading-4 ${muted}`}>
          {s.models.map((m) => (
            <span key={m.model} className="inline-flex min-w-0 items-center gap-1">
              <span aria-hidden="true" className={`inline-block h-2 w-2 shrink-0 rounded-sm bg-${modelColors.get(m.model) ?? "blue-600"}`} />
              <span className="truncate" title={m.model}>
                {m.model}
              </span>{" "}
              <span className="tabular-nums">{fmtGB(m.gb)}</span>
            </span>
          ))}
          <span className="inline-flex items-center gap-1" title="Used VRAM no model's process holds: other processes and the driver">
            <span aria-hidden="true" className="inline-block h-2 w-2 rounded-sm bg-gray-400 dark:bg-gray-500" />
            other <span className="tabular-nums">{fmtGB(s.otherGb)}</span>
          </span>
          <span className="inline-flex items-center gap-1">
            <span aria-hidden="true" className="inline-block h-2 w-2 rounded-sm border border-tremor-border dark:border-dark-tremor-border" />
            free <span className="tabular-nums">{fmtGB(s.freeGb)}</span> GB
          </span>
        </p>
      ) : null}
    </div>
  );
}

function ProcessRow({ p }: { p: ProcessView }) {
  const model = modelOf(p);
  const who = [p.name || `pid ${p.pid}`, p.container ? `in ${p.container}` : null].filter(Boolean).join(" ");
  return (
    <li
      data-testid="gpu-proc"
      data-pid={p.pid}
      data-model={model ?? ""}
      // On a phone's half-width card the figures go under the name, which would otherwise shrink to nothing.
      className="grid grid-cols-1 gap-x-2 text-[11px] leading-4 sm:grid-cols-[minmax(0,1fr)_auto]"
      title={`${model ? `${model} · ` : ""}${p.name ?? ""} pid ${p.pid}${p.container ? ` · container ${p.container}` : ""}${p.command ? `\n${p.command}` : ""}`}
    >
      <span className="min-w-0 truncate">
        <span className={`font-medium ${strong}`}>{model ?? "no model"}</span>
        <span className={muted}>
          {" "}
          · {who} · pid {p.pid}
        </span>
      </span>
      <span className={`tabular-nums ${strong}`}>
        {fmtGB(p.vram_gb)} GB<span className={muted}> · SM {fmt(p.sm_percent, 0, "%")}</span>
      </span>
    </li>
  );
}

/** The GPU's processes, largest VRAM first: a few rows, the rest behind "+N more". */
export function ProcessList({ processes }: { processes: ProcessView[] | undefined }) {
  if (!processes) return null;
  const list = byVram(processes);
  if (!list.length) {
    return (
      <p data-testid="gpu-procs" className={`mt-2 text-[11px] ${muted}`}>
        No compute processes
      </p>
    );
  }
  const head = list.slice(0, PROCESS_ROWS);
  const rest = list.slice(PROCESS_ROWS);
  return (
    <div data-testid="gpu-procs" className="mt-2 border-t border-tremor-border pt-1.5 dark:border-dark-tremor-border">
      <ul className="space-y-0.5">
        {head.map((p) => (
          <ProcessRow key={p.pid} p={p} />
        ))}
      </ul>
      {rest.length ? (
        <details className="mt-0.5">
          <summary className={`cursor-pointer text-[11px] ${muted}`}>+{rest.length} more</summary>
          <ul className="space-y-0.5">
            {rest.map((p) => (
              <ProcessRow key={p.pid} p={p} />
            ))}
          </ul>
        </details>
      ) : null}
    </div>
  );
}

/** Clocks, P-state and fan, and any throttle reason other than idle, named and highlighted. */
export function GpuClocks({ g }: { g: GPUView }) {
  const parts = [
    isNum(g.sm_clock_mhz) ? `SM ${fmt(g.sm_clock_mhz, 0)} MHz` : null,
    isNum(g.mem_clock_mhz) ? `mem ${fmt(g.mem_clock_mhz, 0)} MHz` : null,
    isNum(g.pstate) ? `P${g.pstate}` : null,
    isNum(g.fan_percent) ? `fan ${fmt(g.fan_percent, 0, "%")}` : null,
  ].filter(Boolean);
  const bad = activeThrottle(g.throttle_reasons);
  const idle = (g.throttle_reasons ?? []).includes("gpu_idle");
  if (!parts.length && !bad.length && !idle) return null;
  return (
    <div className="mt-2 flex flex-wrap items-center gap-x-2 gap-y-1 text-[11px] leading-4">
      {parts.length ? (
        <span data-testid="gpu-clocks" className={`tabular-nums ${muted}`}>
          {parts.join(" · ")}
        </span>
      ) : null}
      {bad.length ? (
        <span
          data-testid="gpu-throttle"
          data-throttled="true"
          className="rounded bg-amber-100 px-1.5 font-medium text-amber-800 dark:bg-amber-900/50 dark:text-amber-200"
          title={`Clocks held down: ${bad.join(", ")}`}
        >
          throttled: {bad.map(throttleName).join(", ")}
        </span>
      ) : idle ? (
        <span data-testid="gpu-throttle" data-throttled="false" className={muted}>
          idle clocks
        </span>
      ) : null}
    </div>
  );
}

function Headroom({ g, peakGb, rangeLabel }: { g: GPUView; peakGb: number | null; rangeLabel: string | undefined }) {
  const h = vramSplit(g);
  if (h.freeGb === null) return null;
  const low = lowFree(g, peakGb);
  return (
    <p data-testid="gpu-headroom" className={`mt-1 text-[11px] leading-4 ${muted}`}>
      headroom <b className={`tabular-nums ${strong}`}>{fmtGB(h.freeGb)} GB</b> free
      {low !== null ? (
        <span title="The least free VRAM over the selected range, from each slot's peak use">
          {" "}
          · low <span className="tabular-nums">{fmtGB(low)} GB</span>
          {rangeLabel ? ` over ${rangeLabel}` : ""}
        </span>
      ) : null}
    </p>
  );
}

export interface GpuCardProps {
  g: GPUView;
  multiHost: boolean;
  now: number;
  lastSeen: string | null;
  wide: boolean;
  /** The GPU's highest VRAM use over the selected range (vramPeaks), or null. */
  peakGb: number | null;
  rangeLabel?: string | undefined;
  modelColors: Map<string, string>;
}

/** One GPU: who holds it, how busy and hot it is, its power against its limit and its headroom. Memoised: the deferred chart render passes the same props again. */
export const GpuCard = memo(function GpuCard({ g, multiHost, now, lastSeen, wide, peakGb, rangeLabel, modelColors }: GpuCardProps) {
  const th = useThresholds();
  const vramPct = percentOf(g.vram_used_gb, g.vram_total_gb);
  const limit = isNum(g.power_limit_watts) && g.power_limit_watts > 0 ? g.power_limit_watts : null;
  const power = powerLevel(g.power_watts, limit, th);
  const label = gpuLabel(g, multiHost);
  const utilLevel = levelOf(g.utilization, th.gpuUtilization);
  const holders = vramSplit(g).models;
  return (
    <article
      aria-label={`${label}: ${g.name ?? "unknown GPU"}`}
      data-testid="gpu-card"
      data-gpu={`${g.host ?? ""}#${g.index ?? 0}`}
      className="min-w-0 rounded-tremor-default border border-tremor-border p-2.5 sm:p-3 dark:border-dark-tremor-border"
    >
      <div className="flex flex-wrap items-start justify-between gap-2">
        <div className="min-w-0">
          <p className={`truncate text-sm font-semibold ${strong}`} title={g.uuid}>
            {g.name ?? "Unknown GPU"}
          </p>
          <p className={`text-xs ${muted}`}>
            {label}
            {!multiHost && g.host ? ` · ${g.host}` : ""}
          </p>
          {g.processes ? (
            <p data-testid="gpu-models" className="truncate text-xs" title={holders.map((m) => `${m.model} ${fmtGB(m.gb)} GB`).join(", ")}>
              {holders.length ? (
                <>
                  <span className={muted}>held by </span>
                  {holders.map((m, i) => (
                    <span key={m.model} className={`font-medium ${strong}`}>
                      {i ? ", " : ""}
                      {m.model}
                    </span>
                  ))}
                </>
              ) : (
                <span className={muted}>no model holds it</span>
              )}
            </p>
          ) : null}
        </div>
        {g.stale ? <StaleBadge lastSeen={lastSeen} now={now} /> : null}
      </div>
      <div className={wide ? "mt-3 grid grid-cols-1 gap-4 sm:grid-cols-[minmax(10rem,16rem)_1fr] sm:items-start sm:gap-8" : "mt-2"}>
        <div data-testid="gpu-util" data-level={utilLevel}>
          <div className="flex items-baseline gap-2">
            <Metric className={`${wide ? "" : "max-sm:!text-2xl"} ${TONE[utilLevel]}`}>{fmt(g.utilization, 0, "%")}</Metric>
            <span className={`text-xs ${muted}`}>
              <span className={wide ? "" : "max-sm:sr-only"}>utilization</span>
              {utilLevel !== "ok" ? ` (${utilLevel})` : ""}
            </span>
          </div>
          {isNum(g.utilization) ? <ProgressBar value={Math.min(100, g.utilization)} color={levelColor(utilLevel, "blue")} className="mt-2" showAnimation={false} /> : null}
          <GpuClocks g={g} />
        </div>
        <div className={wide ? "grid grid-cols-1 gap-3 sm:grid-cols-3" : "mt-3 grid grid-cols-1 gap-2.5"}>
          <div>
            <VramBar g={g} modelColors={modelColors} level={levelOf(vramPct, th.gpuVramPercent)} />
            <Headroom g={g} peakGb={peakGb} rangeLabel={rangeLabel} />
          </div>
          <Meter
            testId="gpu-temp"
            label="Temperature"
            value={fmt(g.temperature, 0, "°C")}
            percent={isNum(g.temperature) ? g.temperature : null}
            level={levelOf(g.temperature, th.gpuTemperature)}
            okColor="cyan"
          />
          <Meter
            testId="gpu-power"
            label="Power"
            value={fmt(g.power_watts, 0, "W")}
            detail={limit ? `/ ${fmt(limit, 0)} W${power.percent !== null ? ` (${fmt(power.percent, 0, "%")})` : ""}` : "no limit known"}
            percent={power.percent}
            level={power.level}
            okColor="fuchsia"
          />
        </div>
      </div>
      <ProcessList processes={g.processes} />
      <GpuHealth g={g} />
    </article>
  );
});
