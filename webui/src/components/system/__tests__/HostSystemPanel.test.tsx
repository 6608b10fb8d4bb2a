import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { manyGpus, points, staleHost, T0, update } from "../../../test/fixtures";
import type { Update } from "../../../types";
import { HostSystemPanel } from "../HostSystemPanel";

const props = (u = update()) => ({ update: u, history: points(12, 5, u), resolutionS: 5, now: T0 });

describe("HostSystemPanel", () => {
  it("shows CPU, RAM and disk of the host with two charts", () => {
    render(<HostSystemPanel {...props()} />);
    expect(screen.getByTestId("host-cpu")).toHaveTextContent("12%load 0.84");
    expect(screen.getByTestId("host-ram")).toHaveTextContent("8.2 / 32.0 GB");
    expect(screen.getByTestId("host-disk")).toHaveTextContent("156 / 500 GB");
    expect([...document.querySelectorAll("figure[data-chart]")].map((f) => f.getAttribute("data-chart"))).toEqual(["CPU (%)", "RAM used (GB)"]);
    expect(screen.getByText(/up 12 d 1 h/)).toBeInTheDocument();
  });

  it("colours CPU over 80 % as a warning and disk over 90 % as critical", () => {
    const u = update();
    u.hosts![0]!.system.cpu_percent = 85;
    u.hosts![0]!.system.disk_used_gb = 460;
    render(<HostSystemPanel {...props(u)} />);
    expect(screen.getByTestId("host-cpu")).toHaveAttribute("data-level", "warning");
    expect(screen.getByTestId("host-disk")).toHaveAttribute("data-level", "critical");
  });

  it("shows one card per host when there are several", () => {
    render(<HostSystemPanel {...props(manyGpus())} />);
    expect(screen.getByRole("article", { name: "Host gpu-box-1" })).toBeInTheDocument();
    expect(within(screen.getByRole("article", { name: "Host gpu-box-2" })).getByTestId("host-cpu")).toHaveTextContent("50%");
  });

  it("marks an offline host stale with when it was last seen", () => {
    render(<HostSystemPanel {...props(staleHost())} />);
    const host = screen.getByRole("article", { name: "Host gpu-box-1" });
    expect(host).toHaveAttribute("data-online", "false");
    expect(within(host).getByText("stale — last seen 2 min ago")).toBeInTheDocument();
  });

  it("says so when no agent has reported", () => {
    const u: Update = { ...update(), hosts: [], host: { cpu_percent: null, ram_used_gb: null, ram_total_gb: null, disk_used_gb: null, disk_total_gb: null }, sources: {} };
    render(<HostSystemPanel update={u} history={[]} resolutionS={5} now={T0} />);
    expect(screen.getByText("No host data")).toBeInTheDocument();
    expect(screen.queryByTestId("host-cpu")).toBeNull();
  });

  it("names every host shown as the source, not the last agent to report", () => {
    const u = manyGpus();
    u.sources = { ...u.sources, host: "agent:gpu-box-2" };
    render(<HostSystemPanel {...props(u)} />);
    expect(screen.getByText("via agents on gpu-box-1, gpu-box-2")).toBeInTheDocument();
    expect(screen.queryByText("via agent on gpu-box-2")).toBeNull();
    render(<HostSystemPanel {...props()} />);
    expect(screen.getByText("via agent on gpu-box-1")).toBeInTheDocument();
  });

  it("shows four hosts of 16 GPUs, one card each, with every host named as the source", () => {
    const u = manyGpus(4, 4);
    render(<HostSystemPanel {...props(u)} />);
    expect(screen.getAllByRole("article")).toHaveLength(4);
    expect(screen.getByText("via agents on gpu-box-1, gpu-box-2, gpu-box-3, gpu-box-4")).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: /Host system \(4\)/i })).toBeInTheDocument();
  });
});
