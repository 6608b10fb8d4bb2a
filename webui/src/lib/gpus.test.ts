import { describe, expect, it } from "vitest";
import { manyGpus, update } from "../test/fixtures";
import type { GPUView, Point } from "../types";
import { activeThrottle, byVram, gpuHeadroom, hostHeadroom, modelsByHost, throttleName, vramSplit } from "./gpus";

const gpu = (over: Partial<GPUView> = {}): GPUView => ({
  host: "h1",
  index: 0,
  name: "NVIDIA H100",
  utilization: 50,
  vram_used_gb: 50,
  vram_total_gb: 80,
  temperature: 50,
  power_watts: 400,
  power_limit_watts: 700,
  ...over,
});

const point = (ts: string, gpus: GPUView[], max?: Record<string, number>): Point => ({ timestamp: ts, gpus, ...(max ? { max } : {}) });

describe("vramSplit", () => {
  it("splits used VRAM into the models' processes and the rest, and says what is free", () => {
    const s = vramSplit(update().gpus![0]!);
    expect(s.models.map((m) => m.model)).toEqual(["nemotron-mini-4b", "rtdetr_r50vd_coco_o365"]);
    expect(s.modelGb).toBeCloseTo(22.07);
    expect(s.otherGb).toBeCloseTo(0.63);
    expect(s.freeGb).toBeCloseTo(1.3);
  });

  it("counts processes of no model as other, and never lets other go negative", () => {
    const s = vramSplit(gpu({ vram_used_gb: 10, processes: [{ pid: 1, vram_gb: 11, sm_percent: 5, model: "a" }, { pid: 2, vram_gb: 3, sm_percent: null }] }));
    expect(s.modelGb).toBe(11);
    expect(s.otherGb).toBe(0);
  });

  it("has no free figure without a total", () => {
    expect(vramSplit(gpu({ vram_total_gb: null })).freeGb).toBeNull();
    expect(vramSplit(gpu({ vram_used_gb: null })).usedGb).toBeNull();
  });
});

describe("byVram", () => {
  it("orders processes by VRAM, largest first, those without a figure last", () => {
    const list = byVram([
      { pid: 3, vram_gb: null, sm_percent: null },
      { pid: 1, vram_gb: 2, sm_percent: null },
      { pid: 2, vram_gb: 9, sm_percent: null },
    ]);
    expect(list.map((p) => p.pid)).toEqual([2, 1, 3]);
  });
});

describe("modelsByHost", () => {
  it("keeps each host's models apart and adds up to the processes' VRAM on that host", () => {
    const u = manyGpus();
    const views = modelsByHost(u, u.gpus!);
    expect(views.map((v) => v.host)).toEqual(["gpu-box-1", "gpu-box-2"]);
    for (const v of views) {
      const own = u.gpus!.filter((g) => g.host === v.host).flatMap((g) => g.processes ?? []).reduce((s, p) => s + (p.vram_gb ?? 0), 0);
      expect(v.processVramGb).toBeCloseTo(own);
      expect(v.rows.reduce((s, r) => s + r.vramGb, 0)).toBeCloseTo(own);
      // model-0 runs on GPUs 0 and 2 of each host: 30 + 32 GB, not both hosts' 124 GB.
      expect(v.rows.find((r) => r.model === "model-0")).toMatchObject({ vramGb: 62, processes: 2 });
      expect(v.rows.find((r) => r.model === "model-0")!.gpus.map((x) => x.index)).toEqual([0, 2]);
    }
  });

  it("estimates power as SM share × board power, and keeps the server's own VRAM figure apart", () => {
    const u = update();
    const [v] = modelsByHost(u, u.gpus!);
    const llm = v!.rows.find((r) => r.model === "nemotron-mini-4b")!;
    expect(llm.smPercent).toBe(24);
    expect(llm.powerW).toBeCloseTo(0.24 * 31);
    const rt = v!.rows.find((r) => r.model === "rtdetr_r50vd_coco_o365")!;
    expect(rt.vramGb).toBeCloseTo(0.17);
    expect(rt.serverVramGb).toBe(0.17);
    expect(rt.server).toBe("rtdetr");
    expect(llm.serverVramGb).toBeNull();
  });

  it("lists processes of no model on their own row, last, with no estimate when SM is unknown", () => {
    const [v] = modelsByHost(update(), [gpu({ processes: [{ pid: 1, vram_gb: 1, sm_percent: null }, { pid: 2, vram_gb: 5, sm_percent: 50, model: "m" }] })]);
    expect(v!.rows.map((r) => r.model)).toEqual(["m", null]);
    expect(v!.rows[1]!.powerW).toBeNull();
    expect(v!.rows[0]!.powerW).toBe(200);
  });
});

describe("headroom", () => {
  const g0 = gpu({ index: 0, vram_used_gb: 50 });
  const g1 = gpu({ index: 1, vram_used_gb: 20 });
  const history = [
    point("2026-12-01T11:00:00Z", [gpu({ index: 0, vram_used_gb: 40 }), gpu({ index: 1, vram_used_gb: 20 })], { "gpus.h1.0.vram_used_gb": 70, "gpus.h1.1.vram_used_gb": 25 }),
    point("2026-12-01T11:01:00Z", [gpu({ index: 0, vram_used_gb: 45 })]),
    point("2026-12-01T11:02:00Z", [gpu({ index: 0, vram_used_gb: 48 }), gpu({ index: 1, vram_used_gb: 20 })]),
  ];

  it("takes a GPU's low point from the slots' peak use, and its trend from the first slot", () => {
    const h = gpuHeadroom(g0, history);
    expect(h).toEqual({ freeGb: 30, totalGb: 80, lowGb: 10, trendGb: 10 });
    expect(gpuHeadroom(g0, []).lowGb).toBe(30);
    expect(gpuHeadroom(gpu({ vram_total_gb: null }), history)).toMatchObject({ freeGb: null, lowGb: null });
  });

  it("sums a host's free VRAM, its low point over slots where every GPU reported, and the largest fit on one GPU", () => {
    const h = hostHeadroom("h1", [g0, g1], history);
    expect(h.freeGb).toBe(90);
    expect(h.totalGb).toBe(160);
    // slot 1: (80-70) + (80-25) = 65; slot 2 lacks GPU 1; slot 3: 32 + 60 = 92
    expect(h.lowGb).toBe(65);
    expect(h.largestFitGb).toBe(60);
    expect(h.largestFitIndex).toBe(1);
    expect(h.trendGb).toBe(10);
  });

  it("has no figures without data", () => {
    const h = hostHeadroom("h1", [gpu({ vram_used_gb: null, vram_total_gb: null })], []);
    expect(h).toMatchObject({ freeGb: null, lowGb: null, largestFitGb: null, trendGb: null });
  });
});

describe("throttle reasons", () => {
  it("leaves out idle and names the rest", () => {
    expect(activeThrottle(["gpu_idle"])).toEqual([]);
    expect(activeThrottle(["gpu_idle", "hw_thermal_slowdown"])).toEqual(["hw_thermal_slowdown"]);
    expect(throttleName("hw_power_brake")).toBe("hardware power brake");
    expect(throttleName("bit_63")).toBe("bit 63");
  });
});
