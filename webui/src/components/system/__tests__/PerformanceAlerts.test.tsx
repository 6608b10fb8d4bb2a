import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { critical, T0, warning } from "../../../test/fixtures";
import { PerformanceAlerts } from "../PerformanceAlerts";

describe("PerformanceAlerts", () => {
  it("renders nothing when no alert is pending or firing", () => {
    const { container } = render(<PerformanceAlerts alerts={[]} now={T0} />);
    expect(container).toBeEmptyDOMElement();
    render(<PerformanceAlerts alerts={null} now={T0} />);
    expect(screen.queryByRole("listitem")).toBeNull();
  });

  it("puts critical first, in red, and warnings in yellow, with value, threshold, target and since", () => {
    render(<PerformanceAlerts alerts={[warning, critical]} now={T0} />);
    const items = screen.getAllByRole("listitem");
    expect(items.map((i) => i.dataset.severity)).toEqual(["critical", "warning"]);
    expect(within(items[0]!).getByText("Critical: Redis keyspace hit ratio critical: 0.01%")).toBeInTheDocument();
    expect(items[0]!.querySelector(".tremor-Callout-root")?.className).toMatch(/red/);
    expect(items[1]!.querySelector(".tremor-Callout-root")?.className).toMatch(/yellow/);
    const w = items[1]!;
    expect(w).toHaveTextContent("value 82 · threshold 75");
    expect(w).toHaveTextContent("GPU 0 on gpu-box-1");
    expect(w).toHaveTextContent(/firing since \d\d:\d\d:\d\d \(3 min ago\)/);
    expect(screen.getByRole("heading", { name: "Alerts: 2 firing, 0 pending" })).toBeInTheDocument();
  });

  it("labels a pending alert as pending", () => {
    render(<PerformanceAlerts alerts={[{ ...warning, state: "pending", since: new Date(T0 - 20_000).toISOString() }]} now={T0} />);
    const item = screen.getByRole("listitem");
    expect(item.dataset.state).toBe("pending");
    expect(item).toHaveTextContent("Warning (pending): GPU temperature high: 82°C");
    expect(item).toHaveTextContent("pending since");
    expect(item).toHaveTextContent("(20 s ago)");
  });
});
