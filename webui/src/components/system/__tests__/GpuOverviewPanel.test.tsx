import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { manyGpus, noGpu, points, staleHost, T0, update } from "../../../test/fixtures";
import type { GPUView, Update } from "../../../types";
import { GpuOverviewPanel, gpuErrors, noGpuText } from "../GpuOverviewPanel";

const props = (u = update()) => ({ update: u, history: points(12, 5, u), resolutionS: 5, now: T0 });

describe("GpuOverviewPanel", () => {
  it("shows name, utilization, VRAM, temperature and power of the GPU, and four charts", () => {
    render(<GpuOverviewPanel {...props()} />);
    const card = screen.getByRole("article", { name: /GPU 0: NVIDIA RTX A5500/ });
    expect(within(card).getByTestId("gpu-util")).toHaveTextContent("38%");
    expect(within(card).getByTestId("gpu-vram")).toHaveTextContent("22.7 / 24.0 GB");
    expect(within(card).getByTestId("gpu-temp")).toHaveTextContent("38°C");
    expect(within(card).getByTestId("gpu-power")).toHaveTextContent("31 W/ 230 W");
    const charts = document.querySelectorAll("figure[data-chart]");
    expect([...charts].map((c) => c.getAttribute("data-chart"))).toEqual(["Utilization (%)", "VRAM used (GB)", "Temperature (°C)", "Power (W)"]);
    expect(screen.queryByText(/No samples in this window/)).toBeNull();
    expect(screen.getByText("via agent on gpu-box-1")).toBeInTheDocument();
  });

  it("colours VRAM by the alert thresholds: 22.7 of 24 GB is 94.6 %, over the 90 % warning", () => {
    render(<GpuOverviewPanel {...props()} />);
    expect(screen.getByTestId("gpu-vram")).toHaveAttribute("data-level", "warning");
    expect(screen.getByTestId("gpu-temp")).toHaveAttribute("data-level", "ok");
    const u = update();
    u.gpus![0]!.temperature = 90;
    render(<GpuOverviewPanel {...props(u)} />);
    expect(screen.getAllByTestId("gpu-temp")[1]).toHaveAttribute("data-level", "critical");
  });

  it("says there is no NVIDIA GPU, from the NVML error, and draws no chart", () => {
    render(<GpuOverviewPanel {...props(noGpu())} />);
    expect(screen.getByText("No NVIDIA GPU detected — NVML: library not found")).toBeInTheDocument();
    expect(screen.getByText(/Reported by the agent on gpu-box-1/)).toBeInTheDocument();
    expect(document.querySelectorAll("figure[data-chart]")).toHaveLength(0);
    expect(screen.queryAllByTestId("gpu-card")).toHaveLength(0);
  });

  it("derives readable text from other NVML errors", () => {
    expect(noGpuText("NVML unavailable: ERROR_DRIVER_NOT_LOADED")).toBe("No NVIDIA GPU detected — NVML: driver not loaded");
    expect(noGpuText("NVML unavailable: ERROR_NO_PERMISSION")).toBe("GPU data unavailable — NVML: no permission to open the device");
    expect(noGpuText("nvml init: ERROR_SOME_NEW_THING")).toBe("GPU data unavailable — NVML: some new thing");
    expect(noGpuText("device query timed out")).toBe("GPU data unavailable — device query timed out");
  });

  it("lays out 8 GPUs on 2 hosts as a grid and names each by host", () => {
    render(<GpuOverviewPanel {...props(manyGpus())} />);
    expect(screen.getAllByTestId("gpu-card")).toHaveLength(8);
    expect(screen.getByRole("article", { name: /gpu-box-2 · GPU 3/ })).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: /GPU overview \(8\)/i })).toBeInTheDocument();
  });

  it("marks a stale GPU with when its host was last seen", () => {
    render(<GpuOverviewPanel {...props(staleHost())} />);
    // once on the section (update.stale.gpu), once on the card (gpus[].stale)
    expect(screen.getAllByText("stale — last seen 2 min ago")).toHaveLength(2);
  });

  it("says so when the window has no samples instead of drawing an empty chart", () => {
    render(<GpuOverviewPanel {...props()} history={[{ timestamp: new Date(T0).toISOString() }]} />);
    expect(screen.getAllByText("No samples in this window yet")).toHaveLength(4);
  });

  // ---- issue 12: ownership, headroom, clocks, power against the limit ----

  it("lists the GPU's processes largest first, with model, name, container, pid, VRAM and SM share", () => {
    render(<GpuOverviewPanel {...props()} />);
    const card = screen.getByTestId("gpu-card");
    expect(within(card).getByTestId("gpu-models")).toHaveTextContent("held by nemotron-mini-4b, rtdetr_r50vd_coco_o365");
    const rows = within(card).getAllByTestId("gpu-proc");
    expect(rows.map((r) => r.dataset.pid)).toEqual(["4388", "4121"]);
    expect(rows[0]).toHaveTextContent("nemotron-mini-4b · llama-server in ai-llm · pid 4388");
    expect(rows[0]).toHaveTextContent("21.9 GB · SM 24%");
    expect(rows[1]).toHaveTextContent("0.2 GB · SM 12%");
  });

  it("folds processes past three under '+N more'", () => {
    const u = update();
    u.gpus![0]!.processes = Array.from({ length: 5 }, (_, i) => ({ pid: 100 + i, name: "python3", vram_gb: i + 1, sm_percent: 10, model: "m" }));
    render(<GpuOverviewPanel {...props(u)} />);
    const procs = screen.getByTestId("gpu-procs");
    expect(within(procs).getByText("+2 more")).toBeInTheDocument();
    const rows = within(procs).getAllByTestId("gpu-proc");
    expect(rows.map((r) => r.dataset.pid)).toEqual(["104", "103", "102", "101", "100"]);
    expect(rows[3]!.closest("details")).not.toBeNull();
    expect(rows[0]!.closest("details")).toBeNull();
  });

  it("splits the VRAM bar into each model, other processes and driver, and free, labelled", () => {
    render(<GpuOverviewPanel {...props()} />);
    const vram = screen.getByTestId("gpu-vram");
    const segs = [...vram.querySelectorAll("[data-segment]")] as HTMLElement[];
    expect(segs.map((x) => x.dataset.segment)).toEqual(["model", "model", "other"]);
    expect(segs[0]!.style.width).toBe(`${(21.9 / 24) * 100}%`);
    expect(parseFloat(segs[2]!.style.width)).toBeCloseTo((0.63 / 24) * 100);
    expect(screen.getByTestId("gpu-vram-split")).toHaveTextContent("nemotron-mini-4b 21.9");
    expect(screen.getByTestId("gpu-vram-split")).toHaveTextContent("other 0.6");
    expect(screen.getByTestId("gpu-vram-split")).toHaveTextContent("free 1.3 GB");
  });

  it("shows clocks, P-state and fan, and highlights a throttle reason other than idle by name", () => {
    const u = update();
    Object.assign(u.gpus![0]!, { sm_clock_mhz: 1410, mem_clock_mhz: 8001, pstate: 2, fan_percent: 30, throttle_reasons: ["gpu_idle"] });
    render(<GpuOverviewPanel {...props(u)} />);
    expect(screen.getByTestId("gpu-clocks")).toHaveTextContent("SM 1,410 MHz · mem 8,001 MHz · P2 · fan 30%");
    expect(screen.getByTestId("gpu-throttle")).toHaveAttribute("data-throttled", "false");
    expect(screen.getByTestId("gpu-throttle")).toHaveTextContent("idle clocks");

    const hot = update();
    Object.assign(hot.gpus![0]!, { sm_clock_mhz: 900, throttle_reasons: ["hw_thermal_slowdown", "sw_power_cap"] });
    render(<GpuOverviewPanel {...props(hot)} />);
    const t = screen.getAllByTestId("gpu-throttle")[1]!;
    expect(t).toHaveAttribute("data-throttled", "true");
    expect(t).toHaveTextContent("throttled: hardware thermal slowdown, software power cap");
    expect(t.className).toMatch(/amber/);
  });

  it("colours power against the card's limit: a 700 W card at 500 W is ok, at 690 W critical; watts without a limit", () => {
    const u = manyGpus(1, 3);
    u.gpus![0]!.power_watts = 500;
    u.gpus![1]!.power_watts = 690;
    u.gpus![2]!.power_watts = 320;
    delete u.gpus![2]!.power_limit_watts;
    render(<GpuOverviewPanel {...props(u)} />);
    const power = screen.getAllByTestId("gpu-power");
    expect(power.map((p) => p.dataset.level)).toEqual(["ok", "critical", "warning"]);
    expect(power[0]).toHaveTextContent("500 W/ 700 W (71%)");
    expect(power[2]).toHaveTextContent("320 Wno limit known");
  });

  it("says each GPU's headroom: free now and the low point over the range from the history's max", () => {
    const u = update();
    const hist = points(3, 60, u).map((p, i) => (i === 1 ? { ...p, max: { "gpus.gpu-box-1.0.vram_used_gb": 23.5 } } : p));
    render(<GpuOverviewPanel {...props(u)} history={hist} range="60m" />);
    expect(screen.getByTestId("gpu-headroom")).toHaveTextContent("headroom 1.3 GB free · low 0.5 GB over 60m");
    const host = screen.getByTestId("host-headroom");
    expect(within(host).getByTestId("headroom-free")).toHaveTextContent("1.3 GBof 24.0 GB on 1 GPU");
    expect(within(host).getByTestId("headroom-low")).toHaveTextContent("Low point (60m)0.5 GB");
    expect(within(host).getByTestId("headroom-fit")).toHaveTextContent("1.3 GBon GPU 0");
    expect(within(host).getByTestId("headroom-trend")).toHaveTextContent("±0.0 GB");
  });

  it("gives each host its own by-model view, never summed across hosts, labelling the estimate and the server's own figure", () => {
    const u = manyGpus();
    render(<GpuOverviewPanel {...props(u)} />);
    const views = screen.getAllByTestId("host-models");
    expect(views.map((v) => v.dataset.host)).toEqual(["gpu-box-1", "gpu-box-2"]);
    for (const v of views) {
      const rows = within(v).getAllByTestId("model-row");
      const sum = rows.reduce((s, r) => s + Number(r.dataset.vram), 0);
      expect(sum).toBeCloseTo(Number(v.dataset.processVram));
      // 30 + 31 + 32 + 33 GB of processes on each host, not 252 GB of both.
      expect(sum).toBeCloseTo(126);
      expect(rows.map((r) => r.dataset.model)).toEqual(["model-1", "model-0"]);
      expect(rows[0]).toHaveTextContent("GPU 1, GPU 3");
    }
    expect(screen.getAllByText("Power (estimate)")).toHaveLength(2);
    expect(screen.getAllByText("Server reports")).toHaveLength(2);
    expect(screen.getAllByText("VRAM held (processes)")).toHaveLength(2);
  });

  it("shows the model server's own VRAM beside, not instead of, what its processes hold", () => {
    const u = update();
    u.hosts![0]!.models!.rtdetr!.vram_gb = 1.5; // the server counts its allocator's reserve
    render(<GpuOverviewPanel {...props(u)} />);
    const row = screen.getAllByTestId("model-row").find((r) => r.dataset.model === "rtdetr_r50vd_coco_o365")!;
    expect(row).toHaveTextContent("0.2 GB");
    expect(within(row).getByTestId("model-server-vram")).toHaveTextContent("1.5 GB");
  });

  it("draws a GPU whose figures are missing without inventing any", () => {
    const u = update();
    const bare: GPUView = { host: "gpu-box-1", index: 0, name: null, utilization: null, vram_used_gb: null, vram_total_gb: null, temperature: null, power_watts: null };
    u.gpus = [bare];
    render(<GpuOverviewPanel {...props(u)} />);
    const card = screen.getByTestId("gpu-card");
    expect(card).toHaveTextContent("Unknown GPU");
    expect(within(card).getByTestId("gpu-vram")).toHaveTextContent("— / — GB");
    expect(within(card).queryByTestId("gpu-models")).toBeNull();
    expect(within(card).queryByTestId("gpu-procs")).toBeNull();
    expect(within(card).queryByTestId("gpu-headroom")).toBeNull();
    expect(within(card).queryByTestId("gpu-clocks")).toBeNull();
    expect(screen.queryByTestId("host-models")).toBeNull();
    expect(within(screen.getByTestId("host-headroom")).getByTestId("headroom-free")).toHaveTextContent("— GB");
    expect(screen.getByTestId("gpu-power")).toHaveAttribute("data-level", "ok");
  });

  it("says 'no model holds it' for a GPU whose processes are known to be none", () => {
    const u = update();
    u.gpus![0]!.processes = [];
    render(<GpuOverviewPanel {...props(u)} />);
    expect(screen.getByTestId("gpu-models")).toHaveTextContent("no model holds it");
    expect(screen.getByTestId("gpu-procs")).toHaveTextContent("No compute processes");
  });

  it("lays out 16 GPUs with 16 distinct chart colours, the same GPU the same colour in every chart", () => {
    const u = manyGpus(2, 8);
    const { container } = render(<GpuOverviewPanel {...props(u)} />);
    expect(screen.getAllByTestId("gpu-card")).toHaveLength(16);
    expect(screen.getAllByTestId("host-models")).toHaveLength(2);
    // The shared legend: one entry per GPU, each its own colour.
    const legend = container.querySelector(".tremor-Legend-root") as HTMLElement;
    const dots = [...legend.querySelectorAll("svg")].map((s) => s.getAttribute("class"));
    expect(dots).toHaveLength(16);
    expect(new Set(dots).size).toBe(16);
    // Each GPU card names the model that holds it.
    for (const card of screen.getAllByTestId("gpu-card")) expect(within(card).getByTestId("gpu-models")).toHaveTextContent(/held by model-[01]/);
  });

  it("says once per host that it has no GPU, and names both hosts in the source", () => {
    const u: Update = noGpu();
    const err = u.errors!.gpu!;
    u.hosts = [u.hosts![0]!, { ...structuredClone(u.hosts![0]!), host: "gpu-box-2" }];
    u.errors = { gpu: `gpu-box-1: ${err}; gpu-box-2: ${err}` };
    expect(gpuErrors(u).map((e) => e.host)).toEqual(["gpu-box-1", "gpu-box-2"]);
    render(<GpuOverviewPanel {...props(u)} />);
    expect(screen.getAllByRole("status")).toHaveLength(2);
    expect(screen.getByText("gpu-box-2: No NVIDIA GPU detected — NVML: library not found")).toBeInTheDocument();

    render(<GpuOverviewPanel {...props(manyGpus())} />);
    expect(screen.getByText("via agents on gpu-box-1, gpu-box-2")).toBeInTheDocument();
  });
});
