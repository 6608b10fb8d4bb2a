import { describe, expect, it } from "vitest";
import { axisTop } from "./series";

describe("axisTop", () => {
  it.each([
    [80, 80], // H100 VRAM: 0/20/40/60/80
    [24, 24], // RTX A5500: 0/6/12/18/24
    [141, 160], // H200: 0/40/…/160
    [700, 800], // H100 power limit: 0/200/…/800
    [230, 240],
    [32, 32],
    [512, 600],
    [0.5, 0.6],
  ])("puts the axis for a total of %d at %d, four round steps", (total, top) => {
    expect(axisTop(total)).toBe(top);
    expect(axisTop(total)).toBeGreaterThanOrEqual(total);
  });

  it("falls back to 1 for a total it cannot use", () => {
    expect(axisTop(0)).toBe(1);
    expect(axisTop(Number.NaN)).toBe(1);
  });
});
