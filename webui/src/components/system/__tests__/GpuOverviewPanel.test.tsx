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
