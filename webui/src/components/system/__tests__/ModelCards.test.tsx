import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { T0, update } from "../../../test/fixtures";
import type { ModelEntry, Update } from "../../../types";
import { AiModelsPanel } from "../AiModelsPanel";
import { extraModels } from "../ModelCards";

const none = { avg: null, p95: null, p99: null };

function entry(over: Partial<ModelEntry>): ModelEntry {
  return {
    host: "gpu-box-1",
    name: "m",
    kind: "vllm",
    status: "healthy",
    model: "",
    vram_gb: null,
    sm_percent: null,
    latency_ms: none,
    ttft_ms: none,
    itl_ms: none,
    queue_ms: none,
    prompt_tokens_per_s: null,
    generation_tokens_per_s: null,
    requests_per_s: null,
    requests_waiting: null,
    requests_running: null,
    kv_cache_percent: null,
    ...over,
  };
}

const vllm = entry({
  name: "qwen",
  kind: "vllm",
  model: "Qwen/Qwen3-8B",
  vram_gb: 71.5,
  gpus: [0, 1],
  sm_percent: 105,
  latency_ms: { avg: 1850, p95: 4200, p99: null },
  ttft_ms: { avg: 80, p95: 230, p99: null },
  generation_tokens_per_s: 250,
  requests_waiting: 6,
  requests_running: 5,
  kv_cache_percent: 82,
  energy: {
    estimate: true,
    method: "GPU energy counter (or power × time) split by process SM share",
    interval_joules: 1500,
    interval_watts: 300,
    window: "5m",
    window_joules: 3000,
    window_watts: 300,
    joules_per_token: 1.2,
  },
});

const ollama = entry({
  name: "ollama",
  kind: "ollama",
  model: "gemma3:12b",
  vram_gb: 4.97,
  loaded: [
    {
      name: "gemma3:12b",
      size_gb: 6.14,
      vram_gb: 4.97,
      vram_share_percent: 80.9,
      context_length: 4096,
      expires_at: new Date(T0 + 4 * 60_000).toISOString(),
      parameter_size: "12.2B",
      quantization_level: "Q4_K_M",
    },
  ],
  notes: ["Ollama has no metrics endpoint: no latency, queue, tokens/s or KV-cache figures"],
});

function withModels(...models: ModelEntry[]): Update {
  const u = update();
  const seedHost = u.ai_models.rtdetr.host ?? "gpu-box-1";
  // The seed's two are in the list too; their cards stay the seed's.
  u.models = [entry({ name: "nemotron", kind: "llamacpp", host: seedHost }), entry({ name: "rtdetr", kind: "rtdetr", host: seedHost }), ...models];
  return u;
}

describe("model cards", () => {
  it("shows a vLLM and an Ollama card of their kind beside the seed's two", () => {
    render(<AiModelsPanel update={withModels(vllm, ollama)} now={T0} />);
    expect(screen.getByRole("article", { name: "RT-DETRv2" })).toBeInTheDocument();
    expect(screen.getByRole("article", { name: "Nemotron" })).toBeInTheDocument();
    expect(screen.queryByRole("article", { name: "nemotron (llama.cpp)" })).toBeNull();

    const v = screen.getByRole("article", { name: "qwen (vLLM)" });
    expect(within(v).getByText("Healthy")).toBeInTheDocument();
    expect(within(v).getByText("Qwen/Qwen3-8B")).toBeInTheDocument();
    expect(within(v).getByTestId("qwen-latency")).toHaveTextContent("4.2 s p95");
    expect(within(v).getByTestId("qwen-ttft")).toHaveTextContent("230 ms p95");
    expect(within(v).getByTestId("qwen-tokens")).toHaveTextContent("250");
    expect(within(v).getByTestId("qwen-queue")).toHaveTextContent("6 waiting · 5 running");
    expect(within(v).getByTestId("qwen-kv")).toHaveTextContent("82%");
    expect(within(v).getByLabelText("KV cache 82% used")).toBeInTheDocument();
    expect(within(v).getByText("GPU 0, 1 · 105% SM")).toBeInTheDocument();
    expect(within(v).getByTestId("qwen-energy")).toHaveTextContent("300 W · 1.2 J/token");
    expect(within(v).getByText("estimate")).toBeInTheDocument();

    const o = screen.getByRole("article", { name: "ollama (Ollama)" });
    const loaded = within(o).getByRole("list", { name: "Loaded models" });
    expect(loaded).toHaveTextContent("gemma3:12b");
    expect(loaded).toHaveTextContent("4.97 of 6.14 GB in VRAM (81%) · ctx 4,096 · unloads in 4 min");
    expect(within(o).getByText(/no metrics endpoint/)).toBeInTheDocument();
    // Ollama has no TTFT, queue or KV figures: no rows pretending otherwise.
    expect(within(o).queryByTestId("ollama-ttft")).toBeNull();
    expect(within(o).queryByTestId("ollama-kv")).toBeNull();
  });

  it("shows dashes and the server's own notes when figures are missing", () => {
    const bare = entry({
      name: "tgi-1",
      kind: "tgi",
      status: "unreachable",
      reason: "connection refused",
      notes: ["TGI exports no time-to-first-token histogram", "TGI exports no KV-cache gauge"],
    });
    const triton = entry({ name: "triton", kind: "triton", latency_ms: { avg: 30, p95: null, p99: null } });
    render(<AiModelsPanel update={withModels(bare, triton)} now={T0} />);
    const c = screen.getByRole("article", { name: "tgi-1 (HF TGI)" });
    expect(within(c).getByText("Unreachable")).toBeInTheDocument();
    expect(within(c).getByText("connection refused")).toBeInTheDocument();
    expect(within(c).getByTestId("tgi-1-latency")).toHaveTextContent("—");
    expect(within(c).getByTestId("tgi-1-tokens")).toHaveTextContent("—");
    expect(within(c).getByTestId("tgi-1-kv")).toHaveTextContent("—");
    expect(within(c).getByTestId("tgi-1-energy")).toHaveTextContent("—");
    expect(within(c).queryByText("estimate")).toBeNull();
    expect(within(c).getByText("TGI exports no KV-cache gauge")).toBeInTheDocument();
    // Triton counts time: an average, said as such.
    expect(within(screen.getByRole("article", { name: "triton (Triton)" })).getByTestId("triton-latency")).toHaveTextContent("30 ms avg");
  });

  it("lays out many models, and shows a seed-named model of another host", () => {
    const many = Array.from({ length: 12 }, (_, i) => entry({ name: `m${i}`, kind: i % 2 ? "sglang" : "vllm" }));
    const other = entry({ name: "rtdetr", kind: "rtdetr", host: "gpu-box-9" });
    const u = withModels(...many, other);
    expect(extraModels(u)).toHaveLength(13);
    render(<AiModelsPanel update={u} now={T0} />);
    expect(document.querySelectorAll("article[data-model-kind]")).toHaveLength(13);
    expect(screen.getByRole("article", { name: "m11 (SGLang)" })).toBeInTheDocument();
    expect(screen.getByRole("article", { name: "rtdetr (RT-DETR)" })).toBeInTheDocument();
  });

  it("adds llama.cpp's figures and what it cannot report to the seed's Nemotron card", () => {
    const u = withModels();
    u.models![0] = entry({
      name: "nemotron",
      kind: "llamacpp",
      host: u.ai_models.nemotron.host ?? "gpu-box-1",
      generation_tokens_per_s: 57.3,
      requests_waiting: 0,
      requests_running: 1,
      notes: ["llama.cpp exports no latency histogram: no p95 or time to first token", "this llama.cpp build exports no KV-cache gauge"],
      energy: { estimate: true, method: "m", interval_joules: 600, interval_watts: 120, window_joules: null, window_watts: null, joules_per_token: null },
    });
    render(<AiModelsPanel update={u} now={T0} />);
    const nm = screen.getByRole("article", { name: "Nemotron" });
    expect(within(nm).getByTestId("nemotron-slots")).toHaveTextContent("0 / 2 active");
    expect(within(nm).getByTestId("nemotron-tokens")).toHaveTextContent("57.3");
    expect(within(nm).getByTestId("nemotron-queue")).toHaveTextContent("0 deferred · 1 processing");
    expect(within(nm).getByTestId("nemotron-energy")).toHaveTextContent("120 W");
    expect(within(nm).getByTestId("nemotron-notes")).toHaveTextContent("no latency histogram");
    expect(within(nm).getByTestId("nemotron-notes")).toHaveTextContent("no KV-cache gauge");
  });

  it("renders an update whose models list is null as before", () => {
    const u = update();
    u.models = null;
    render(<AiModelsPanel update={u} now={T0} />);
    expect(document.querySelectorAll("article[data-model-kind]")).toHaveLength(0);
  });
});
