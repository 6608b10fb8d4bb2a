import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { manyGpus, modelView, noGpu, onlyAgent, staleHost, T0, update } from "../../../test/fixtures";
import { AiModelsPanel, vramSlices } from "../AiModelsPanel";

describe("AiModelsPanel", () => {
  it("shows both model servers with status, model, device, slots and context", () => {
    render(<AiModelsPanel update={update()} now={T0} />);
    const rt = screen.getByRole("article", { name: "RT-DETRv2" });
    expect(within(rt).getByText("Healthy")).toBeInTheDocument();
    expect(within(rt).getByTestId("rtdetr-vram")).toHaveTextContent("0.17 GB");
    expect(within(rt).getByText("rtdetr_r50vd_coco_o365")).toBeInTheDocument();
    expect(within(rt).getByText("cuda:0")).toBeInTheDocument();
    const nm = screen.getByRole("article", { name: "Nemotron" });
    expect(within(nm).getByTestId("nemotron-slots")).toHaveTextContent("0 / 2 active");
    expect(within(nm).getByText("4,096 tokens")).toBeInTheDocument();
  });

  it("splits VRAM by model from the GPU processes, with the unattributed rest", () => {
    const { slices, known } = vramSlices(update());
    expect(known).toBe(true);
    // 22.7 GB used, 22.07 GB held by the two listed processes
    expect(slices).toEqual([
      { name: "nemotron-mini-4b", vram: 21.9 },
      { name: "rtdetr_r50vd_coco_o365", vram: 0.17 },
      { name: "other / driver", vram: 0.63 },
    ]);
    render(<AiModelsPanel update={update()} now={T0} />);
    expect(screen.getByText("nemotron-mini-4b 21.90 GB")).toBeInTheDocument();
  });

  it("splits VRAM by model per host, never summed across hosts", () => {
    const u = manyGpus(2, 2);
    u.gpus = u.gpus!.map((g, i) => ({
      ...g,
      vram_used_gb: 10,
      processes: [{ pid: 100 + i, name: "python3", model: i < 2 ? "rtdetr" : "llama", vram_gb: 6, sm_percent: 10 }],
    }));
    const hosts = [...new Set(u.gpus.map((g) => g.host!))].sort();
    expect(hosts).toHaveLength(2);
    expect(vramSlices(u, hosts[0]).slices).toEqual([
      { name: "rtdetr", vram: 12 },
      { name: "other / driver", vram: 8 },
    ]);
    expect(vramSlices(u, hosts[1]).slices).toEqual([
      { name: "llama", vram: 12 },
      { name: "other / driver", vram: 8 },
    ]);
    render(<AiModelsPanel update={u} now={T0} />);
    expect(screen.getByRole("article", { name: `VRAM by model on ${hosts[0]}` })).toHaveTextContent("rtdetr 12.00 GB");
    expect(screen.getByRole("article", { name: `VRAM by model on ${hosts[1]}` })).toHaveTextContent("llama 12.00 GB");
    expect(screen.queryByRole("article", { name: "VRAM by model" })).toBeNull();
  });

  it("shows an unreachable model with its reason", () => {
    const u = update();
    u.ai_models.nemotron = modelView({ status: "unreachable", reason: "GET http://127.0.0.1:8080/slots: connection refused", host: "gpu-box-1" });
    render(<AiModelsPanel update={u} now={T0} />);
    const nm = screen.getByRole("article", { name: "Nemotron" });
    expect(within(nm).getByText("Unreachable")).toBeInTheDocument();
    expect(within(nm).getByText(/connection refused/)).toBeInTheDocument();
    expect(nm.querySelector("[data-status=unreachable]")?.className).toMatch(/red/);
  });

  it("says a model nobody reports is not configured, and how to configure it", () => {
    render(<AiModelsPanel update={onlyAgent()} now={T0} />);
    const rt = screen.getByRole("article", { name: "RT-DETRv2" });
    expect(within(rt).getByText("Not configured")).toBeInTheDocument();
    expect(within(rt).getByText("--rtdetr-url")).toBeInTheDocument();
    expect(within(screen.getByRole("article", { name: "Nemotron" })).getByText("--llm-url")).toBeInTheDocument();
  });

  it("says no per-process VRAM is known instead of an empty donut", () => {
    render(<AiModelsPanel update={noGpu()} now={T0} />);
    expect(screen.getByText("No per-process VRAM reported")).toBeInTheDocument();
  });

  it("marks a stale model with its host's last-seen time", () => {
    render(<AiModelsPanel update={staleHost()} now={T0} />);
    expect(within(screen.getByRole("article", { name: "RT-DETRv2" })).getByText("stale — last seen 2 min ago")).toBeInTheDocument();
  });
});
