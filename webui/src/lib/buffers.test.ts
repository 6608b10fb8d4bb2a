import { describe, expect, it } from "vitest";
import type { Point } from "../types";
import { fromHistory, mergeLive } from "./buffers";

const T0 = Date.parse("2026-12-01T12:00:00Z");
const pt = (offsetS: number, cpu: number): Point => ({
  timestamp: new Date(T0 + offsetS * 1000).toISOString(),
  host: { cpu_percent: cpu, ram_used_gb: null, ram_total_gb: null, disk_used_gb: null, disk_total_gb: null },
});

describe("mergeLive", () => {
  it("appends a point in a new slot, replaces one in the newest slot, ignores an older one", () => {
    let b = { resolutionS: 15, points: [pt(0, 1)] };
    b = mergeLive(b, pt(7, 2));
    expect(b.points.map((p) => p.host?.cpu_percent)).toEqual([2]);
    b = mergeLive(b, pt(15, 3));
    expect(b.points.map((p) => p.host?.cpu_percent)).toEqual([2, 3]);
    expect(b.points[1]!.timestamp).toBe(new Date(T0 + 15_000).toISOString());
    const same = mergeLive(b, pt(-30, 9));
    expect(same).toBe(b);
  });

  it("keeps at most 60 points and drops those older than the window after a gap", () => {
    let b = { resolutionS: 5, points: [] as Point[] };
    for (let i = 0; i < 70; i++) b = mergeLive(b, pt(i * 5, i));
    expect(b.points).toHaveLength(60);
    expect(b.points[0]!.host?.cpu_percent).toBe(10);
    // the hub was away for 4 minutes: only points within the last 60 slots stay
    b = mergeLive(b, pt(69 * 5 + 240, 99));
    expect(b.points).toHaveLength(60 - 48 + 1);
    expect(b.points.at(-1)!.host?.cpu_percent).toBe(99);
  });

  it("reads a history message, trimming to 60 and skipping bad timestamps", () => {
    const points = Array.from({ length: 65 }, (_, i) => pt(i * 60, i));
    points[64] = { timestamp: "not a time" };
    const b = fromHistory({ range: "60m", resolution_s: 60, points }, 60);
    expect(b.points).toHaveLength(60);
    expect(b.points.at(-1)!.host?.cpu_percent).toBe(63);
    expect(fromHistory({ range: "5m", resolution_s: 0, points: null }, 5)).toEqual({ resolutionS: 5, points: [] });
  });
});
