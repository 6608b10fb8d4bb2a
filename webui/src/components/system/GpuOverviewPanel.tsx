import { Legend } from "@tremor/react";
import { memo, useMemo } from "react";
import { colorsFor, pick } from "../../lib/colors";
import { isNum, meansNoGpu, readableGpuError } from "../../lib/format";
import { sectionMeta, withHosts } from "../../lib/sections";
import { axisTop, gpuKey, gpuRows } from "../../lib/series";
import { Section, type GPUView, type Point, type Range, type Update } from "../../types";
import { Absent, Chart, num0, num1, pct0, SectionCard } from "./common";
import { vramPeaks } from "../../lib/gpus";
import { GpuCard } from "./GpuCard";
import { GpuHostViews } from "./GpuHostViews";

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

/**
 * The GPU errors to show: one per host that reported one; the section's
 * own error only when no host said anything (it repeats a host's otherwise,
 * and two hosts would read as three notices).
 */
export function gpuErrors(u: Update): { host: string | null; error: string }[] {
  const out: { host: string | null; error: string }[] = [];
  for (const h of u.hosts ?? []) {
    const e = h.errors?.gpu;
    if (e && !out.some((o) => o.host === h.host)) out.push({ host: h.host, error: e });
  }
  const top = u.errors?.[Section.GPU];
  if (top && !out.length) out.push({ host: null, error: top });
  return out;
}

export function noGpuText(error: string): string {
  const readable = readableGpuError(error);
  return meansNoGpu(error) ? `No NVIDIA GPU detected — ${readable}` : `GPU data unavailable — ${readable}`;
}

/** Page-wide colours of the models the GPUs' processes belong to, by model name. */
export function modelColorsOf(gpus: readonly GPUView[]): Map<string, string> {
  const names = new Set<string>();
  for (const g of gpus) for (const p of g.processes ?? []) if (p.model && p.model.trim()) names.add(p.model);
  return colorsFor([...names]);
}

function GpuOverviewPanelImpl({ update, history, resolutionS, now, range }: PanelProps) {
  const gpus = currentGpus(update);
  const hostNames = [...new Set(gpus.map((g) => g.host ?? ""))];
  const multiHost = hostNames.length > 1;
  const meta = withHosts(sectionMeta(update, Section.GPU), hostNames);
  const errors = gpuErrors(update);

  const gpuKeys = gpus.map(gpuKey).join(",");
  const modelKey = gpus.map((g) => (g.processes ?? []).map((p) => p.model ?? "").join("|")).join(",");
  const modelColors = useMemo(() => modelColorsOf(gpus), [modelKey]); // eslint-disable-line react-hooks/exhaustive-deps
  const peaks = useMemo(() => vramPeaks(history), [history]);
  const charts = useMemo(() => {
    if (!gpus.length) return null;
    // A colour per GPU from its key, the same in all four charts and the legend.
    const colorMap = colorsFor(gpus.map(gpuKey));
    const colors = pick(colorMap, gpus.map(gpuKey));
    const vramTop = Math.max(0, ...gpus.map((g) => (isNum(g.vram_total_gb) ? g.vram_total_gb : 0)));
    const limitTop = Math.max(0, ...gpus.map((g) => (isNum(g.power_limit_watts) ? g.power_limit_watts : 0)));
    return {
      colors,
      // Scaled to the capacity, not to the data, on round ticks.
      vramMax: vramTop > 0 ? axisTop(vramTop) : undefined,
      powerMax: limitTop > 0 ? axisTop(limitTop) : undefined,
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
  const rangeLabel = range ?? "the window";

  return (
    <SectionCard id="gpu" title="GPU overview" count={gpus.length > 1 ? gpus.length : undefined} meta={meta} now={now}>
      {gpus.length === 0 ? (
        <div className="space-y-2">
          {errors.length ? (
            errors.map((e) => (
              <Absent
                key={e.host ?? ""}
                title={`${e.host && (update.hosts?.length ?? 0) > 1 ? `${e.host}: ` : ""}${noGpuText(e.error)}`}
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
              <GpuCard
                key={`${g.host}#${g.index}#${g.uuid}`}
                g={g}
                multiHost={multiHost}
                now={now}
                lastSeen={lastSeenOf(g.host)}
                wide={gpus.length === 1}
                peakGb={peaks.get(gpuKey(g)) ?? null}
                rangeLabel={range}
                modelColors={modelColors}
              />
            ))}
          </div>
          {errors.length ? (
            <ul className="mt-2 space-y-1 text-xs text-tremor-content dark:text-dark-tremor-content" data-testid="gpu-host-errors">
              {errors.map((e) => (
                <li key={e.host ?? ""}>
                  {e.host ?? "GPU"}: {noGpuText(e.error)}
                </li>
              ))}
            </ul>
          ) : null}
          <GpuHostViews update={update} gpus={gpus} history={history} rangeLabel={rangeLabel} modelColors={modelColors} multiHost={multiHost} />
          {charts ? (
            <>
              {/* One legend for the four charts: with 8 GPUs a legend per chart would crowd out the plot. */}
              {charts.util.categories.length > 1 ? <Legend categories={charts.util.categories} colors={charts.colors} className="mt-5" /> : null}
              <div className="mt-4 grid grid-cols-1 gap-x-6 gap-y-4 lg:grid-cols-2">
                <Chart title="Utilization (%)" {...charts.util} colors={charts.colors} legend={false} height={chartHeight} minValue={0} maxValue={100} valueFormatter={pct0} />
                <Chart title="VRAM used (GB)" {...charts.vram} colors={charts.colors} legend={false} height={chartHeight} minValue={0} maxValue={charts.vramMax} valueFormatter={num1} />
                <Chart title="Temperature (°C)" {...charts.temp} colors={charts.colors} legend={false} height={chartHeight} valueFormatter={num0} />
                <Chart title="Power (W)" {...charts.power} colors={charts.colors} legend={false} height={chartHeight} minValue={0} maxValue={charts.powerMax} valueFormatter={num0} />
              </div>
            </>
          ) : null}
        </>
      )}
    </SectionCard>
  );
}

export const GpuOverviewPanel = memo(GpuOverviewPanelImpl);
