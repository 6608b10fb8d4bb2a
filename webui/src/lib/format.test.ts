import { describe, expect, it } from "vitest";
import { ago, axisTime, DASH, fmt, fmtGB, fmtMs, meansNoGpu, readableGpuError } from "./format";
import { levelOf, percentOf, THRESHOLDS } from "./thresholds";

describe("format", () => {
  it("never turns an absent value into 0", () => {
    for (const v of [null, undefined, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(fmt(v as number | null)).toBe(DASH);
      expect(fmtMs(v as number | null)).toBe(DASH);
      expect(fmtGB(v as number | null)).toBe(DASH);
    }
    expect(fmt(0, 0, "%")).toBe("0%");
  });

  it("formats units the dashboard uses", () => {
    expect(fmt(1200)).toBe("1,200");
    expect(fmt(98.24, 1, "%")).toBe("98.2%");
    expect(fmt(31, 0, "W")).toBe("31 W");
    expect(fmt(38, 0, "°C")).toBe("38°C");
    expect(fmtMs(45)).toBe("45 ms");
    expect(fmtMs(2100)).toBe("2.1 s");
    expect(fmtMs(4.25)).toBe("4.3 ms");
    expect(fmtGB(22.66)).toBe("22.7");
    expect(fmtGB(156.2)).toBe("156");
  });

  it("says how long ago, in the largest sensible unit", () => {
    const now = Date.parse("2026-12-01T12:00:00Z");
    expect(ago(now, now)).toBe("just now");
    expect(ago(now - 3_000, now)).toBe("3 s ago");
    expect(ago(new Date(now - 120_000).toISOString(), now)).toBe("2 min ago");
    expect(ago(now - 3 * 3600_000, now)).toBe("3 h ago");
    expect(ago(now - 72 * 3600_000, now)).toBe("3 d ago");
    expect(ago(null, now)).toBe("never");
    expect(ago("0001-01-01T00:00:00Z", now)).toBe("never"); // Go's zero time
  });

  it("reads NVML errors", () => {
    expect(readableGpuError("NVML unavailable: ERROR_LIBRARY_NOT_FOUND")).toBe("NVML: library not found");
    expect(meansNoGpu("NVML unavailable: ERROR_LIBRARY_NOT_FOUND")).toBe(true);
    expect(meansNoGpu("NVML unavailable: ERROR_NO_PERMISSION")).toBe(false);
  });
});

describe("thresholds", () => {
  it("mirrors the seed's table in both directions", () => {
    expect(levelOf(80, THRESHOLDS.hostCpu)).toBe("ok");
    expect(levelOf(80.1, THRESHOLDS.hostCpu)).toBe("warning");
    expect(levelOf(95.1, THRESHOLDS.hostCpu)).toBe("critical");
    expect(levelOf(95, THRESHOLDS.pgCacheHit)).toBe("ok");
    expect(levelOf(85, THRESHOLDS.pgCacheHit)).toBe("warning");
    expect(levelOf(79, THRESHOLDS.pgCacheHit)).toBe("critical");
    expect(levelOf(null, THRESHOLDS.hostCpu)).toBe("ok");
    expect(percentOf(22.7, 24)).toBeCloseTo(94.58, 2);
    expect(percentOf(1, 0)).toBeNull();
    expect(percentOf(null, 24)).toBeNull();
  });
});

describe("axisTime", () => {
  const hms = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const hm = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });
  it.each(["2026-12-01T00:00:00Z", "2026-12-01T09:05:07Z", "2026-12-01T13:59:59.900Z", "2026-06-30T23:00:01Z"])("writes %s as the page's 24-hour clock", (ts) => {
    expect(axisTime(ts, true)).toBe(hms.format(new Date(ts)));
    expect(axisTime(ts, false)).toBe(hm.format(new Date(ts)));
  });
  it("gives an empty label for a timestamp it cannot read", () => {
    expect(axisTime("not a time", true)).toBe("");
  });
  it("puts the day before the clock for a week's window", () => {
    const d = new Date("2026-12-03T14:24:00Z");
    expect(axisTime(d.toISOString(), false, true)).toBe(`${d.getDate()}/${d.getMonth() + 1} ${hm.format(d)}`);
  });
});
