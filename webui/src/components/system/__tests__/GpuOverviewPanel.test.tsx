import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { manyGpus, noGpu, points, staleHost, T0, update } from "../../../test/fixtures";
import { GpuOverviewPanel, noGpuText } from "../GpuOverviewPanel";

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

  it("with more than 2 GPUs gives every card its own spark charts, beside its figures, and draws no combined chart", () => {
    const u = manyGpus();
    render(<GpuOverviewPanel {...props(u)} />);
    const cards = screen.getAllByTestId("gpu-card");
    expect(cards).toHaveLength(8);
    for (const card of cards) {
      const sparks = within(card).getByTestId("gpu-trends").querySelectorAll("[data-spark]");
      expect([...sparks].map((s) => s.getAttribute("data-spark"))).toEqual(["Utilization", "VRAM"]);
    }
    // gpu-box-2 · GPU 3 carries its own figures (fixture: utilization 20 + 30 + 3 * 5)
    const g = u.gpus![7]!;
    const trends = within(screen.getByRole("article", { name: /gpu-box-2 · GPU 3/ })).getByTestId("gpu-trends");
    expect(trends.querySelector('[data-spark="Utilization"]')).toHaveTextContent(`Utilization${g.utilization!.toFixed(0)}%`);
    expect(trends.querySelector('[data-spark="VRAM"]')).toHaveTextContent(`VRAM${g.vram_used_gb!.toFixed(1)} GB`);
    expect(document.querySelectorAll("figure[data-chart]")).toHaveLength(0);
    expect(screen.queryByText(/no samples yet/)).toBeNull();
  });

  it("still marks a stale GPU's card when the cards carry spark charts", () => {
    const u = manyGpus();
    u.hosts![1]!.last_seen = new Date(T0 - 120_000).toISOString();
    u.gpus![7]!.stale = true;
    render(<GpuOverviewPanel {...props(u)} />);
    const card = screen.getByRole("article", { name: /gpu-box-2 · GPU 3/ });
    expect(within(card).getByText("stale — last seen 2 min ago")).toBeInTheDocument();
    expect(within(card).getByTestId("gpu-trends")).toBeInTheDocument();
    expect(screen.getAllByText(/stale — last seen/)).toHaveLength(1);
  });

  it("keeps the four combined charts, and no spark charts, with 2 GPUs", () => {
    render(<GpuOverviewPanel {...props(manyGpus(1, 2))} />);
    expect(screen.getAllByTestId("gpu-card")).toHaveLength(2);
    expect(screen.queryAllByTestId("gpu-trends")).toHaveLength(0);
    const charts = document.querySelectorAll("figure[data-chart]");
    expect([...charts].map((c) => c.getAttribute("data-chart"))).toEqual(["Utilization (%)", "VRAM used (GB)", "Temperature (°C)", "Power (W)"]);
  });

  it("says a card's spark has no samples when the history holds none of that GPU", () => {
    const u = manyGpus();
    // The history predates gpu-box-2: its four GPUs have no value in the window.
    const older = manyGpus(1, 4);
    render(<GpuOverviewPanel {...props(u)} history={points(12, 5, older)} />);
    const box2 = within(screen.getByRole("article", { name: /gpu-box-2 · GPU 0/ })).getByTestId("gpu-trends");
    expect(within(box2).getAllByText("no samples yet")).toHaveLength(2);
    const box1 = within(screen.getByRole("article", { name: /gpu-box-1 · GPU 0/ })).getByTestId("gpu-trends");
    expect(within(box1).queryByText("no samples yet")).toBeNull();
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
});
