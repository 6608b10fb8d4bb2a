import { memo, useMemo } from "react";
import { isNum } from "../../lib/format";
import { axisTop, rows, type Row } from "../../lib/series";
import type { FleetFigures, Point, Range } from "../../types";
import { Chart, num0, num1, pct0, SectionCard } from "../system/common";

// Few series, fixed colours: the site's figures, not one line per GPU.
const UTIL = ["mean", "max"];
const VRAM = ["used", "total"];
const POWER = ["draw", "limit"];
const HOSTS = ["online", "hosts"];
const ALERTS = ["critical", "warning"];
const UTIL_COLORS = ["blue", "fuchsia"];
const VRAM_COLORS = ["violet", "gray"];
const POWER_COLORS = ["amber", "gray"];
const HOSTS_COLORS = ["emerald", "gray"];
const ALERT_COLORS = ["red", "amber"];

type Key = keyof FleetFigures;

/**
 * A slot's peak of one figure: a history point keeps each total's maximum
 * over the slot in max ("fleet.util_max"), so a spike in a 24-minute slot
 * is not averaged away; a live point is its own peak.
 */
const peak = (p: Point, k: Key) => p.max?.[`fleet.${k}`] ?? p.fleet?.[k];

/** The largest value of one figure over the window, or 0. */
const top = (points: Point[], k: Key) => Math.max(0, ...points.map((p) => p.fleet?.[k]).filter(isNum));

/**
 * A unit that keeps a site's sums readable on a 48-px axis: GB and W as on
 * the rest of the page, TB and kW once the window's capacity reaches ten
 * thousand of them.
 */
function scale(total: number, small: string, big: string): { unit: string; div: number } {
  return total >= 10_000 ? { unit: big, div: 1000 } : { unit: small, div: 1 };
}

const per = (v: number | undefined, div: number) => (isNum(v) ? v / div : null);

export interface FleetSeries {
  util: Row[];
  vram: Row[];
  power: Row[];
  hosts: Row[];
  alerts: Row[];
  vramUnit: string;
  powerUnit: string;
  vramMax: number | undefined;
  powerMax: number | undefined;
  hostsMax: number | undefined;
}

/** The fleet charts' rows from the fleet view's points (history, then live totals). */
export function fleetSeries(points: Point[], resolutionS: number): FleetSeries {
  const vramTotal = top(points, "vram_total_gb");
  const limit = top(points, "power_limit_watts");
  const hosts = top(points, "hosts");
  const v = scale(vramTotal, "GB", "TB");
  const w = scale(limit, "W", "kW");
  return {
    util: rows(points, resolutionS, UTIL, (p) => ({ mean: p.fleet?.util_mean, max: peak(p, "util_max") }), 1),
    vram: rows(points, resolutionS, VRAM, (p) => ({ used: per(p.fleet?.vram_used_gb, v.div), total: per(p.fleet?.vram_total_gb, v.div) }), 1),
    power: rows(points, resolutionS, POWER, (p) => ({ draw: per(p.fleet?.power_watts, w.div), limit: per(p.fleet?.power_limit_watts, w.div) }), 1),
    hosts: rows(points, resolutionS, HOSTS, (p) => ({ online: p.fleet?.online, hosts: p.fleet?.hosts }), 1),
    alerts: rows(points, resolutionS, ALERTS, (p) => ({ critical: peak(p, "alerts_critical"), warning: peak(p, "alerts_warning") }), 1),
    vramUnit: v.unit,
    powerUnit: w.unit,
    // Scaled to the capacity, not to the data: a quiet site must not fill the chart.
    vramMax: vramTotal > 0 ? axisTop(vramTotal / v.div) : undefined,
    powerMax: limit > 0 ? axisTop(limit / w.div) : undefined,
    hostsMax: hosts > 0 ? axisTop(hosts) : undefined,
  };
}

const NO_GPU = "No GPU reported this in the window";

function FleetChartsImpl({ history, resolutionS, range, now }: { history: Point[]; resolutionS: number; range: Range; now: number }) {
  const s = useMemo(() => fleetSeries(history, resolutionS), [history, resolutionS]);
  return (
    <SectionCard id="fleet-history" title={`Fleet over ${range}`} now={now}>
      <div className="grid grid-cols-1 gap-x-6 gap-y-4 md:grid-cols-2 xl:grid-cols-3">
        <Chart title="GPU utilization (%)" data={s.util} categories={UTIL} colors={UTIL_COLORS} minValue={0} maxValue={100} valueFormatter={pct0} emptyText={NO_GPU} />
        <Chart title={`VRAM (${s.vramUnit})`} data={s.vram} categories={VRAM} colors={VRAM_COLORS} minValue={0} maxValue={s.vramMax} valueFormatter={num1} emptyText={NO_GPU} />
        <Chart title={`Power (${s.powerUnit})`} data={s.power} categories={POWER} colors={POWER_COLORS} minValue={0} maxValue={s.powerMax} valueFormatter={num0} emptyText={NO_GPU} />
        <Chart title="Hosts" data={s.hosts} categories={HOSTS} colors={HOSTS_COLORS} minValue={0} maxValue={s.hostsMax} valueFormatter={num1} integer />
        <Chart title="Firing alerts" data={s.alerts} categories={ALERTS} colors={ALERT_COLORS} minValue={0} valueFormatter={num0} integer />
      </div>
    </SectionCard>
  );
}

/** The fleet's totals over the selected range, above the fleet table. */
export const FleetCharts = memo(FleetChartsImpl);
