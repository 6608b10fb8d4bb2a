import { Metric } from "@tremor/react";
import { memo, useMemo } from "react";
import { fmt, fmtMs, isNum } from "../../lib/format";
import { sectionMeta } from "../../lib/sections";
import { rows } from "../../lib/series";
import { levelOf, useThresholds, type Level, type Threshold } from "../../lib/thresholds";
import { Section, type Latencies, type Range, type Stats, type Update } from "../../types";
import { Absent, Chart, num0, num1, num2, SectionCard } from "./common";
import type { PanelProps } from "./GpuOverviewPanel";

const LATENCY = ["avg", "P95"];
const THROUGHPUT = ["images/min", "events/min"];
const RT_COLORS = ["blue", "violet"];
const NM_COLORS = ["cyan", "fuchsia"];
const TP_COLORS = ["emerald", "amber"];

const levelText: Record<Level, string> = {
  ok: "text-tremor-content-strong dark:text-dark-tremor-content-strong",
  warning: "text-amber-600 dark:text-amber-400",
  critical: "text-red-600 dark:text-red-400",
};

function LatencyFigure({ name, s, t, testId }: { name: string; s: Stats | undefined; t?: Threshold | null; testId?: string }) {
  const p95Level = t ? levelOf(s?.p95, t) : "ok";
  const none = !s || (!isNum(s.avg) && !isNum(s.p95));
  return (
    <div data-testid={testId} data-level={p95Level} className="min-w-0">
      <p className="text-xs text-tremor-content dark:text-dark-tremor-content">{name}</p>
      {none ? (
        <p className="mt-1 text-sm text-tremor-content-subtle dark:text-dark-tremor-content-subtle">no observations in this window</p>
      ) : (
        <div className="mt-0.5 flex flex-wrap items-baseline gap-x-3">
          <Metric className="!text-2xl tabular-nums">{fmtMs(s.avg)}</Metric>
          <span className="text-xs text-tremor-content dark:text-dark-tremor-content">avg</span>
          <span className={`text-lg font-semibold tabular-nums ${levelText[p95Level]}`}>{fmtMs(s.p95)}</span>
          <span className="text-xs text-tremor-content dark:text-dark-tremor-content">
            P95{p95Level !== "ok" ? ` (${p95Level})` : ""}
            {isNum(s.p99) ? ` · P99 ${fmtMs(s.p99)}` : ""}
            {isNum(s.count) ? ` · ${fmt(s.count)} obs` : ""}
          </span>
        </div>
      )}
    </div>
  );
}

function hasFigures(inf: Latencies | null | undefined): boolean {
  if (!inf) return false;
  return (
    [inf.rtdetr_latency_ms, inf.nemotron_latency_ms, inf.pipeline_latency_ms].some((s) => s && (isNum(s.avg) || isNum(s.p95))) ||
    isNum(inf.throughput?.images_per_min) ||
    isNum(inf.throughput?.events_per_min)
  );
}

/**
 * The headline figures: those over the selected range when the hub sends
 * them, else the latency-window ones (an older hub; or figures only a
 * fallback source such as Prometheus filled, which the hub gives over its
 * latency window alone).
 */
function figuresFor(u: Update, range: Range | undefined): Latencies | undefined {
  const windowed = range ? u.inference_windows?.[range] : undefined;
  if (windowed && (hasFigures(windowed) || !hasFigures(u.inference))) return windowed;
  return u.inference;
}

function InferenceStatsPanelImpl({ update, history, resolutionS, now, range }: PanelProps) {
  const th = useThresholds();
  const meta = sectionMeta(update, Section.Inference);
  const inf = figuresFor(update, range);
  const anyLive = hasFigures(inf);

  const charts = useMemo(() => {
    const rt = rows(history, resolutionS, LATENCY, (p) => ({ avg: p.inference?.rtdetr_latency_ms?.avg, P95: p.inference?.rtdetr_latency_ms?.p95 }), 1);
    const nm = rows(
      history,
      resolutionS,
      LATENCY,
      (p) => {
        const s = p.inference?.nemotron_latency_ms;
        return { avg: isNum(s?.avg) ? s.avg / 1000 : null, P95: isNum(s?.p95) ? s.p95 / 1000 : null };
      },
      2,
    );
    const tp = rows(history, resolutionS, THROUGHPUT, (p) => ({
      "images/min": p.inference?.throughput?.images_per_min,
      "events/min": p.inference?.throughput?.events_per_min,
    }));
    return { rt, nm, tp };
  }, [history, resolutionS]);

  const hasHistory = charts.rt.concat(charts.nm, charts.tp).some((r) => Object.values(r).some((v) => typeof v === "number"));

  return (
    <SectionCard
      id="inference"
      title="Inference statistics"
      meta={meta}
      now={now}
      right={inf?.window ? <span className="text-[11px] text-tremor-content-subtle dark:text-dark-tremor-content-subtle">figures over {inf.window}</span> : null}
    >
      {!anyLive && !hasHistory ? (
        <Absent
          title="No inference observations"
          detail={
            meta.error ??
            "No model server exported latency histograms and the pipeline pushed no observations on sysperf.v1.latency.* in this window."
          }
        />
      ) : (
        <>
          <div className="grid grid-cols-1 gap-4 sm:grid-cols-2 xl:grid-cols-4">
            <LatencyFigure name="RT-DETRv2" s={inf?.rtdetr_latency_ms} t={th.rtdetrP95Ms} testId="latency-rtdetr" />
            <LatencyFigure name="Nemotron" s={inf?.nemotron_latency_ms} t={th.nemotronP95Ms} testId="latency-nemotron" />
            <LatencyFigure name="Pipeline" s={inf?.pipeline_latency_ms} testId="latency-pipeline" />
            <div className="min-w-0" data-testid="throughput">
              <p className="text-xs text-tremor-content dark:text-dark-tremor-content">Throughput</p>
              <div className="mt-0.5 flex flex-wrap items-baseline gap-x-2">
                <Metric className="!text-2xl tabular-nums">{fmt(inf?.throughput?.images_per_min, 1)}</Metric>
                <span className="text-xs text-tremor-content dark:text-dark-tremor-content">images/min</span>
                <span className="text-lg font-semibold tabular-nums text-tremor-content-strong dark:text-dark-tremor-content-strong">{fmt(inf?.throughput?.events_per_min, 1)}</span>
                <span className="text-xs text-tremor-content dark:text-dark-tremor-content">events/min</span>
              </div>
            </div>
          </div>
          <div className="mt-5 grid grid-cols-1 gap-x-6 gap-y-4 lg:grid-cols-3">
            <Chart title="RT-DETRv2 latency (ms)" data={charts.rt} categories={LATENCY} colors={RT_COLORS} minValue={0} valueFormatter={num0} />
            <Chart title="Nemotron latency (s)" data={charts.nm} categories={LATENCY} colors={NM_COLORS} minValue={0} valueFormatter={num2} />
            <Chart title="Pipeline throughput (per min)" data={charts.tp} categories={THROUGHPUT} colors={TP_COLORS} minValue={0} valueFormatter={num1} />
          </div>
        </>
      )}
    </SectionCard>
  );
}

export const InferenceStatsPanel = memo(InferenceStatsPanelImpl);
