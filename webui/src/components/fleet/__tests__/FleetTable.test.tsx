import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { FleetRow, FleetUpdate } from "../../../types";
import { FleetTable, hostStatus, sortRows } from "../FleetTable";

// Three hosts whose figures differ in every column, and in opposite orders,
// so each column's sort gives its own order.
const rows: FleetRow[] = [
  { h: "gpu01", ago: 2, g: 8, um: 55, ux: 98, vu: 512, vt: 1128, t: 78, p: 4200, pl: 5600, mn: 2, ac: 1, aw: 2, c: 35, ru: 512, rt: 2016 },
  { h: "gpu02", off: true, ago: 900, g: 4, mn: 1, mx: { nemotron: "unreachable" } },
  { h: "gpu10", ago: 5, g: 2, um: 20, ux: 30, vu: 100, vt: 282, t: 60, p: 900, pl: 1400, mn: 3, c: 80, ru: 100, rt: 512 },
];

function fleetOf(hosts: FleetRow[]): FleetUpdate {
  return {
    type: "fleet_update",
    timestamp: "2026-12-03T15:40:00Z",
    hosts,
    totals: { hosts: hosts.length, online: hosts.filter((r) => !r.off).length, gpus: 14, util_mean: 37.5, alerts_critical: 1, alerts_warning: 2 },
  };
}

const order = () => Array.from(document.querySelectorAll("[data-section=fleet] tbody tr[data-host]")).map((tr) => tr.getAttribute("data-host"));
const header = (name: string) => screen.getByRole("columnheader", { name: new RegExp(`^${name}`) });

describe("FleetTable", () => {
  it("sorts by every column, both ways, saying so with aria-sort; hosts lacking the figure go last", () => {
    render(<FleetTable fleet={fleetOf(rows)} onOpen={() => undefined} />);
    expect(order()).toEqual(["gpu01", "gpu02", "gpu10"]);
    expect(header("Host")).toHaveAttribute("aria-sort", "ascending");
    // [column, ascending order]; descending reverses the hosts that have the figure.
    const cases: [string, string[], string[]][] = [
      ["Status", ["gpu01", "gpu02", "gpu10"], ["gpu10", "gpu02", "gpu01"]], // alerting, offline, online
      ["Last seen", ["gpu01", "gpu10", "gpu02"], ["gpu02", "gpu10", "gpu01"]],
      ["GPUs", ["gpu10", "gpu02", "gpu01"], ["gpu01", "gpu02", "gpu10"]],
      ["GPU util", ["gpu10", "gpu01", "gpu02"], ["gpu01", "gpu10", "gpu02"]],
      ["VRAM", ["gpu10", "gpu01", "gpu02"], ["gpu01", "gpu10", "gpu02"]],
      ["Hottest", ["gpu10", "gpu01", "gpu02"], ["gpu01", "gpu10", "gpu02"]],
      ["Power", ["gpu10", "gpu01", "gpu02"], ["gpu01", "gpu10", "gpu02"]],
      ["Models", ["gpu01", "gpu10", "gpu02"], ["gpu02", "gpu10", "gpu01"]], // a server down ranks highest
      ["Alerts", ["gpu02", "gpu10", "gpu01"], ["gpu01", "gpu02", "gpu10"]],
      ["CPU", ["gpu01", "gpu10", "gpu02"], ["gpu10", "gpu01", "gpu02"]],
      ["RAM", ["gpu10", "gpu01", "gpu02"], ["gpu01", "gpu10", "gpu02"]],
      ["Host", ["gpu01", "gpu02", "gpu10"], ["gpu10", "gpu02", "gpu01"]],
    ];
    for (const [col, asc, desc] of cases) {
      act(() => within(header(col)).getByRole("button").click());
      expect(header(col), col).toHaveAttribute("aria-sort", "ascending");
      expect(order(), `${col} ascending`).toEqual(asc);
      act(() => within(header(col)).getByRole("button").click());
      expect(header(col), col).toHaveAttribute("aria-sort", "descending");
      expect(order(), `${col} descending`).toEqual(desc);
    }
    expect(screen.getAllByRole("columnheader").filter((h) => h.getAttribute("aria-sort") !== "none")).toHaveLength(1);
  });

  it("filters by name and by status, together", () => {
    render(<FleetTable fleet={fleetOf(rows)} onOpen={() => undefined} />);
    fireEvent.change(screen.getByLabelText("Filter by name"), { target: { value: "GPU0" } });
    expect(order()).toEqual(["gpu01", "gpu02"]);
    expect(screen.getByTestId("fleet-count")).toHaveTextContent("2 of 3 hosts");
    const status = screen.getByLabelText("Status");
    fireEvent.change(status, { target: { value: "offline" } });
    expect(order()).toEqual(["gpu02"]);
    fireEvent.change(status, { target: { value: "alerting" } });
    expect(order()).toEqual(["gpu01"]);
    fireEvent.change(screen.getByLabelText("Filter by name"), { target: { value: "" } });
    fireEvent.change(status, { target: { value: "online" } });
    expect(order()).toEqual(["gpu10"]);
    fireEvent.change(screen.getByLabelText("Filter by name"), { target: { value: "nope" } });
    expect(order()).toEqual([]);
    expect(screen.getByText("No host matches.")).toBeInTheDocument();
  });

  it("opens a host from a row (click or Enter) and from the picker", () => {
    const onOpen = vi.fn();
    render(<FleetTable fleet={fleetOf(rows)} onOpen={onOpen} />);
    act(() => (document.querySelector("tr[data-host=gpu10]") as HTMLElement).click());
    expect(onOpen).toHaveBeenLastCalledWith("gpu10");
    fireEvent.keyDown(document.querySelector("tr[data-host=gpu02]") as HTMLElement, { key: "Enter" });
    expect(onOpen).toHaveBeenLastCalledWith("gpu02");
    const pick = screen.getByLabelText("Open host");
    fireEvent.change(pick, { target: { value: "gpu0" } }); // not a host: nothing opens
    fireEvent.submit(pick.closest("form")!);
    expect(onOpen).toHaveBeenCalledTimes(2);
    fireEvent.change(pick, { target: { value: "gpu01" } });
    fireEvent.submit(pick.closest("form")!);
    expect(onOpen).toHaveBeenLastCalledWith("gpu01");
    expect(Array.from(document.querySelectorAll("#fleet-host-names option")).map((o) => (o as HTMLOptionElement).value)).toEqual(["gpu01", "gpu02", "gpu10"]);
  });

  it("renders only the rows in view of 2,000, and scrolling brings the others", () => {
    const many: FleetRow[] = Array.from({ length: 2000 }, (_, i) => ({ h: `node${String(i).padStart(4, "0")}`, ago: 1, g: 8, um: i % 100 }));
    render(<FleetTable fleet={fleetOf(many)} onOpen={() => undefined} />);
    expect(screen.getByTestId("fleet-count")).toHaveTextContent("2000 hosts");
    const first = order();
    expect(first.length).toBeLessThan(40);
    expect(first[0]).toBe("node0000");
    const scroller = screen.getByTestId("fleet-scroll");
    scroller.scrollTop = 37 * 1000;
    fireEvent.scroll(scroller);
    expect(order()).toContain("node1000");
    expect(order()).not.toContain("node0000");
    act(() => within(header("GPU util")).getByRole("button").click());
    act(() => within(header("GPU util")).getByRole("button").click());
    scroller.scrollTop = 0;
    fireEvent.scroll(scroller);
    expect(order()[0]).toBe("node0099"); // util 99, the first of its ties by name
  });

  it("tells a host's status and sorts without changing its input", () => {
    expect(rows.map(hostStatus)).toEqual(["alerting", "offline", "online"]);
    const copy = [...rows];
    sortRows(rows, { key: "cpu", dir: "descending" });
    expect(rows).toEqual(copy);
  });
});
