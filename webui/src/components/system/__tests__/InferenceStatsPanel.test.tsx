import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { DEFAULT_THRESHOLDS, ThresholdsContext } from "../../../lib/thresholds";
import { onlyAgent, points, staleHost, T0, update } from "../../../test/fixtures";
import type { Latencies } from "../../../types";
import { InferenceStatsPanel } from "../InferenceStatsPanel";

const props = (u = update(), n = 12) => ({ update: u, history: points(n, 5, u), resolutionS: 5, now: T0 });

describe("InferenceStatsPanel", () => {
  it("shows avg and P95 per model, throughput, and three charts", () => {
    render(<InferenceStatsPanel {...props()} />);
    expect(screen.getByTestId("latency-rtdetr")).toHaveTextContent(/45 ms\s*avg\s*82 ms\s*P95 · P99 120 ms · 744 obs/);
    expect(screen.getByTestId("latency-nemotron")).toHaveTextContent(/2\.1 s\s*avg\s*4\.8 s/);
    expect(screen.getByTestId("latency-pipeline")).toHaveTextContent("3.2 s");
    expect(screen.getByTestId("throughput")).toHaveTextContent(/12\.4\s*images\/min\s*2\.1\s*events\/min/);
    expect([...document.querySelectorAll("figure[data-chart]")].map((f) => f.getAttribute("data-chart"))).toEqual([
      "RT-DETRv2 latency (ms)",
      "Nemotron latency (s)",
      "Pipeline throughput (per min)",
    ]);
    expect(screen.getByText("figures over 5m")).toBeInTheDocument();
  });

  it("colours a P95 over the RT-DETRv2 thresholds (200 / 500 ms)", () => {
    const u = update();
    u.inference.rtdetr_latency_ms.p95 = 250;
    u.inference.nemotron_latency_ms.p95 = 31_000;
    render(<InferenceStatsPanel {...props(u)} />);
    expect(screen.getByTestId("latency-rtdetr")).toHaveAttribute("data-level", "warning");
    expect(screen.getByTestId("latency-rtdetr")).toHaveTextContent("P95 (warning)");
    expect(screen.getByTestId("latency-nemotron")).toHaveAttribute("data-level", "critical");
  });

  it("says plainly when there are no observations at all", () => {
    const u = onlyAgent();
    render(<InferenceStatsPanel update={u} history={[]} resolutionS={5} now={T0} />);
    expect(screen.getByText("No inference observations")).toBeInTheDocument();
    expect(document.querySelectorAll("figure[data-chart]")).toHaveLength(0);
  });

  it("says per model when one has no observations in the window", () => {
    const u = update();
    u.inference.nemotron_latency_ms = { avg: null, p95: null, p99: null };
    render(<InferenceStatsPanel {...props(u)} />);
    expect(screen.getByTestId("latency-nemotron")).toHaveTextContent("no observations in this window");
    expect(screen.getByTestId("latency-nemotron")).not.toHaveTextContent("0 ms");
  });

  it("marks the section stale with the host's last-seen time", () => {
    render(<InferenceStatsPanel {...props(staleHost())} />);
    expect(screen.getByText("stale — last seen 2 min ago")).toBeInTheDocument();
  });

  describe("per range (inference_windows)", () => {
    const over = (window: string, avg: number, p95: number, images: number): Latencies => ({
      rtdetr_latency_ms: { avg, p95, p99: p95 + 10, count: 100 },
      nemotron_latency_ms: { avg: null, p95: null, p99: null },
      pipeline_latency_ms: { avg: null, p95: null, p99: null },
      throughput: { images_per_min: images, events_per_min: null },
      window,
    });
    const windowed = () => {
      const u = update();
      u.inference_windows = { "5m": over("5m", 20, 47, 8.3), "15m": over("15m", 160, 460, 7.5), "60m": over("60m", 133, 440, 2.5) };
      return u;
    };

    it("shows the selected range's figures and says which window they cover", () => {
      const { rerender } = render(<InferenceStatsPanel {...props(windowed())} range="60m" />);
      expect(screen.getByTestId("latency-rtdetr")).toHaveTextContent(/133 ms\s*avg\s*440 ms/);
      expect(screen.getByTestId("throughput")).toHaveTextContent(/2\.5\s*images\/min/);
      expect(screen.getByText("figures over 60m")).toBeInTheDocument();
      // The range's window, not the latency window, decides the colour too.
      expect(screen.getByTestId("latency-rtdetr")).toHaveAttribute("data-level", "warning");

      rerender(<InferenceStatsPanel {...props(windowed())} range="5m" />);
      expect(screen.getByTestId("latency-rtdetr")).toHaveTextContent(/20 ms\s*avg\s*47 ms/);
      expect(screen.getByTestId("latency-rtdetr")).toHaveAttribute("data-level", "ok");
      expect(screen.getByTestId("latency-nemotron")).toHaveTextContent("no observations in this window");
      expect(screen.getByText("figures over 5m")).toBeInTheDocument();
    });

    it("falls back to the latency-window figures without inference_windows", () => {
      render(<InferenceStatsPanel {...props()} range="15m" />);
      expect(screen.getByTestId("latency-rtdetr")).toHaveTextContent(/45 ms\s*avg\s*82 ms/);
      expect(screen.getByText("figures over 5m")).toBeInTheDocument();
    });

    it("falls back when the range has nothing but the latency window was filled (by Prometheus)", () => {
      const u = update();
      const empty = over("60m", 0, 0, 0);
      empty.rtdetr_latency_ms = { avg: null, p95: null, p99: null };
      empty.throughput = { images_per_min: null, events_per_min: null };
      u.inference_windows = { "60m": empty };
      render(<InferenceStatsPanel {...props(u)} range="60m" />);
      expect(screen.getByTestId("latency-rtdetr")).toHaveTextContent(/45 ms\s*avg\s*82 ms/);
      expect(screen.getByText("figures over 5m")).toBeInTheDocument();
    });

    it("colours P95 at the thresholds in force", () => {
      render(
        <ThresholdsContext.Provider value={{ ...DEFAULT_THRESHOLDS, rtdetrP95Ms: { warning: 30, critical: 40, direction: "above" } }}>
          <InferenceStatsPanel {...props(windowed())} range="5m" />
        </ThresholdsContext.Provider>,
      );
      expect(screen.getByTestId("latency-rtdetr")).toHaveAttribute("data-level", "critical");
    });
  });
});
