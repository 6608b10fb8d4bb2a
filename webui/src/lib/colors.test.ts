import { describe, expect, it } from "vitest";
import { colorsFor, pick, SERIES_COLORS } from "./colors";

const gpuKeys = (hosts: number, per: number) => Array.from({ length: hosts * per }, (_, i) => `gpu-box-${Math.floor(i / per) + 1}#${i % per}`);

describe("colorsFor", () => {
  it("gives 16 series 16 different colours", () => {
    const keys = gpuKeys(2, 8);
    const c = colorsFor(keys);
    expect(new Set(keys.map((k) => c.get(k))).size).toBe(16);
    expect(new Set(SERIES_COLORS).size).toBe(16);
  });

  it("gives a key the same colour whatever order the chart lists the keys in", () => {
    const keys = ["gpu-box-2", "gpu-box-1", "db-host"];
    const a = colorsFor(keys);
    const b = colorsFor([...keys].reverse());
    for (const k of keys) expect(a.get(k)).toBe(b.get(k));
    expect(pick(a, ["gpu-box-1", "gpu-box-2"])).toEqual([b.get("gpu-box-1"), b.get("gpu-box-2")]);
  });

  it("keeps the colours of keys ordered before one that joins, in natural order", () => {
    const before = colorsFor(["gpu-box-1#0", "gpu-box-1#2"]);
    const after = colorsFor(["gpu-box-1#10", "gpu-box-1#0", "gpu-box-1#2"]);
    expect(after.get("gpu-box-1#0")).toBe(before.get("gpu-box-1#0"));
    expect(after.get("gpu-box-1#2")).toBe(before.get("gpu-box-1#2"));
  });

  it("gives two hosts the two most different colours", () => {
    expect([...colorsFor(["gpu-box-2", "gpu-box-1"]).entries()]).toEqual([
      ["gpu-box-1", SERIES_COLORS[0]],
      ["gpu-box-2", SERIES_COLORS[1]],
    ]);
  });

  it("repeats colours only past 16 keys, and gives an unknown key grey", () => {
    const c = colorsFor(gpuKeys(3, 8));
    expect(c.size).toBe(24);
    expect(pick(c, ["nope"])).toEqual(["gray-500"]);
  });
});
