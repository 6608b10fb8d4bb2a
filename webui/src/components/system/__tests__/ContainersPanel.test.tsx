import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { onlyAgent, T0, update } from "../../../test/fixtures";
import { ContainersPanel } from "../ContainersPanel";

describe("ContainersPanel", () => {
  it("shows a badge per container and a tracker of each health timeline", () => {
    render(<ContainersPanel update={update()} now={T0} />);
    const list = screen.getByRole("list", { name: "Container health" });
    expect(within(list).getAllByRole("listitem")).toHaveLength(6);
    expect(screen.getByRole("heading", { name: "Containers (6)" })).toBeInTheDocument();
    expect(screen.getByText("all 6 healthy")).toHaveAttribute("data-level", "ok");
    const tracker = document.querySelector("[data-tracker=ai-detector] .tremor-Tracker-root");
    // three readings keep their place at the right end of 60 slots: the
    // 57 before them are empty, not the three stretched across the width
    const blocks = [...(tracker?.children ?? [])];
    expect(blocks).toHaveLength(60);
    expect(blocks.slice(0, 57).every((b) => /bg-transparent/.test(b.className))).toBe(true);
    // the timeline's unhealthy slot is red, the healthy ones green
    expect(blocks[57]?.className).toMatch(/red/);
    expect(blocks[59]?.className).toMatch(/emerald/);
  });

  it("counts unhealthy containers against the 1 / 2+ thresholds, with reasons", () => {
    const u = update();
    u.containers![0]! = { ...u.containers![0]!, health: "unhealthy", reason: "GET http://backend:8000/health: 503" };
    render(<ContainersPanel update={u} now={T0} />);
    expect(screen.getByText("1 of 6 not healthy")).toHaveAttribute("data-level", "warning");
    expect(screen.getByText(/backend:8000\/health: 503/)).toBeInTheDocument();
    expect(document.querySelector("[data-container=backend]")?.getAttribute("data-health")).toBe("unhealthy");
    u.containers![1]! = { ...u.containers![1]!, health: "unhealthy" };
    render(<ContainersPanel update={u} now={T0} />);
    expect(screen.getByText("2 of 6 not healthy")).toHaveAttribute("data-level", "critical");
  });

  it("shows a long reason whole, wrapped across the row, not cut", () => {
    const u = update();
    const reason = "health check failed 3 times: GET http://ai-detector:8090/health: context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
    u.containers![4]! = { ...u.containers![4]!, health: "unhealthy", reason };
    render(<ContainersPanel update={u} now={T0} />);
    const p = screen.getByTestId("container-reason");
    expect(p.textContent).toBe(reason);
    expect(p.className).not.toMatch(/truncate/);
    expect(p.className).toMatch(/break-words/);
    expect(p.className).toMatch(/col-span-2/);
  });

  it("says plainly when no container is monitored", () => {
    render(<ContainersPanel update={onlyAgent()} now={T0} />);
    expect(screen.getByText("No containers monitored")).toBeInTheDocument();
    expect(document.querySelector(".tremor-Tracker-root")).toBeNull();
  });

  it("marks the section stale", () => {
    const u = update();
    u.stale = { ...u.stale, containers: true };
    render(<ContainersPanel update={u} now={T0} />);
    expect(screen.getByText("stale — no fresh data")).toBeInTheDocument();
  });
});
