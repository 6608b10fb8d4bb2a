import { render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { fleetPoint, mergeLive } from "../../../lib/buffers";
import { fleetGolden, T0 } from "../../../test/fixtures";
import type { FleetUpdate, Point } from "../../../types";
import { FleetCharts, fleetSeries } from "../FleetCharts";

// The golden fleet view (internal/server's TestGoldenFleet): slots
// 15:40:00, :05 and :10 of a 5m history, then the live update of :15.
const tail = <T,>(xs: T[], n: number) => xs.slice(-n);

function historyAndLive(): Point[] {
  const g = fleetGolden();
  return mergeLive({ resolutionS: 5, points: g.history.points ?? [] }, fleetPoint(g.update)).points;
}

describe("fleetPoint", () => {
  it("reads a fleet_update's totals as a history point, the busiest GPU among them", () => {
    const p = fleetPoint(fleetGolden().update);
    expect(p).toEqual({
      timestamp: "2026-12-03T15:40:15Z",
      fleet: {
        hosts: 2,
        online: 1,
        gpus: 3,
        util_mean: 50,
        util_max: 80,
        vram_used_gb: 108,
        vram_total_gb: 184,
        power_watts: 900,
        power_limit_watts: 1630,
        alerts_critical: 0,
        alerts_warning: 1,
      },
    });
  });

  it("takes the busiest GPU from the totals' util_max, not the rows' rounded ux, and the charts' max series ends on it", () => {
    const g = fleetGolden();
    // The hub's totals keep one decimal; every row's ux is a whole number.
    const update: FleetUpdate = { ...g.update, totals: { ...g.update.totals, util_max: 80.4 } };
    expect(fleetPoint(update).fleet?.util_max).toBe(80.4);
    const points = mergeLive({ resolutionS: 5, points: g.history.points ?? [] }, fleetPoint(update)).points;
    expect(tail(fleetSeries(points, 5).util, 1)[0]).toMatchObject({ mean: 50, max: 80.4 });
    // A site no GPU reports utilization for draws a gap, whatever the rows say.
    const none: FleetUpdate = { ...g.update, totals: { ...g.update.totals, util_max: undefined } };
    expect(fleetPoint(none).fleet).not.toHaveProperty("util_max");
  });

  it("leaves out what no GPU reported rather than drawing 0", () => {
    const f: FleetUpdate = { type: "fleet_update", timestamp: "2026-12-03T15:40:15Z", hosts: [{ h: "cpu-only", ago: 1, g: 0 }], totals: { hosts: 1, online: 1, gpus: 0, alerts_critical: 0, alerts_warning: 0 } };
    expect(fleetPoint(f).fleet).toEqual({ hosts: 1, online: 1, gpus: 0, alerts_critical: 0, alerts_warning: 0 });
  });
});

describe("fleetSeries", () => {
  it("draws the hub's fleet history then the live totals: mean and the slot's peak, used vs total, draw vs limit", () => {
    const points = historyAndLive();
    expect(points).toHaveLength(60);
    const s = fleetSeries(points, 5);
    expect(s.util).toHaveLength(60);
    // Slot :05 held util 30 then 50: its mean is 36.7, its busiest GPU peaked at 70.
    expect(tail(s.util, 4).map((r) => [r.mean, r.max])).toEqual([
      [23.3, 40],
      [36.7, 70],
      [36.7, 60],
      [50, 80],
    ]);
    // Slots before the site's first update are gaps, never zero.
    expect(s.util[0]).toMatchObject({ mean: null, max: null });
    expect(tail(s.vram, 1)[0]).toMatchObject({ used: 108, total: 184 });
    expect(tail(s.power, 1)[0]).toMatchObject({ draw: 900, limit: 1630 });
    expect(tail(s.hosts, 1)[0]).toMatchObject({ online: 1, hosts: 2 });
    // The critical alert fired within slot :05 (a mean of 0.5): its peak shows.
    expect(tail(s.alerts, 4).map((r) => [r.critical, r.warning])).toEqual([
      [0, 1],
      [1, 1],
      [1, 1],
      [0, 1],
    ]);
    expect([s.vramUnit, s.powerUnit, s.vramMax, s.powerMax]).toEqual(["GB", "W", 200, 2000]);
  });

  it("says a site's sums in TB and kW once they pass ten thousand", () => {
    const p: Point = { timestamp: "2026-12-03T15:40:00Z", fleet: { vram_used_gb: 51_200, vram_total_gb: 112_800, power_watts: 420_000, power_limit_watts: 560_000 } };
    const s = fleetSeries([p], 5);
    expect([s.vramUnit, s.powerUnit]).toEqual(["TB", "kW"]);
    expect(s.vram[0]).toMatchObject({ used: 51.2, total: 112.8 });
    expect(s.power[0]).toMatchObject({ draw: 420, limit: 560 });
  });
});

describe("FleetCharts", () => {
  it("shows five charts of the fleet with data", () => {
    render(<FleetCharts history={historyAndLive()} resolutionS={5} range="5m" now={T0} />);
    const section = document.querySelector("[data-section=fleet-history]")!;
    expect(section).toHaveTextContent("Fleet over 5m");
    const charts = [...section.querySelectorAll("figure[data-chart]")];
    expect(charts.map((c) => c.getAttribute("data-chart"))).toEqual(["GPU utilization (%)", "VRAM (GB)", "Power (W)", "Hosts", "Firing alerts"]);
    for (const c of charts) expect(c).not.toHaveAttribute("data-empty");
  });

  it("says so, chart by chart, before any history", () => {
    render(<FleetCharts history={[]} resolutionS={5} range="15m" now={T0} />);
    expect(document.querySelectorAll("figure[data-chart][data-empty]")).toHaveLength(5);
  });
});
