import { Legend, Metric, ProgressBar } from "@tremor/react";
import { memo, useMemo } from "react";
import { fmt, fmtGB, isNum, meansNoGpu, readableGpuError } from "../../lib/format";
import { sectionMeta } from "../../lib/sections";
import { gpuLabel, gpuRows } from "../../lib/series";
import { levelColor, levelOf, percentOf, scaleOf, THRESHOLDS, useThresholds } from "../../lib/thresholds";
import { Section, type GPUView, type Point, type Range, type Update } from "../../types";
import { Absent, Chart, CHART_COLORS, Meter, num0, num1, pct0, SectionCard, StaleBadge } from "./common";
import { GpuHealth } from "./GpuHealth";

export interface PanelProps {
  update: Update;
  history: Point[];
  resolutionS: number;
  now: number;
  /** The selected chart range. */
  range?: Range;
}

export function currentGpus(u: Update): GPUView[] {
  if (u.gpus && u.gpus.length) return u.gpus;
  return u.gpu && u.gpu.name != null ? [u.gpu] : [];
}

/** The GPU error of the section, or of any host that reported one. */
function gpuErrors(u: Update): { host: string | null; error: string }[] {
  const out: { host: string | null; error: string }[] = [];
  for (const h of u.hosts ?? []) {
    const e = h.errors?.gpu;
    if (e) out.push({ host: h.host, error: e });
  }
  const top = u.errors?.[Section.GPU];
  if (top && !out.some((o) => o.error === top)) out.unshift({ host: null, error: top });
  return out;
}

export function noGpuText(error: string): string {
  const readable = readableGpuError(error);
  return meansNoGpu(error) ? `No NVIDIA GPU detected — ${readable}` : `GPU data unavailable — ${readable}`;
}

/** Memoised: the deferred chart render passes the same GPU objects again. */
const GpuCard = memo(function GpuCard({ g, multiHost, now, lastSeen, wide }: { g: GPUView; multiHost: boolean; now: number; lastSeen: string | null; wide: boolean }) {
  const th = useThresholds();
  const vramPct = percentOf(g.vram_used_gb, g.vram_total_gb);
  const limit = isNum(g.power_limit_watts) ? g.power_limit_watts : null;
  const powerScale = limit ?? scaleOf(th.gpuPowerWatts, THRESHOLDS.gpuPowerWatts.critical);
  const label = gpuLabel(g, multiHost);
  const utilLevel = levelOf(g.utilization, th.gpuUtilization);
  return (
    <article
      aria-label={`${label}: ${g.name ?? "unknown GPU"}`}
      data-testid="gpu-card"
      className="min-w-0 rounded-tremor-default border border-tremor-border p-2.5 sm:p-3 dark:border-dark-tremor-border"
    >
      <div className="flex flex-wrap items-start justify-between gap-2">
        <div className="min-w-0">
          <p className="truncate text-sm font-semibold text-tremor-content-strong dark:text-dark-tremor-content-strong" title={g.uuid}>
            {g.name ?? "Unknown GPU"}
          </p>
          <p className="text-xs text-tremor-content dark:text-dark-tremor-content">
            {label}
            {!multiHost && g.host ? ` · ${g.host}` : ""}
            {g.throttle_reasons?.length ? <span className="ml-2 text-amber-600 dark:text-amber-400">throttled: {g.throttle_reasons.join(", ")}</span> : null}
          </p>
        </div>
        {g.stale ? <StaleBadge lastSeen={lastSeen} now={now} /> : null}
      </div>
      <div className={wide ? "mt-3 grid grid-cols-1 gap-4 sm:grid-cols-[minmax(10rem,16rem)_1fr] sm:items-end sm:gap-8" : "mt-2"}>
        <div data-testid="gpu-util" data-level={utilLevel}>
          <div className="flex items-baseline gap-2">
            <Metric className={`${wide ? "" : "max-sm:!text-2xl"} ${utilLevel === "ok" ? "" : utilLevel === "critical" ? "!text-red-600 dark:!text-red-400" : "!text-amber-600 dark:!text-amber-400"}`}>
              {fmt(g.utilization, 0, "%")}
            </Metric>
            <span className="text-xs text-tremor-content dark:text-dark-tremor-content">
              <span className={wide ? "" : "max-sm:sr-only"}>utilization</span>
              {utilLevel !== "ok" ? ` (${utilLevel})` : ""}
            </span>
          </div>
          {isNum(g.utilization) ? (
            <ProgressBar value={Math.min(100, g.utilization)} color={levelColor(utilLevel, "blue")} className="mt-2" showAnimation={false} />
          ) : null}
        </div>
        <div className={wide ? "grid grid-cols-1 gap-3 sm:grid-cols-3" : "mt-3 grid grid-cols-1 gap-2.5"}>
          <Meter
            testId="gpu-vram"
            label="VRAM"
            value={`${fmtGB(g.vram_used_gb)} / ${fmtGB(g.vram_total_gb)} GB`}
            percent={vramPct}
            level={levelOf(vramPct, th.gpuVramPercent)}
            okColor="violet"
          />
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
            detail={limit ? `/ ${fmt(limit, 0)} W` : undefined}
            percent={isNum(g.power_watts) ? (g.power_watts / powerScale) * 100 : null}
            level={levelOf(g.power_watts, th.gpuPowerWatts)}
            okColor="fuchsia"
          />
        </div>
      </div>
      <GpuHealth g={g} />
    </article>
  );
});

function GpuOverviewPanelImpl({ update, history, resolutionS, now }: PanelProps) {
  const meta = sectionMeta(update, Section.GPU);
  const gpus = currentGpus(update);
  const hosts = new Set(gpus.map((g) => g.host ?? ""));
  const multiHost = hosts.size > 1;
  const errors = gpuErrors(update);

  const gpuKeys = gpus.map((g) => `${g.host}#${g.index}`).join(",");
  const charts = useMemo(() => {
    if (!gpus.length) return null;
    return {
      util: gpuRows(history, resolutionS, gpus, multiHost, (g) => g.utilization),
      vram: gpuRows(history, resolutionS, gpus, multiHost, (g) => g.vram_used_gb),
      temp: gpuRows(history, resolutionS, gpus, multiHost, (g) => g.temperature),
      power: gpuRows(history, resolutionS, gpus, multiHost, (g) => g.power_watts),
    };
    // Keyed by the set of GPUs, not the update: a new update with the same
    // GPUs must not redraw the charts until the history itself moves.
  }, [history, resolutionS, gpuKeys, multiHost]); // eslint-disable-line react-hooks/exhaustive-deps

  const chartHeight = gpus.length > 2 ? "h-44" : "h-36";
  const lastSeenOf = (host: string | undefined) => (update.hosts ?? []).find((h) => h.host === host)?.last_seen ?? null;

  return (
    <SectionCard id="gpu" title="GPU overview" count={gpus.length > 1 ? gpus.length : undefined} meta={meta} now={now}>
      {gpus.length === 0 ? (
        <div className="space-y-2">
          {errors.length ? (
            errors.map((e, i) => (
              <Absent
                key={i}
                title={noGpuText(e.error)}
                detail={`${e.host ? `Reported by the agent on ${e.host}: ` : ""}${e.error}. GPU charts are hidden until an agent reports a GPU.`}
              />
            ))
          ) : (
            <Absent title="No GPU data" detail="No agent has reported a GPU yet. Start sysperf-agent on the GPU host." />
          )}
        </div>
      ) : (
        <>
          {/* Two columns even on a phone: eight cards one under another would push every other section a screen down. */}
          <div className={gpus.length === 1 ? "" : "grid grid-cols-2 gap-2 sm:gap-3 xl:grid-cols-4"}>
            {gpus.map((g) => (
              <GpuCard key={`${g.host}#${g.index}#${g.uuid}`} g={g} multiHost={multiHost} now={now} lastSeen={lastSeenOf(g.host)} wide={gpus.length === 1} />
            ))}
          </div>
          {errors.length ? (
            <ul className="mt-2 space-y-1 text-xs text-tremor-content dark:text-dark-tremor-content">
              {errors.map((e, i) => (
                <li key={i}>
                  {e.host ?? "GPU"}: {noGpuText(e.error)}
                </li>
              ))}
            </ul>
          ) : null}
          {charts ? (
            <>
              {/* One legend for the four charts: with 8 GPUs a legend per chart would crowd out the plot. */}
              {charts.util.categories.length > 1 ? <Legend categories={charts.util.categories} colors={CHART_COLORS} className="mt-5" /> : null}
              <div className="mt-4 grid grid-cols-1 gap-x-6 gap-y-4 lg:grid-cols-2">
                <Chart title="Utilization (%)" {...charts.util} legend={false} height={chartHeight} minValue={0} maxValue={100} valueFormatter={pct0} />
                <Chart title="VRAM used (GB)" {...charts.vram} legend={false} height={chartHeight} minValue={0} valueFormatter={num1} />
                <Chart title="Temperature (°C)" {...charts.temp} legend={false} height={chartHeight} valueFormatter={num0} />
                <Chart title="Power (W)" {...charts.power} legend={false} height={chartHeight} minValue={0} valueFormatter={num0} />
              </div>
            </>
          ) : null}
        </>
      )}
    </SectionCard>
  );
}

export const GpuOverviewPanel = memo(GpuOverviewPanelImpl);
