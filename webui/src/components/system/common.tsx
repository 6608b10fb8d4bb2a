import { AreaChart, Badge, Card, LineChart, ProgressBar, type Color } from "@tremor/react";
import { memo, useEffect, useMemo, useRef, useState, type ReactNode, type RefObject } from "react";
import { ago, DASH, num } from "../../lib/format";
import { useFramed } from "../../lib/frameQueue";
import { sourceLabel, type SectionMeta } from "../../lib/sections";
import { levelColor, type Level } from "../../lib/thresholds";

/** Named so tests and the e2e can find a section without relying on layout. */
export function SectionCard(props: {
  id: string;
  title: string;
  count?: number;
  meta?: SectionMeta | undefined;
  now: number;
  right?: ReactNode;
  children: ReactNode;
  className?: string;
}) {
  const { id, title, count, meta, now, right, children, className } = props;
  return (
    <section aria-labelledby={`${id}-title`} data-section={id} className={className}>
      <Card className="h-full p-4 sm:p-5">
        <header className="mb-4 flex flex-wrap items-center gap-x-3 gap-y-1">
          <h2
            id={`${id}-title`}
            className="text-xs font-semibold uppercase tracking-wider text-tremor-content-emphasis dark:text-dark-tremor-content-emphasis"
          >
            {title}
            {count !== undefined ? " " : null}
            {count !== undefined ? <span className="font-normal text-tremor-content dark:text-dark-tremor-content">({count})</span> : null}
          </h2>
          {meta?.stale ? <StaleBadge lastSeen={meta.lastSeen} now={now} /> : null}
          <div className="ml-auto flex items-center gap-2">
            {right}
            {meta?.source ? <SourceTag source={meta.source} /> : null}
          </div>
        </header>
        {children}
      </Card>
    </section>
  );
}

export function SourceTag({ source }: { source: string }) {
  return (
    <span
      className="whitespace-nowrap text-[11px] text-tremor-content-subtle dark:text-dark-tremor-content-subtle"
      title={`This section is filled by ${sourceLabel(source)}`}
    >
      via {sourceLabel(source)}
    </span>
  );
}

export function StaleBadge({ lastSeen, now }: { lastSeen: string | null | undefined; now: number }) {
  const text = lastSeen ? `stale — last seen ${ago(lastSeen, now)}` : "stale — no fresh data";
  return (
    <Badge color="amber" size="xs" title="No fresh data for more than three intervals; figures are the last known values">
      {text}
    </Badge>
  );
}

/** What a section shows when its source is absent: plain words, no empty chart. */
export function Absent({ title, detail, tone = "neutral" }: { title: string; detail?: string | null | undefined; tone?: "neutral" | "error" }) {
  return (
    <div
      role="status"
      className={
        "rounded-tremor-default border border-dashed px-4 py-5 text-center " +
        (tone === "error"
          ? "border-red-300 bg-red-50/50 dark:border-red-900 dark:bg-red-950/20"
          : "border-tremor-border bg-tremor-background-muted dark:border-dark-tremor-border dark:bg-dark-tremor-background-muted")
      }
    >
      <p className="text-sm font-medium text-tremor-content-strong dark:text-dark-tremor-content-strong">{title}</p>
      {detail ? <p className="mt-1 text-xs text-tremor-content dark:text-dark-tremor-content">{detail}</p> : null}
    </div>
  );
}

const STATUS_COLOR: Record<string, string> = {
  healthy: "emerald",
  running: "emerald",
  ok: "emerald",
  degraded: "amber",
  starting: "blue",
  loading: "blue",
  unhealthy: "red",
  unreachable: "red",
  exited: "red",
  dead: "red",
  unconfigured: "gray",
  unknown: "gray",
};

export function statusColor(status: string | undefined): string {
  return (status && STATUS_COLOR[status]) || "gray";
}

const STATUS_LABEL: Record<string, string> = {
  unconfigured: "Not configured",
};

export function StatusBadge({ status, reason }: { status: string | undefined; reason?: string | undefined }) {
  const s = status || "unknown";
  const label = STATUS_LABEL[s] ?? s.charAt(0).toUpperCase() + s.slice(1);
  return (
    <span className="inline-flex max-w-full flex-wrap items-center gap-x-2 gap-y-1">
      <Badge color={statusColor(s)} size="xs" data-status={s}>
        <span aria-hidden="true">● </span>
        {label}
      </Badge>
      {reason && s !== "unconfigured" ? <span className="text-xs text-tremor-content dark:text-dark-tremor-content">{reason}</span> : null}
    </span>
  );
}

const VALUE_TONE: Record<Level, string> = {
  ok: "",
  warning: "text-amber-600 dark:text-amber-400",
  critical: "text-red-600 dark:text-red-400",
};

/** A labelled figure with a threshold-coloured bar, the panels' basic row. */
export function Meter(props: {
  label: string;
  value: string;
  detail?: string | undefined;
  percent: number | null;
  level: Level;
  okColor?: Color;
  testId?: string;
}) {
  const { label, value, detail, percent, level, okColor = "blue", testId } = props;
  return (
    <div data-testid={testId} data-level={level}>
      <div className="flex flex-wrap items-baseline justify-between gap-x-2">
        <span className="text-xs text-tremor-content dark:text-dark-tremor-content">{label}</span>
        <span className="text-sm font-semibold tabular-nums text-tremor-content-strong dark:text-dark-tremor-content-strong">
          <span data-role="value" className={VALUE_TONE[level]}>
            {value}
          </span>
          {detail ? <span className="ml-1 text-xs font-normal text-tremor-content dark:text-dark-tremor-content">{detail}</span> : null}
          {level !== "ok" ? <span className="sr-only"> ({level})</span> : null}
        </span>
      </div>
      {percent === null ? (
        <div className="mt-1.5 h-2 rounded-full bg-tremor-background-subtle dark:bg-dark-tremor-background-subtle" aria-label={`${label}: no data`} />
      ) : (
        <ProgressBar value={Math.max(0, Math.min(100, percent))} color={levelColor(level, okColor)} className="mt-1.5" showAnimation={false} />
      )}
    </div>
  );
}

export interface ChartProps {
  title: string;
  data: Record<string, string | number | null>[];
  categories: string[];
  colors?: string[];
  valueFormatter?: (v: number) => string;
  height?: string;
  minValue?: number;
  maxValue?: number;
  emptyText?: string;
  /** Draw the legend (default: when more than one series); off where a shared legend stands above. */
  legend?: boolean;
  /** Whole numbers only (counts): no fractional ticks that a 0-digit formatter would print twice. */
  integer?: boolean;
}

/** Chart value formatters: the unit is in the chart's title, so labels stay short. */
export const num0 = (v: number) => num(v, 0);
export const num1 = (v: number) => num(v, 1);
export const num2 = (v: number) => num(v, 2);
export const pct0 = (v: number) => `${v.toFixed(0)}%`;
const plain = (v: number) => String(v);

export const CHART_COLORS = ["blue", "violet", "cyan", "fuchsia", "emerald", "amber", "rose", "indigo", "teal", "lime"];

const hasValueIn = (data: ChartProps["data"], categories: string[]) => categories.length > 0 && data.some((d) => categories.some((c) => typeof d[c] === "number"));
/** How many of the window's slots hold a value (data-points: the browser test reads what a chart drew). */
const slotsWithValue = (data: ChartProps["data"], categories: string[]) => data.filter((d) => categories.some((c) => typeof d[c] === "number")).length;

/**
 * A chart that says so when the window has no value, instead of drawing an
 * empty grid. One or two series are filled areas; past two, plain lines:
 * eight overlapping fills merge into one block and hide each other. Straight
 * segments and no animation: a smoothed curve costs more to compute and says
 * nothing more about 60 samples. The y axis ticks are Recharts' "nice" ones
 * (steps of 1, 2, 2.5 or 5 × 10ⁿ) over [minValue, maxValue or the data].
 */
function PlotImpl({ data, categories, colors = CHART_COLORS, valueFormatter = plain, height = "h-36", minValue, maxValue, emptyText, legend, integer }: ChartProps) {
  const hasValue = hasValueIn(data, categories);
  const used = useMemo(() => colors.slice(0, Math.max(categories.length, 1)), [colors, categories.length]);
  if (!hasValue) {
    return (
      <div
        className={`${height} flex items-center justify-center rounded-tremor-small border border-dashed border-tremor-border text-xs text-tremor-content-subtle dark:border-dark-tremor-border dark:text-dark-tremor-content-subtle`}
      >
        {emptyText ?? "No samples in this window yet"}
      </div>
    );
  }
  const common = {
    className: height,
    data,
    index: "time",
    categories,
    colors: used,
    valueFormatter,
    showLegend: legend ?? categories.length > 1,
    showAnimation: false,
    curveType: "linear" as const,
    yAxisWidth: 48,
    autoMinValue: minValue === undefined,
    minValue,
    maxValue,
    connectNulls: false,
    allowDecimals: !integer,
    startEndOnly: false,
    tickGap: 40,
  };
  return categories.length > 2 ? <LineChart {...common} data-kind="line" /> : <AreaChart {...common} showGradient data-kind="area" />;
}

/** True while the page is being printed: every chart draws then, on screen or not. */
function usePrinting(): boolean {
  const [printing, setPrinting] = useState(false);
  useEffect(() => {
    const on = () => setPrinting(true);
    const off = () => setPrinting(false);
    window.addEventListener("beforeprint", on);
    window.addEventListener("afterprint", off);
    return () => {
      window.removeEventListener("beforeprint", on);
      window.removeEventListener("afterprint", off);
    };
  }, []);
  return printing;
}

/** Whether the element is on screen or near it; always true without IntersectionObserver. */
function useNearScreen<T extends Element>(): [RefObject<T>, boolean] {
  const ref = useRef<T>(null);
  const [near, setNear] = useState(true);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof IntersectionObserver !== "function") return;
    const io = new IntersectionObserver((entries) => {
      for (const e of entries) setNear(e.isIntersecting);
    }, { rootMargin: "400px 0px" });
    io.observe(el);
    return () => io.disconnect();
  }, []);
  return [ref, near];
}

/**
 * A chart redraws in a frame of its own, through the page's FrameQueue: the
 * figures of an update show in the next frame and the charts follow one or
 * two per frame, so no frame carries every chart's redraw. A chart far off
 * screen keeps what it last drew and catches up when it scrolls near: with
 * 8 GPUs most charts are below the fold most of the time. It still draws
 * when what it shows is the empty notice and the window now has data, when
 * its last drawing is older than OFFSCREEN_REFRESH_MS, and while the page
 * prints, so a full-page screenshot or a printout never shows "No samples"
 * for a chart that holds data.
 */
const OFFSCREEN_REFRESH_MS = 15_000;

function ChartImpl(props: ChartProps) {
  const [ref, near] = useNearScreen<HTMLElement>();
  const printing = usePrinting();
  // When the drawing last changed and whether it was the empty notice.
  const drawnAt = useRef(0);
  const drewEmpty = useRef(true);
  const due = near || printing || (drewEmpty.current && hasValueIn(props.data, props.categories)) || Date.now() - drawnAt.current > OFFSCREEN_REFRESH_MS;
  const drawn = useFramed(props, samePlot, due);
  const points = slotsWithValue(drawn.data, drawn.categories);
  const empty = points === 0;
  useEffect(() => {
    drawnAt.current = Date.now();
    drewEmpty.current = empty;
  }, [drawn, empty]);
  return (
    <figure ref={ref} className="min-w-0" data-chart={props.title} data-empty={empty || undefined} data-points={points}>
      <figcaption className="mb-1 text-xs font-medium text-tremor-content dark:text-dark-tremor-content">{props.title}</figcaption>
      <Plot {...drawn} />
    </figure>
  );
}

const sameList = (a: string[] | undefined, b: string[] | undefined) => a === b || (!!a && !!b && a.length === b.length && a.every((x, i) => x === b[i]));

/**
 * Charts are the page's costly part, so one re-renders only when its data
 * (memoised per history window by the panels) or its shape changes.
 * Callers pass module-level formatters, colours and categories, so these
 * compare by identity or by a short content check.
 */
const samePlot = (a: ChartProps, b: ChartProps) =>
  a.data === b.data &&
  a.title === b.title &&
  sameList(a.categories, b.categories) &&
  sameList(a.colors, b.colors) &&
  a.minValue === b.minValue &&
  a.maxValue === b.maxValue &&
  a.height === b.height &&
  a.emptyText === b.emptyText &&
  a.legend === b.legend &&
  a.integer === b.integer &&
  a.valueFormatter === b.valueFormatter;

const Plot = memo(PlotImpl, samePlot);

export const Chart = memo(ChartImpl, samePlot);

export function Figure({ label, value, sub, testId, title }: { label: string; value: string; sub?: string | null | undefined; testId?: string; title?: string }) {
  return (
    <div className="min-w-0" data-testid={testId} title={title}>
      <p className="truncate text-xs text-tremor-content dark:text-dark-tremor-content">{label}</p>
      <p className="text-lg font-semibold tabular-nums text-tremor-content-strong dark:text-dark-tremor-content-strong">{value}</p>
      {sub ? <p className="truncate text-xs text-tremor-content-subtle dark:text-dark-tremor-content-subtle">{sub}</p> : null}
    </div>
  );
}

export { DASH };
