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

  it("shows a pending alert muted and grey, not as a Callout, saying it is not firing yet", () => {
    render(<PerformanceAlerts alerts={[{ ...critical, state: "pending", since: new Date(T0 - 20_000).toISOString() }]} now={T0} />);
    const item = screen.getByRole("listitem");
    expect(item.dataset.state).toBe("pending");
    expect(item.querySelector(".tremor-Callout-root")).toBeNull();
    expect(item.querySelector('[class*="red-"], [class*="yellow-"], [class*="amber-"]')).toBeNull();
    expect(item).toHaveTextContent("pendingcritical, not firing yet: Redis keyspace hit ratio critical: 0.01%");
    expect(item).toHaveTextContent(/pending since \d\d:\d\d:\d\d \(20 s ago\)/);
    expect(screen.getByRole("heading", { name: "Alerts: 0 firing, 1 pending" })).toBeInTheDocument();
  });

  it("sorts firing before pending, then by severity, then the oldest first", () => {
    const at = (s: number) => new Date(T0 - s * 1000).toISOString();
    const list = [
      { ...warning, message: "w new", since: at(10) },
      { ...critical, message: "c pending", state: "pending", since: at(500) },
      { ...warning, message: "w old", since: at(900) },
      { ...critical, message: "c new", since: at(5) },
      { ...critical, message: "c old", since: at(60) },
      { ...warning, message: "w pending", state: "pending", since: at(1000) },
    ];
    render(<PerformanceAlerts alerts={list} now={T0} />);
    const order = screen.getAllByRole("listitem").map((li) => /(?:c|w) (?:new|old|pending)/.exec(li.textContent ?? "")?.[0]);
    expect(order).toEqual(["c old", "c new", "w old", "w new", "c pending", "w pending"]);
  });

  it("wraps a long message, such as a container alert that names its containers", () => {
    const names = Array.from({ length: 6 }, (_, i) => `very-long-container-name-${i}`).join(", ");
    render(<PerformanceAlerts alerts={[{ ...critical, metric: "containers_unhealthy", message: `6 containers unhealthy: ${names}` }]} now={T0} />);
    const item = screen.getByRole("listitem");
    expect(item).toHaveTextContent(names);
    expect(item.querySelector(".tremor-Callout-root")?.className).toMatch(/break-words/);
  });
});
