import { describe, expect, it } from "vitest";
import { DEFAULT_THRESHOLDS, levelOf, powerLevel, scaleOf, thresholdsFromRules, type Rule } from "./thresholds";

const lv = (threshold: number) => ({ threshold, for: "1m0s" });
const rule = (name: string, metric: string, comparison: string, w: number | null, c: number | null, extra: Partial<Rule> = {}): Rule => ({
  name,
  metric,
  target: "gpu",
  comparison,
  ...(w === null ? {} : { warning: lv(w) }),
  ...(c === null ? {} : { critical: lv(c) }),
  ...extra,
});

describe("thresholdsFromRules", () => {
  it("maps each default rule name to its key, in both directions", () => {
    const t = thresholdsFromRules({
      rules: [
        rule("gpu_vram", "gpu_vram_percent", ">", 70, 80),
        rule("postgresql_cache_hit", "postgresql_cache_hit_ratio", "<", 95, 85),
        rule("nemotron_latency_p95", "model_latency_p95_ms", ">", 5000, 9000, { match: "nemotron" }),
        rule("containers_unhealthy", "containers_unhealthy", ">=", 2, 3),
      ],
    });
    expect(t.gpuVramPercent).toEqual({ warning: 70, critical: 80, direction: "above" });
    expect(t.pgCacheHit).toEqual({ warning: 95, critical: 85, direction: "below" });
    expect(t.nemotronP95Ms?.warning).toBe(5000);
    expect(t.rtdetrP95Ms).toEqual(DEFAULT_THRESHOLDS.rtdetrP95Ms);
    // ">=": the threshold itself breaches.
    expect(levelOf(2, t.containersUnhealthy)).toBe("warning");
    expect(levelOf(1, t.containersUnhealthy)).toBe("ok");
    expect(levelOf(3, t.containersUnhealthy)).toBe("critical");
    // Unlisted rules keep the defaults.
    expect(t.hostCpu).toEqual(DEFAULT_THRESHOLDS.hostCpu);
  });

  it("leaves a disabled rule uncoloured unless another rule on its metric replaces it", () => {
    const off = thresholdsFromRules({ rules: [{ name: "gpu_power_watts", metric: "gpu_power_no_limit", target: "gpu", comparison: ">", disabled: true }] });
    expect(off.gpuPowerWatts).toBeNull();
    expect(levelOf(1000, off.gpuPowerWatts)).toBe("ok");
    expect(scaleOf(off.gpuPowerWatts, 350)).toBe(350);

    const replaced = thresholdsFromRules({
      rules: [
        { name: "gpu_power_watts", metric: "gpu_power_no_limit", target: "gpu", comparison: ">", disabled: true },
        rule("gpu_power_one_card", "gpu_power_no_limit", ">", 100, 200, { match: "gpu0" }), // one GPU only: not for every bar
        rule("gpu_power_h200", "gpu_power_no_limit", ">", 600, 680),
      ],
    });
    expect(replaced.gpuPowerWatts).toEqual({ warning: 600, critical: 680, direction: "above" });
  });

  it("colours a one-level rule at that level only", () => {
    const t = thresholdsFromRules({ rules: [rule("host_cpu", "host_cpu_percent", ">", 70, null), rule("host_ram", "host_ram_percent", ">", null, 90)] });
    expect(levelOf(99, t.hostCpu)).toBe("warning");
    expect(levelOf(89, t.hostRamPercent)).toBe("ok");
    expect(levelOf(91, t.hostRamPercent)).toBe("critical");
    expect(scaleOf(t.hostCpu, 1)).toBe(70);
  });

  it("ignores what is not a rule and keeps the defaults for it", () => {
    expect(thresholdsFromRules(null)).toEqual(DEFAULT_THRESHOLDS);
    expect(thresholdsFromRules({ rules: "no" })).toEqual(DEFAULT_THRESHOLDS);
    const t = thresholdsFromRules({
      rules: [{ name: "gpu_power_watts" }, rule("gpu_temperature", "gpu_temperature", "~", 1, 2), rule("host_disk", "host_disk_percent", ">", null, null), { ...rule("host_ram", "host_ram_percent", ">", 1, 2), warning: { threshold: "x" } }],
    });
    expect(t.gpuPowerWatts).toEqual(DEFAULT_THRESHOLDS.gpuPowerWatts);
    expect(t.gpuTemperature).toEqual(DEFAULT_THRESHOLDS.gpuTemperature);
    expect(t.hostDiskPercent).toEqual(DEFAULT_THRESHOLDS.hostDiskPercent);
    // A bad warning leaves the valid critical: colour at it alone.
    expect(t.hostRamPercent).toEqual({ warning: 2, critical: 2, direction: "above" });
  });
});

describe("power colours (gpu_power on the share of the limit, gpu_power_watts without one)", () => {
  const serves = {
    rules: [rule("gpu_power", "gpu_power_percent", ">", 80, 95), rule("gpu_power_watts", "gpu_power_no_limit", ">", 200, 250)],
  };

  it("colours a 700 W card at 500 W (71 %) ok, at 650 W (93 %) warning and at 690 W (98.6 %) critical with the defaults", () => {
    expect(powerLevel(500, 700, DEFAULT_THRESHOLDS)).toEqual({ level: "ok", percent: (500 / 700) * 100 });
    expect(powerLevel(650, 700, DEFAULT_THRESHOLDS).level).toBe("warning");
    expect(powerLevel(690, 700, DEFAULT_THRESHOLDS).level).toBe("critical");
  });

  it("falls back to watts where the limit is unknown, scaled to the watts rule's critical level", () => {
    expect(powerLevel(320, null, DEFAULT_THRESHOLDS)).toEqual({ level: "warning", percent: (320 / 350) * 100 });
    expect(powerLevel(360, undefined, DEFAULT_THRESHOLDS).level).toBe("critical");
    expect(powerLevel(360, 0, DEFAULT_THRESHOLDS).level).toBe("critical");
    expect(powerLevel(null, 700, DEFAULT_THRESHOLDS)).toEqual({ level: "ok", percent: null });
  });

  it("takes both levels from the hub's rules when it serves them", () => {
    const t = thresholdsFromRules(serves);
    expect(t.gpuPowerPercent).toEqual({ warning: 80, critical: 95, direction: "above" });
    expect(powerLevel(600, 700, t).level).toBe("warning"); // 85.7 %
    expect(powerLevel(210, null, t).level).toBe("warning");
  });

  it("ignores an older hub's watts rule named gpu_power: a 700 W card at 500 W stays ok", () => {
    const t = thresholdsFromRules({ rules: [rule("gpu_power", "gpu_power", ">", 300, 350)] });
    expect(t.gpuPowerPercent).toEqual(DEFAULT_THRESHOLDS.gpuPowerPercent);
    expect(t.gpuPowerWatts).toEqual(DEFAULT_THRESHOLDS.gpuPowerWatts);
    expect(powerLevel(500, 700, t).level).toBe("ok");
  });
});
