import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { manyGpus, points, T0 } from "../../../test/fixtures";
import type { GPUView } from "../../../types";
import { GpuHealth } from "../GpuHealth";
import { GpuOverviewPanel } from "../GpuOverviewPanel";

/** A healthy H200 as the hub sends it: every health field present. */
function h200(over: Partial<GPUView> = {}): GPUView {
  return {
    host: "gpu-box-1",
    index: 0,
    name: "NVIDIA H200",
    utilization: 80,
    vram_used_gb: 100,
    vram_total_gb: 140,
    temperature: 50,
    power_watts: 500,
    persistence_mode: true,
    driver_version: "550.54.15",
    cuda_version: "12.4",
    vbios_version: "96.00.74.00.1C",
    ecc: { enabled: true, volatile_corrected: 12, volatile_uncorrected: 0, remapped_rows_correctable: 3, remapped_rows_uncorrectable: 0, remap_pending: false, remap_failure: false },
    pcie: { gen: 5, max_gen: 5, width: 16, max_width: 16, tx_mb_s: 953.7, rx_mb_s: 1500, replay_count: 0, degraded: false },
    nvlinks: Array.from({ length: 18 }, (_, l) => ({ link: l, up: true, tx_mb_s: 100, rx_mb_s: 50 })),
    mig_mode: false,
    sm_active_percent: 61.4,
    sm_occupancy_percent: 25,
    tensor_active_percent: 41,
    ...over,
  };
}

describe("GpuHealth", () => {
  it("shows a healthy GPU as one muted line, with no finding", () => {
    render(<GpuHealth g={h200()} />);
    const box = screen.getByTestId("gpu-health");
    expect(within(box).queryByRole("list", { name: "GPU health findings" })).toBeNull();
    expect(box).toHaveTextContent(
      "SM active 61%, tensor 41% · PCIe Gen5 x16 ↑954 MB/s ↓1.5 GB/s · NVLink 18/18 up 2.7 GB/s · ECC 12 corrected 3 rows remapped · driver 550.54.15 · CUDA 12.4",
    );
    expect(box).toHaveAttribute("title", "VBIOS 96.00.74.00.1C");
  });

  it("highlights XIDs, uncorrectable ECC, a pending remap, a degraded link and a down NVLink, worst first", () => {
    const links = h200().nvlinks!;
    links[17] = { link: 17, up: false };
    const g = h200({
      xids: [
        { code: 13, time: "2026-12-01T12:00:00Z", count: 1 },
        { code: 94, time: "2026-12-01T12:00:01Z", count: 1, gpu_instance: 2, compute_instance: 0 },
        { code: 79, time: "2026-12-01T12:00:02Z", count: 3 },
      ],
      ecc: { enabled: true, volatile_uncorrected: 2, remap_pending: true, remap_failure: false },
      pcie: { gen: 4, max_gen: 5, width: 8, max_width: 16, degraded: true },
      nvlinks: links,
    });
    render(<GpuHealth g={g} />);
    const items = within(screen.getByRole("list", { name: "GPU health findings" })).getAllByRole("listitem");
    expect(items.map((li) => [li.getAttribute("data-level"), li.textContent])).toEqual([
      ["critical", "XID 79 ×3: fallen off the bus — reset the GPU"],
      ["critical", "2 uncorrectable ECC errors since the driver loaded"],
      ["warning", "XID 94: contained ECC error (MIG GI 2/CI 0)"],
      ["warning", "row remap pending — reset the GPU to apply it"],
      ["warning", "PCIe link degraded: Gen4 x8 of Gen5 x16"],
      ["warning", "NVLink: 1 of 18 links down"],
      ["info", "XID 13: graphics engine exception"],
    ]);
    expect(screen.getByTestId("gpu-health")).toHaveTextContent("NVLink 17/18 up");
  });

  it("a failed remap is critical", () => {
    render(<GpuHealth g={h200({ ecc: { enabled: true, remap_pending: true, remap_failure: true } })} />);
    const items = screen.getAllByRole("listitem");
    expect(items.map((li) => li.textContent)).toEqual(["row remapping failed — replace the GPU"]);
    expect(items[0]).toHaveAttribute("data-level", "critical");
  });

  it("renders nothing for a GPU without health fields, and leaves out each field it lacks", () => {
    const bare: GPUView = { name: "GeForce", utilization: 5, vram_used_gb: 1, vram_total_gb: 8, temperature: 40, power_watts: 20 };
    const { container } = render(<GpuHealth g={bare} />);
    expect(container).toBeEmptyDOMElement();

    // Only a PCIe width known: no "Gen", no throughput, no zero anywhere.
    render(<GpuHealth g={{ ...bare, pcie: { width: 16 }, ecc: { enabled: false } }} />);
    const box = screen.getByTestId("gpu-health");
    expect(box).toHaveTextContent(/^PCIe Gen\? x16 · ECC off$/);
    expect(box).not.toHaveTextContent(/\b0\b/);
  });

  it("lists MIG instances with their memory and the attributed processes", () => {
    const g = h200({
      mig_mode: true,
      mig_instances: [
        { gpu_instance: 1, compute_instance: 0, uuid: "MIG-a", vram_used_gb: 30, vram_total_gb: 33, processes: [{ pid: 7, name: "vllm", model: "llama", vram_gb: 28, sm_percent: null }] },
        { gpu_instance: 9, compute_instance: 0, vram_used_gb: 0.5, vram_total_gb: 16.5, processes: [{ pid: 8, vram_gb: null, sm_percent: null }] },
      ],
    });
    render(<GpuHealth g={g} />);
    const rows = within(screen.getByRole("list", { name: "MIG instances" })).getAllByRole("listitem");
    expect(rows.map((r) => r.textContent)).toEqual(["GI 1/CI 0: 30.0 / 33.0 GB · vllm (llama)", "GI 9/CI 0: 0.5 / 16.5 GB · pid 8"]);
    expect(screen.getByTestId("gpu-health")).toHaveTextContent("MIG on, 2 instances");
  });

  it("shows each MIG instance's SM and tensor activity, leaving out what its GPU instance does not report", () => {
    const g = h200({
      mig_mode: true,
      sm_active_percent: undefined,
      sm_occupancy_percent: undefined,
      tensor_active_percent: undefined,
      mig_instances: [
        { gpu_instance: 1, compute_instance: 0, vram_used_gb: 30, vram_total_gb: 33, sm_active_percent: 62.4, tensor_active_percent: 40.6, processes: [{ pid: 7, name: "vllm", vram_gb: 28, sm_percent: null }] },
        { gpu_instance: 5, compute_instance: 0, vram_used_gb: 1, vram_total_gb: 16.5, sm_active_percent: 3 },
        { gpu_instance: 9, compute_instance: 0, vram_used_gb: 0.5, vram_total_gb: 16.5 },
      ],
    });
    render(<GpuHealth g={g} />);
    const rows = within(screen.getByRole("list", { name: "MIG instances" })).getAllByRole("listitem");
    expect(rows.map((r) => r.textContent)).toEqual([
      "GI 1/CI 0: 30.0 / 33.0 GB · SM active 62%, tensor 41% · vllm",
      "GI 5/CI 0: 1.0 / 16.5 GB · SM active 3%",
      "GI 9/CI 0: 0.5 / 16.5 GB",
    ]);
    // Under MIG the whole GPU has no GPM line of its own.
    expect(screen.getByTestId("gpu-health")).not.toHaveTextContent(/^SM active/);
  });

  it("in the GPU overview of 8 GPUs, highlights only the GPU with a finding", () => {
    const u = manyGpus();
    u.gpus = u.gpus!.map((g) => ({ ...g, ...h200(), host: g.host, index: g.index, uuid: g.uuid }));
    u.gpus[5]!.xids = [{ code: 48, time: "2026-12-01T12:00:00Z", count: 1 }];
    render(<GpuOverviewPanel update={u} history={points(12, 5, u)} resolutionS={5} now={T0} />);
    const cards = screen.getAllByTestId("gpu-card");
    expect(cards).toHaveLength(8);
    expect(screen.getAllByTestId("gpu-health")).toHaveLength(8);
    const flagged = cards.filter((c) => within(c).queryByRole("list", { name: "GPU health findings" }));
    expect(flagged).toHaveLength(1);
    expect(flagged[0]).toHaveAccessibleName(/gpu-box-2 · GPU 1/);
    const findings = within(flagged[0]!).getByRole("list", { name: "GPU health findings" });
    expect(within(findings).getByRole("listitem")).toHaveTextContent("XID 48: double-bit ECC error — reset the GPU");
  });
});
