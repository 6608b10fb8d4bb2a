import { useId, useLayoutEffect, useRef, useState } from "react";
import { DASH } from "../../lib/format";

export type ChartRow = Record<string, string | number | null>;

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
export const hexOf = (c: string | undefined): string => (c && HEX[c]) || "#6b7280";

/**
 * Past this many series a chart draws lines only: eight overlapping gradient
 * fills read as one muddy block.
 */
const MAX_AREAS = 2;

const Y_AXIS_W = 48;
const PAD_X = 20;
const TOP = 6;
const X_AXIS_H = 22;
/** Room an x label needs (an "09:48:46" label plus the gap Tremor kept between ticks). */
const X_LABEL_PX = 90;

/** "Nice" y ticks (steps of 1, 2, 2.5 or 5 × 10^k) covering lo..hi. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const start = Math.floor(lo / step + 1e-9) * step;
  // Up to the first tick at or above hi, so every value lies inside the plot.
  const out = [start];
  while (out.length < 2 || out[out.length - 1]! < hi - step * 1e-9) out.push(Math.round((out[out.length - 1]! + step) / step) * step);
  return out;
}

/** The x-axis slots that get a label: the first, then every k-th, so labels never crowd. */
export function xLabelSlots(n: number, plotWidth: number): number[] {
  if (n <= 0) return [];
  const fit = Math.max(1, Math.floor(plotWidth / X_LABEL_PX));
  const every = Math.max(1, Math.ceil(n / fit));
  const out: number[] = [];
  for (let i = 0; i < n; i += every) out.push(i);
  return out;
}

/** SVG path of one series; a null slot breaks the line (a gap, never a zero). */
export function linePath(values: (number | null)[], x: (i: number) => number, y: (v: number) => number): string {
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  return d;
}

/** Slots whose value has no neighbour to join: a path through one point draws nothing, so these get a dot. */
export function isolated(values: (number | null)[]): number[] {
  const out: number[] = [];
  values.forEach((v, i) => {
    if (v !== null && (values[i - 1] ?? null) === null && (values[i + 1] ?? null) === null) out.push(i);
  });
  return out;
}

/** The filled region under each run of values, down to the baseline. */
function areaPath(values: (number | null)[], x: (i: number) => number, y: (v: number) => number, base: number): string {
  let d = "";
  let run: number[] = [];
  const close = () => {
    if (run.length) {
      d += `M${x(run[0]!).toFixed(1)},${base.toFixed(1)}`;
      for (const i of run) d += `L${x(i).toFixed(1)},${y(values[i]!).toFixed(1)}`;
      d += `L${x(run[run.length - 1]!).toFixed(1)},${base.toFixed(1)}Z`;
    }
    run = [];
  };
  values.forEach((v, i) => (v === null ? close() : run.push(i)));
  close();
  return d;
}

function useSize<T extends HTMLElement>(): [React.RefObject<T>, { w: number; h: number }] {
  const ref = useRef<T>(null);
  const [size, setSize] = useState({ w: 0, h: 0 });
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const read = () => {
      const w = el.clientWidth;
      const h = el.clientHeight;
      setSize((s) => (s.w === w && s.h === h ? s : { w, h }));
    };
    read();
    if (typeof ResizeObserver !== "function") return;
    const ro = new ResizeObserver(read);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, size];
}

export interface TimeChartProps {
  data: ChartRow[];
  categories: string[];
  colors: string[];
  valueFormatter: (v: number) => string;
  minValue?: number | undefined;
  maxValue?: number | undefined;
}

/**
 * A time-series chart drawn as plain SVG: per series one path, a few grid
 * lines and labels, and a hover readout. It replaced Tremor's AreaChart
 * (Recharts), whose redraw of four 8-series charts took most of a frame:
 * Recharts rebuilds every axis, tick and point as React elements on each
 * update, and Tremor adds a dot callback per point. This draws ~25 nodes.
 */
export function TimeChart({ data, categories, colors, valueFormatter, minValue, maxValue }: TimeChartProps) {
  const [ref, { w, h }] = useSize<HTMLDivElement>();
  const [hover, setHover] = useState<number | null>(null);
  const gradientId = useId().replace(/:/g, "");

  const series = categories.map((c) => data.map((r) => (typeof r[c] === "number" ? (r[c] as number) : null)));
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) for (const v of s) if (v !== null) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  // A fixed bound (0 %, 100 %) holds unless a value lies beyond it; the
  // free ends round out to nice ticks.
  if (minValue !== undefined) lo = Math.min(minValue, lo);
  if (maxValue !== undefined) hi = Math.max(maxValue, hi);
  const yTicks = niceTicks(lo, hi);
  const yMin = yTicks[0]!;
  const yMax = yTicks[yTicks.length - 1]!;

  const x0 = Y_AXIS_W + PAD_X;
  const x1 = Math.max(x0 + 1, w - PAD_X);
  const plotBottom = Math.max(TOP + 1, h - X_AXIS_H);
  const n = data.length;
  const x = (i: number) => (n <= 1 ? (x0 + x1) / 2 : x0 + ((x1 - x0) * i) / (n - 1));
  const y = (v: number) => plotBottom - ((v - yMin) / (yMax - yMin || 1)) * (plotBottom - TOP);
  const areas = categories.length <= MAX_AREAS;

  const onMove = (e: React.MouseEvent<SVGSVGElement>) => {
    if (n === 0) return;
    const box = e.currentTarget.getBoundingClientRect();
    const i = n <= 1 ? 0 : Math.round(((e.clientX - box.left - x0) / (x1 - x0)) * (n - 1));
    setHover(Math.max(0, Math.min(n - 1, i)));
  };

  const hoverRow = hover !== null ? data[hover] : undefined;
  return (
    <div ref={ref} className="relative h-full w-full" data-time-chart="">
      {w > 0 && h > 0 ? (
        <svg width={w} height={h} className="block overflow-visible" onMouseMove={onMove} onMouseLeave={() => setHover(null)} aria-hidden="true">
          {areas ? (
            <defs>
              {categories.map((c, i) => (
                <linearGradient key={c} id={`${gradientId}-${i}`} x1="0" y1="0" x2="0" y2="1">
                  <stop offset="5%" stopColor={hexOf(colors[i])} stopOpacity={0.4} />
                  <stop offset="95%" stopColor={hexOf(colors[i])} stopOpacity={0} />
                </linearGradient>
              ))}
            </defs>
          ) : null}
          <g className="stroke-tremor-border dark:stroke-dark-tremor-border" strokeWidth={1}>
            {yTicks.map((t) => (
              <line key={t} x1={Y_AXIS_W} x2={w} y1={y(t)} y2={y(t)} />
            ))}
          </g>
          <g className="fill-tremor-content text-tremor-label dark:fill-dark-tremor-content">
            {yTicks.map((t) => (
              <text key={t} x={Y_AXIS_W - 6} y={y(t)} textAnchor="end" dominantBaseline="middle">
                {valueFormatter(t)}
              </text>
            ))}
            {xLabelSlots(n, x1 - x0).map((i) => (
              <text key={i} x={x(i)} y={plotBottom + 15} textAnchor="middle">
                {String(data[i]?.time ?? "")}
              </text>
            ))}
          </g>
          {areas
            ? series.map((s, i) => <path key={`a${i}`} d={areaPath(s, x, y, plotBottom)} fill={`url(#${gradientId}-${i})`} stroke="none" />)
            : null}
          {series.map((s, i) => (
            <path
              key={categories[i]}
              data-series={categories[i]}
              d={linePath(s, x, y)}
              fill="none"
              stroke={hexOf(colors[i])}
              strokeWidth={areas ? 2 : 1.5}
              strokeLinejoin="round"
              strokeLinecap="round"
            />
          ))}
          {series.map((s, i) =>
            isolated(s).map((j) => <circle key={`${categories[i]}@${j}`} data-lone="" cx={x(j)} cy={y(s[j]!)} r={2.5} fill={hexOf(colors[i])} />),
          )}
          {hover !== null ? (
            <g>
              <line x1={x(hover)} x2={x(hover)} y1={TOP} y2={plotBottom} stroke="#d1d5db" strokeWidth={1} />
              {series.map((s, i) =>
                s[hover] !== null ? (
                  <circle key={i} cx={x(hover)} cy={y(s[hover]!)} r={4} fill={hexOf(colors[i])} strokeWidth={2} className="stroke-tremor-background dark:stroke-dark-tremor-background" />
                ) : null,
              )}
            </g>
          ) : null}
        </svg>
      ) : null}
      {hoverRow ? (
        <div
          role="tooltip"
          className="pointer-events-none absolute top-0 z-10 rounded-tremor-default border border-tremor-border bg-tremor-background text-tremor-default shadow-tremor-dropdown dark:border-dark-tremor-border dark:bg-dark-tremor-background dark:shadow-dark-tremor-dropdown"
          style={x(hover!) > w / 2 ? { right: w - x(hover!) + 12 } : { left: x(hover!) + 12 }}
        >
          <p className="border-b border-tremor-border px-3 py-1.5 font-medium text-tremor-content-emphasis dark:border-dark-tremor-border dark:text-dark-tremor-content-emphasis">
            {String(hoverRow.time ?? "")}
          </p>
          <ul className="space-y-0.5 px-3 py-1.5">
            {categories.map((c, i) => {
              const v = hoverRow[c];
              return (
                <li key={c} className="flex items-center justify-between gap-6 whitespace-nowrap">
                  <span className="flex items-center gap-2 text-tremor-content dark:text-dark-tremor-content">
                    <span aria-hidden="true" className="h-2 w-2 rounded-full" style={{ background: hexOf(colors[i]) }} />
                    {c}
                  </span>
                  <span className="font-medium tabular-nums text-tremor-content-emphasis dark:text-dark-tremor-content-emphasis">
                    {typeof v === "number" ? valueFormatter(v) : DASH}
                  </span>
                </li>
              );
            })}
          </ul>
        </div>
      ) : null}
    </div>
  );
}
