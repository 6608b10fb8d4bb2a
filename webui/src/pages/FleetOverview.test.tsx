// The fleet overview's charts against the hub's fleet view (the golden
// fleet.gen.json): what each chart is handed from the fleet history, the
// live fleet_update after it and a range switch; and that the fleet's
// history never reaches a host's page.
import { act, render } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import type { ChartProps } from "../components/system/common";
import type { Options } from "../hooks/usePerformanceMetrics";
import { FakeWebSocket } from "../test/fakeWebSocket";
import { fleetGolden, history, update } from "../test/fixtures";
import { soloSocket } from "../test/soloSocket";

// Each chart's latest props by title, instead of Recharts' drawing (jsdom
// has no layout).
const drawn = new Map<string, ChartProps>();
vi.mock("../components/system/common", async (importOriginal) => {
  const real = await importOriginal<typeof import("../components/system/common")>();
  return {
    ...real,
    Chart: (p: ChartProps) => {
      drawn.set(p.title, p);
      return <figure data-chart={p.title} />;
    },
  };
});

const options: Options = { url: "ws://hub.test/ws/system", WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket, random: () => 1 };
const fleetSocket = () => FakeWebSocket.instances.find((s) => s.url.endsWith("?view=fleet"))!;
const series = (title: string, ...cats: string[]) => drawn.get(title)!.data.map((r) => cats.map((c) => r[c]));
const filled = (title: string, cat: string) => drawn.get(title)!.data.filter((r) => typeof r[cat] === "number").length;

beforeEach(() => {
  FakeWebSocket.reset();
  drawn.clear();
  window.history.replaceState(null, "", "/");
});
afterEach(() => FakeWebSocket.reset());

describe("fleet overview charts", () => {
  it("draw the fleet's history, append each fleet_update's totals, and a range switch replaces the history", async () => {
    const g = fleetGolden();
    render(<App options={options} />);
    const fws = fleetSocket();
    act(() => {
      fws.open();
      fws.message(g.history);
      fws.message(g.update);
    });
    // Two hosts: the overview, its charts above the table.
    const section = document.querySelector("[data-section=fleet-history]")!;
    expect(section.compareDocumentPosition(document.querySelector("[data-section=fleet]")!) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
    await vi.waitFor(() => expect(filled("GPU utilization (%)", "mean")).toBe(4));
    expect(series("GPU utilization (%)", "mean", "max").slice(-4)).toEqual([
      [23.3, 40],
      [36.7, 70],
      [36.7, 60],
      [50, 80],
    ]);
    expect(series("VRAM (GB)", "used", "total").at(-1)).toEqual([108, 184]);
    expect(series("Power (W)", "draw", "limit").at(-1)).toEqual([900, 1630]);
    expect(series("Hosts", "online", "hosts").at(-1)).toEqual([1, 2]);
    expect(series("Firing alerts", "critical", "warning").slice(-4)).toEqual([
      [0, 1],
      [1, 1],
      [1, 1],
      [0, 1],
    ]);

    // A later update in the same slot replaces that slot's figures; one in
    // the next slot adds a point.
    const next = (ts: string, um: number) => ({ ...g.update, timestamp: ts, totals: { ...g.update.totals, util_mean: um } });
    act(() => fws.message(next("2026-12-03T15:40:17Z", 55)));
    await vi.waitFor(() => expect(series("GPU utilization (%)", "mean").at(-1)).toEqual([55]));
    expect(filled("GPU utilization (%)", "mean")).toBe(4);
    act(() => fws.message(next("2026-12-03T15:40:20Z", 65)));
    await vi.waitFor(() => expect(filled("GPU utilization (%)", "mean")).toBe(5));
    expect(series("GPU utilization (%)", "mean").slice(-2)).toEqual([[55], [65]]);

    // 15m: the fleet socket asks for it (its view kept) and its history
    // replaces the 5m points.
    const tab = [...document.querySelectorAll("[role=tab]")].find((t) => t.textContent === "15m") as HTMLElement;
    act(() => tab.click());
    expect(JSON.parse(fws.sent.at(-1)!)).toEqual({ type: "subscribe", range: "15m" });
    expect(section).toHaveTextContent("Fleet over 15m");
    const h15 = { ...g.history, range: "15m", resolution_s: 15, points: [{ timestamp: "2026-12-03T15:39:45Z", fleet: { util_mean: 12, util_max: 30 } }] };
    act(() => fws.message(h15));
    await vi.waitFor(() => expect(filled("GPU utilization (%)", "mean")).toBe(1));
    expect(series("GPU utilization (%)", "mean", "max")).toEqual([[12, 30]]);
  });

  it("keep the fleet's history off the one-host page, which draws its own host's", async () => {
    render(<App options={options} />);
    const ws = soloSocket();
    const fws = fleetSocket();
    act(() => {
      ws.open();
      ws.message(history("5m", 12));
      ws.message({ ...update(), type: "performance_update" });
      // The fleet view stays open on the one-host page and gets its history too.
      fws.message(fleetGolden().history);
    });
    expect(document.querySelector("[data-section=fleet-history]")).toBeNull();
    // The host's 12 points (CPU 10..21 %), the last slot's replaced by its
    // update (12 %): no fleet point among them.
    await vi.waitFor(() => expect(series("CPU (%)", "gpu-box-1").at(-1)).toEqual([12]));
    expect(drawn.get("CPU (%)")!.data).toHaveLength(12);
    expect(series("CPU (%)", "gpu-box-1").slice(0, 2)).toEqual([[10], [11]]);
    expect(drawn.has("GPU utilization (%)")).toBe(false);
  });
});
