import { describe, expect, it } from "vitest";
import { isolated, linePath, niceTicks, xLabelSlots } from "../TimeChart";

describe("niceTicks", () => {
  it.each([
    { lo: 0, hi: 100, want: [0, 25, 50, 75, 100] },
    { lo: 20, hi: 74, want: [20, 40, 60, 80] },
    { lo: 0, hi: 5, want: [0, 2, 4, 6] },
    { lo: 40, hi: 79, want: [40, 50, 60, 70, 80] },
    { lo: 0, hi: 1.44, want: [0, 0.5, 1, 1.5] },
  ])("covers $lo..$hi with nice steps", ({ lo, hi, want }) => {
    expect(niceTicks(lo, hi)).toEqual(want);
  });

  it("spreads a flat series around its value instead of dividing by zero", () => {
    const t = niceTicks(8.2, 8.2);
    expect(t[0]!).toBeLessThan(8.2);
    expect(t[t.length - 1]!).toBeGreaterThan(8.2);
  });
});

describe("linePath", () => {
  const x = (i: number) => i * 10;
  const y = (v: number) => 100 - v;
  it("breaks the line at a missing value instead of drawing it as zero", () => {
    expect(linePath([1, 2, null, 4], x, y)).toBe("M0.0,99.0L10.0,98.0M30.0,96.0");
  });
  it("draws nothing for a series without values", () => {
    expect(linePath([null, null], x, y)).toBe("");
  });
});

describe("xLabelSlots", () => {
  it("labels the first slot and spaces the rest so they fit", () => {
    expect(xLabelSlots(60, 540)).toEqual([0, 10, 20, 30, 40, 50]);
    expect(xLabelSlots(3, 1000)).toEqual([0, 1, 2]);
    expect(xLabelSlots(0, 500)).toEqual([]);
  });
});

describe("isolated", () => {
  it("finds values no segment joins, so they can be drawn as dots", () => {
    expect(isolated([5])).toEqual([0]);
    expect(isolated([1, null, 3, 4, null, 6])).toEqual([0, 5]);
    expect(isolated([1, 2])).toEqual([]);
  });
});
