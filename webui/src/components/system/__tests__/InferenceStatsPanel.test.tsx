import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { onlyAgent, points, staleHost, T0, update } from "../../../test/fixtures";
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
});
