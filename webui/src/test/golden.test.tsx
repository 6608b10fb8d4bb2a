// The page against what the hub really sends: merged.gen.json is the hub's
// merge of a fixed sample, written by internal/hub's TestGoldenUpdate
// (`make generate`). Assigning it to Update checks the generated types
// against real output; rendering it checks the panels read Go's units.
import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { GpuOverviewPanel } from "../components/system/GpuOverviewPanel";
import { HostSystemPanel } from "../components/system/HostSystemPanel";
import type { Update } from "../types";
import merged from "./fixtures/merged.gen.json";
import { points, T0 } from "./fixtures";

const golden = (): Update => structuredClone(merged);
const props = (u: Update) => ({ update: u, history: points(12, 5, u), resolutionS: 5, now: T0 });

describe("the hub's merged update (golden)", () => {
  it("shows the A5500's 22.5 of 24 GB, 38 % and 38 °C", () => {
    render(<GpuOverviewPanel {...props(golden())} />);
    const card = screen.getByRole("article", { name: /GPU 0: NVIDIA RTX A5500/ });
    expect(within(card).getByTestId("gpu-util")).toHaveTextContent("38%");
    expect(within(card).getByTestId("gpu-vram")).toHaveTextContent("22.5 / 24.0 GB");
    expect(within(card).getByTestId("gpu-temp")).toHaveTextContent("38°C");
  });

  it("shows the host's 12 % CPU, 8 of 32 GB RAM and 156 of 500 GB disk", () => {
    render(<HostSystemPanel {...props(golden())} />);
    expect(screen.getByTestId("host-cpu")).toHaveTextContent("12%");
    expect(screen.getByTestId("host-ram")).toHaveTextContent("8.0 / 32.0 GB");
    expect(screen.getByTestId("host-disk")).toHaveTextContent("156 / 500 GB");
  });
});
