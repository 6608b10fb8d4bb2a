import { Legend, Metric, ProgressBar, SparkAreaChart } from "@tremor/react";
import { memo, useMemo } from "react";
import { fmt, fmtGB, isNum, meansNoGpu, readableGpuError } from "../../lib/format";
import { sectionMeta } from "../../lib/sections";
import { gpuKey, gpuLabel, gpuRows, pointGpus, type Row } from "../../lib/series";
import { levelColor, levelOf, percentOf, scaleOf, THRESHOLDS, useThresholds } from "../../lib/thresholds";
import { Section, type GPUView, type Point, type Range, type Update } from "../../types";
import { Absent, Chart, CHART_COLORS, DASH, Meter, num0, num1, pct0, SectionCard, StaleBadge } from "./common";

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

/**
 * Past this many GPUs each card carries its own spark charts instead of the
 * four combined AreaCharts: their 32 series cost ~17 ms a redraw (Tremor's
 * AreaChart renders a dot per point that no prop turns off), and eight
 * overlapping lines read worse than one small trend per card.
 */
export const COMBINED_CHARTS_MAX_GPUS = 2;

/** One GPU's 60-point window: u(tilization %) and m(emory: VRAM used, GB). */
type TrendRows = Row[];

const round1 = (v: number) => Math.round(v * 10) / 10;
const orNull = (v: number | null | undefined) => (isNum(v) ? round1(v) : null);

/** Per GPU (by gpuKey), its rows of the history window: built once per history change. */
function gpuTrends(points: Point[], gpus: GPUView[]): Map<string, TrendRows> {
  const out = new Map<string, TrendRows>(gpus.map((g) => [gpuKey(g), []]));
  for (const p of points) {
    const seen = new Map<string, GPUView>();
    for (const g of pointGpus(p)) seen.set(gpuKey(g), g);
    for (const [key, trend] of out) {
      const g = seen.get(key);
      // A point without this GPU stays in as a gap, so every card spans the same window.
      trend.push({ time: p.timestamp, u: orNull(g?.utilization), m: orNull(g?.vram_used_gb) });
    }
  }
  return out;
}

const SPARK_U = ["u"];
const SPARK_M = ["m"];
// The colours of the card's bars below their warning thresholds.
const BLUE = ["blue"];
const VIOLET = ["violet"];

type SparkPlotProps = { rows: TrendRows; category: string[]; colors: string[]; min?: number | undefined; max?: number | undefined };

/**
 * Memoised on the rows' identity, apart from the figure beside it: a new
 * update redraws the figures at once and the plots only in the deferred
 * render, once the history has moved.
 */
const SparkPlot = memo(function SparkPlot({ rows, category, colors, min, max }: SparkPlotProps) {
  const has = rows.some((r) => typeof r[category[0]!] === "number");
  return has ? (
    <SparkAreaChart
      className="mt-0.5 h-8 w-full"
      data={rows}
      index="time"
      categories={category}
      colors={colors}
      showGradient
      curveType="linear"
      connectNulls={false}
      autoMinValue={min === undefined}
      minValue={min}
      maxValue={max}
    />
  ) : (
    <div className="mt-0.5 flex h-8 items-center justify-center rounded-tremor-small border border-dashed border-tremor-border text-[10px] text-tremor-content-subtle dark:border-dark-tremor-border dark:text-dark-tremor-content-subtle">
      no samples yet
    </div>
  );
});

function Spark({ label, value, ...plot }: SparkPlotProps & { label: string; value: string }) {
  return (
    <div data-spark={label} className="min-w-0">
      <div className="flex items-baseline justify-between gap-1 text-xs">
        <span className="text-tremor-content dark:text-dark-tremor-content">{label}</span>
        <span className="font-medium tabular-nums text-tremor-content-strong dark:text-dark-tremor-content-strong">{value}</span>
      </div>
      <SparkPlot {...plot} />
    </div>
  );
}

/**
 * The card's trends over the selected range, each with the card's current
 * figure. Temperature and power keep their figures and bars but get no
 * spark: each spark is a Recharts chart of its own (~0.6 ms a redraw in the
 * e2e timing), and 16 more would cost as much as the combined charts saved.
 */
function GpuTrends({ rows, util, vram, vramMax }: { rows: TrendRows; util: string; vram: string; vramMax: number | undefined }) {
  return (
    <div data-testid="gpu-trends" className="mt-3 grid grid-cols-2 gap-x-3 gap-y-2 border-t border-tremor-border pt-2 dark:border-dark-tremor-border">
      <Spark label="Utilization" value={util} rows={rows} category={SPARK_U} colors={BLUE} min={0} max={100} />
      <Spark label="VRAM" value={vram} rows={rows} category={SPARK_M} colors={VIOLET} min={0} max={vramMax} />
    </div>
  );
}

/** Memoised: the deferred chart render passes the same GPU objects again. */
const GpuCard = memo(function GpuCard({ g, multiHost, now, lastSeen, wide, trend }: { g: GPUView; multiHost: boolean; now: number; lastSeen: string | null; wide: boolean; trend?: TrendRows | undefined }) {
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
      className="rounded-tremor-default border border-tremor-border p-3 dark:border-dark-tremor-border"
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
            <Metric className={utilLevel === "ok" ? "" : utilLevel === "critical" ? "!text-red-600 dark:!text-red-400" : "!text-amber-600 dark:!text-amber-400"}>
              {fmt(g.utilization, 0, "%")}
            </Metric>
            <span className="text-xs text-tremor-content dark:text-dark-tremor-content">utilization{utilLevel !== "ok" ? ` (${utilLevel})` : ""}</span>
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
      {trend ? (
        <GpuTrends
          rows={trend}
          util={fmt(g.utilization, 0, "%")}
          vram={isNum(g.vram_used_gb) ? `${fmtGB(g.vram_used_gb)} GB` : DASH}
          vramMax={isNum(g.vram_total_gb) ? g.vram_total_gb : undefined}
        />
      ) : null}
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
  const perCard = gpus.length > COMBINED_CHARTS_MAX_GPUS;
  const trends = useMemo(() => (perCard ? gpuTrends(history, gpus) : null), [history, gpuKeys, perCard]); // eslint-disable-line react-hooks/exhaustive-deps
  const charts = useMemo(() => {
    if (!gpus.length || perCard) return null;
    return {
      util: gpuRows(history, resolutionS, gpus, multiHost, (g) => g.utilization),
      vram: gpuRows(history, resolutionS, gpus, multiHost, (g) => g.vram_used_gb),
      temp: gpuRows(history, resolutionS, gpus, multiHost, (g) => g.temperature),
      power: gpuRows(history, resolutionS, gpus, multiHost, (g) => g.power_watts),
    };
    // Keyed by the set of GPUs, not the update: a new update with the same
    // GPUs must not redraw the charts until the history itself moves.
  }, [history, resolutionS, gpuKeys, multiHost, perCard]); // eslint-disable-line react-hooks/exhaustive-deps

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
          <div className={gpus.length === 1 ? "" : "grid grid-cols-1 gap-3 sm:grid-cols-2 xl:grid-cols-4"}>
            {gpus.map((g) => (
              <GpuCard key={`${g.host}#${g.index}#${g.uuid}`} g={g} multiHost={multiHost} now={now} lastSeen={lastSeenOf(g.host)} wide={gpus.length === 1} trend={trends?.get(gpuKey(g))} />
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
                <Chart title="Utilization (%)" {...charts.util} legend={false} height="h-36" minValue={0} maxValue={100} valueFormatter={pct0} />
                <Chart title="VRAM used (GB)" {...charts.vram} legend={false} height="h-36" minValue={0} valueFormatter={num1} />
                <Chart title="Temperature (°C)" {...charts.temp} legend={false} height="h-36" valueFormatter={num0} />
                <Chart title="Power (W)" {...charts.power} legend={false} height="h-36" minValue={0} valueFormatter={num0} />
              </div>
            </>
          ) : null}
        </>
      )}
    </SectionCard>
  );
}

export const GpuOverviewPanel = memo(GpuOverviewPanelImpl);
