import { Badge, Card, Legend, ProgressBar, type Color } from "@tremor/react";
import { memo, useEffect, useId, useRef, useState, type ReactNode, type RefObject } from "react";
import { Area, AreaChart, CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis, type TooltipProps } from "recharts";
import { ago, DASH, num } from "../../lib/format";
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
      <div className="flex items-baseline justify-between gap-2">
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
}

/** Chart value formatters: the unit is in the chart's title, so labels stay short. */
export const num0 = (v: number) => num(v, 0);
export const num1 = (v: number) => num(v, 1);
export const num2 = (v: number) => num(v, 2);

export const CHART_COLORS = ["blue", "violet", "cyan", "fuchsia", "emerald", "amber", "rose", "indigo", "teal", "lime"];

/** Tailwind's 500 shades, the ones Tremor's Legend dots use, so lines and legend agree. */
const HEX: Record<string, string> = {
  blue: "#3b82f6",
  violet: "#8b5cf6",
  cyan: "#06b6d4",
  fuchsia: "#d946ef",
  emerald: "#10b981",
  amber: "#f59e0b",
  rose: "#f43f5e",
  indigo: "#6366f1",
  teal: "#14b8a6",
  lime: "#84cc16",
  gray: "#6b7280",
};
const hexOf = (c: string | undefined) => (c && HEX[c]) || HEX.gray!;

/**
 * Past this many series a chart draws lines: eight overlapping gradient
 * fills read as one muddy block, and each area costs a second path.
 */
const MAX_AREAS = 2;

const AXIS_CLASS = "text-tremor-label fill-tremor-content dark:fill-dark-tremor-content";
const X_TICK = { transform: "translate(0, 6)" };
const Y_TICK = { transform: "translate(-3, 0)" };
const X_PADDING = { left: 20, right: 20 };
const MARGIN = { top: 5, right: 0, bottom: 0, left: 0 };
const CURSOR = { stroke: "#d1d5db", strokeWidth: 1 };
const ACTIVE_DOT = { r: 4, strokeWidth: 2, className: "stroke-tremor-background dark:stroke-dark-tremor-background" };
const TOOLTIP_WRAPPER = { outline: "none" };
const TOOLTIP_POSITION = { y: 0 };
const plain = (v: number) => String(v);

function ChartTooltip({ active, payload, label, format }: TooltipProps<number, string> & { format: (v: number) => string }) {
  if (!active || !payload?.length) return null;
  return (
    <div className="rounded-tremor-default border border-tremor-border bg-tremor-background text-tremor-default shadow-tremor-dropdown dark:border-dark-tremor-border dark:bg-dark-tremor-background dark:shadow-dark-tremor-dropdown">
      <p className="border-b border-tremor-border px-3 py-1.5 font-medium text-tremor-content-emphasis dark:border-dark-tremor-border dark:text-dark-tremor-content-emphasis">{label}</p>
      <ul className="space-y-0.5 px-3 py-1.5">
        {payload.map((e) => (
          <li key={String(e.dataKey)} className="flex items-center justify-between gap-6">
            <span className="flex items-center gap-2 text-tremor-content dark:text-dark-tremor-content">
              <span aria-hidden="true" className="h-2 w-2 rounded-full" style={{ background: e.color }} />
              {e.name}
            </span>
            <span className="font-medium tabular-nums text-tremor-content-emphasis dark:text-dark-tremor-content-emphasis">
              {typeof e.value === "number" ? format(e.value) : DASH}
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}

/**
 * A time-series chart on Recharts directly, with Tremor's look. Tremor's
 * AreaChart renders a dot callback for every point of every series (and
 * scans the data in each call to decide whether to draw it); with 8 GPUs ×
 * 60 points that was most of a redraw. Here series have no dots (only the
 * hovered one), no animation, and straight segments between samples.
 * A window without any value says so instead of drawing an empty grid.
 */
function PlotImpl({ data, categories, colors = CHART_COLORS, valueFormatter, height = "h-36", minValue, maxValue, emptyText, legend }: ChartProps) {
  const gradientId = useId().replace(/:/g, "");
  const hasValue = categories.length > 0 && data.some((d) => categories.some((c) => typeof d[c] === "number"));
  if (!hasValue) {
    return (
      <div
        className={`${height} flex items-center justify-center rounded-tremor-small border border-dashed border-tremor-border text-xs text-tremor-content-subtle dark:border-dark-tremor-border dark:text-dark-tremor-content-subtle`}
      >
        {emptyText ?? "No samples in this window yet"}
      </div>
    );
  }
  const format = valueFormatter ?? plain;
  const areas = categories.length <= MAX_AREAS;
  const showLegend = legend ?? categories.length > 1;
  const yDomain: [number | "auto", number | "auto"] = [minValue ?? "auto", maxValue ?? "auto"];
  const axes = [
    <CartesianGrid key="grid" className="stroke-tremor-border stroke-1 dark:stroke-dark-tremor-border" horizontal vertical={false} />,
    <XAxis key="x" dataKey="time" padding={X_PADDING} tick={X_TICK} tickLine={false} axisLine={false} minTickGap={40} interval="equidistantPreserveStart" className={AXIS_CLASS} fill="" stroke="" />,
    <YAxis key="y" width={48} axisLine={false} tickLine={false} type="number" domain={yDomain} tick={Y_TICK} tickFormatter={format} className={AXIS_CLASS} fill="" stroke="" />,
    <Tooltip
      key="tip"
      isAnimationActive={false}
      wrapperStyle={TOOLTIP_WRAPPER}
      cursor={CURSOR}
      position={TOOLTIP_POSITION}
      content={(p: TooltipProps<number, string>) => <ChartTooltip {...p} format={format} />}
    />,
  ];
  return (
    <div className={`${height} flex flex-col`}>
      {showLegend ? (
        <div className="mb-1 flex justify-end">
          <Legend categories={categories} colors={colors.slice(0, categories.length)} />
        </div>
      ) : null}
      <div className="min-h-0 flex-1">
        <ResponsiveContainer width="100%" height="100%">
          {areas ? (
            <AreaChart data={data} margin={MARGIN}>
              <defs>
                {categories.map((c, i) => (
                  <linearGradient key={c} id={`${gradientId}-${i}`} x1="0" y1="0" x2="0" y2="1">
                    <stop offset="5%" stopColor={hexOf(colors[i])} stopOpacity={0.4} />
                    <stop offset="95%" stopColor={hexOf(colors[i])} stopOpacity={0} />
                  </linearGradient>
                ))}
              </defs>
              {axes}
              {categories.map((c, i) => (
                <Area
                  key={c}
                  name={c}
                  dataKey={c}
                  type="linear"
                  stroke={hexOf(colors[i])}
                  fill={`url(#${gradientId}-${i})`}
                  strokeWidth={2}
                  strokeLinejoin="round"
                  strokeLinecap="round"
                  dot={false}
                  activeDot={ACTIVE_DOT}
                  isAnimationActive={false}
                  connectNulls={false}
                />
              ))}
            </AreaChart>
          ) : (
            <LineChart data={data} margin={MARGIN}>
              {axes}
              {categories.map((c, i) => (
                <Line
                  key={c}
                  name={c}
                  dataKey={c}
                  type="linear"
                  stroke={hexOf(colors[i])}
                  strokeWidth={1.5}
                  strokeLinejoin="round"
                  strokeLinecap="round"
                  dot={false}
                  activeDot={ACTIVE_DOT}
                  isAnimationActive={false}
                  connectNulls={false}
                />
              ))}
            </LineChart>
          )}
        </ResponsiveContainer>
      </div>
    </div>
  );
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
 * A chart far off screen keeps what it last drew and catches up when it
 * scrolls near: a redraw costs ~10 ms a chart, and with 8 GPUs most charts
 * are below the fold most of the time.
 */
function ChartImpl(props: ChartProps) {
  const [ref, near] = useNearScreen<HTMLElement>();
  const drawn = useRef(props);
  useEffect(() => {
    if (near) drawn.current = props;
  });
  const p = near ? props : drawn.current;
  return (
    <figure ref={ref} className="min-w-0" data-chart={props.title}>
      <figcaption className="mb-1 text-xs font-medium text-tremor-content dark:text-dark-tremor-content">{props.title}</figcaption>
      <Plot {...p} />
    </figure>
  );
}

const sameList = (a: string[] | undefined, b: string[] | undefined) => a === b || (!!a && !!b && a.length === b.length && a.every((x, i) => x === b[i]));

/**
 * Charts are the page's costly part, so one re-renders only when its data
 * (memoised per history window by the panels) or its shape changes. The
 * value formatter is a pure function of the chart's title at every call
 * site, so it is not compared (callers pass inline lambdas).
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
  a.legend === b.legend;

const Plot = memo(PlotImpl, samePlot);

export const Chart = memo(ChartImpl, samePlot);

export function Figure({ label, value, sub, testId }: { label: string; value: string; sub?: string | undefined; testId?: string }) {
  return (
    <div className="min-w-0" data-testid={testId}>
      <p className="truncate text-xs text-tremor-content dark:text-dark-tremor-content">{label}</p>
      <p className="text-lg font-semibold tabular-nums text-tremor-content-strong dark:text-dark-tremor-content-strong">{value}</p>
      {sub ? <p className="truncate text-xs text-tremor-content-subtle dark:text-dark-tremor-content-subtle">{sub}</p> : null}
    </div>
  );
}

export { DASH };
