import { Badge, ProgressBar } from "@tremor/react";
import { memo } from "react";
import { ago, DASH, fmt, fmtMs, isNum } from "../../lib/format";
import type { ModelEntry, Stats, Update } from "../../types";
import { StaleBadge, StatusBadge } from "./common";

/** How each kind of server is named on its card. */
export const KIND_LABEL: Record<string, string> = {
  rtdetr: "RT-DETR",
  llamacpp: "llama.cpp",
  vllm: "vLLM",
  sglang: "SGLang",
  tgi: "HF TGI",
  triton: "Triton",
  ollama: "Ollama",
};

/** Kinds whose servers export a time-to-first-token histogram. */
const HAS_TTFT = new Set(["vllm", "sglang"]);
/** Kinds that serve language models, so tokens/s and KV cache apply. */
const LLM_KINDS = new Set(["llamacpp", "vllm", "sglang", "tgi", "ollama"]);

export function kindLabel(kind: string): string {
  return KIND_LABEL[kind] ?? kind;
}

/**
 * The models to show as cards of their kind: every entry of update.models
 * except the two the seed's RT-DETRv2 and Nemotron cards already show.
 */
export function extraModels(u: Update): ModelEntry[] {
  const seedHost: Record<string, string | undefined> = { rtdetr: u.ai_models?.rtdetr?.host, nemotron: u.ai_models?.nemotron?.host };
  return (u.models ?? []).filter((m) => !(m.name in seedHost && seedHost[m.name] === m.host));
}

function latencyText(s: Stats | undefined): string {
  if (!s) return DASH;
  if (isNum(s.p95)) return `${fmtMs(s.p95)} p95`;
  // Servers that count time rather than keep a histogram give an average.
  if (isNum(s.avg)) return `${fmtMs(s.avg)} avg`;
  return DASH;
}

function energyText(m: ModelEntry): string {
  const e = m.energy;
  if (!e) return DASH;
  const watts = isNum(e.window_watts) ? e.window_watts : e.interval_watts;
  const parts = [isNum(watts) ? `${fmt(watts, 0)} W` : null];
  if (isNum(e.joules_per_token)) parts.push(`${fmt(e.joules_per_token, 2)} J/token`);
  if (isNum(e.joules_per_image)) parts.push(`${fmt(e.joules_per_image, 2)} J/image`);
  if (isNum(e.joules_per_inference)) parts.push(`${fmt(e.joules_per_inference, 2)} J/inference`);
  const shown = parts.filter(Boolean);
  return shown.length ? shown.join(" · ") : DASH;
}

function Row({ k, v, testId, title }: { k: string; v: string; testId?: string; title?: string }) {
  return (
    <>
      <dt className="text-xs leading-5 text-tremor-content dark:text-dark-tremor-content">{k}</dt>
      <dd data-testid={testId} className="min-w-0 truncate font-medium tabular-nums text-tremor-content-strong dark:text-dark-tremor-content-strong" title={title ?? v}>
        {v}
      </dd>
    </>
  );
}

function ModelKindCardImpl({ m, now, lastSeen }: { m: ModelEntry; now: number; lastSeen?: string | undefined }) {
  const label = kindLabel(m.kind);
  const llm = LLM_KINDS.has(m.kind);
  const kv = m.kv_cache_percent;
  const gpus = m.gpus?.length ? `GPU ${m.gpus.join(", ")}` : null;
  const sm = isNum(m.sm_percent) ? `${fmt(m.sm_percent, 0)}% SM` : null;
  return (
    <article
      aria-label={`${m.name} (${label})`}
      data-model-kind={m.kind}
      className="rounded-tremor-default border border-tremor-border p-4 dark:border-dark-tremor-border"
    >
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h3 className="text-sm font-semibold text-tremor-content-strong dark:text-dark-tremor-content-strong">
          {m.name} <span className="font-normal text-tremor-content dark:text-dark-tremor-content">({label})</span>
        </h3>
        {m.stale ? <StaleBadge lastSeen={lastSeen} now={now} /> : null}
      </div>
      <div className="mt-2">
        <StatusBadge status={m.status} reason={m.reason} />
      </div>
      <dl className="mt-3 grid grid-cols-[auto_1fr] gap-x-4 gap-y-1.5 text-sm">
        <Row k="Model" v={m.model || DASH} />
        <Row k="Latency" v={latencyText(m.latency_ms)} testId={`${m.name}-latency`} />
        {HAS_TTFT.has(m.kind) || isNum(m.ttft_ms?.p95) ? <Row k="TTFT" v={latencyText(m.ttft_ms)} testId={`${m.name}-ttft`} /> : null}
        {llm ? <Row k="Tokens/s" v={fmt(m.generation_tokens_per_s, 1)} testId={`${m.name}-tokens`} /> : null}
        {m.kind !== "ollama" && m.kind !== "rtdetr" ? (
          <Row k="Queue" v={isNum(m.requests_waiting) || isNum(m.requests_running) ? `${fmt(m.requests_waiting)} waiting · ${fmt(m.requests_running)} running` : DASH} testId={`${m.name}-queue`} />
        ) : null}
        {llm && m.kind !== "ollama" ? <Row k="KV cache" v={fmt(kv, 0, "%")} testId={`${m.name}-kv`} /> : null}
        {isNum(kv) ? (
          <dd className="col-span-2 -mt-0.5 mb-1" aria-label={`KV cache ${Math.round(kv)}% used`}>
            <ProgressBar value={kv} color={kv >= 90 ? "amber" : "blue"} showAnimation={false} />
          </dd>
        ) : null}
        <Row k="VRAM" v={isNum(m.vram_gb) ? `${fmt(m.vram_gb, 2)} GB` : DASH} />
        {gpus || sm ? <Row k="GPUs" v={[gpus, sm].filter(Boolean).join(" · ")} /> : null}
        <dt className="text-xs leading-5 text-tremor-content dark:text-dark-tremor-content">Energy</dt>
        <dd className="flex min-w-0 items-center gap-2 font-medium tabular-nums text-tremor-content-strong dark:text-dark-tremor-content-strong">
          <span data-testid={`${m.name}-energy`} className="truncate" title={m.energy?.method}>
            {energyText(m)}
          </span>
          {m.energy ? (
            <Badge size="xs" color="gray" title={m.energy.method}>
              estimate
            </Badge>
          ) : null}
        </dd>
        {m.host ? <Row k="Host" v={m.host} /> : null}
      </dl>
      {m.loaded ? <LoadedList m={m} now={now} /> : null}
      {m.slots?.length ? <SlotList m={m} /> : null}
      {m.notes?.length ? (
        <ul className="mt-3 space-y-0.5 text-xs text-tremor-content dark:text-dark-tremor-content" aria-label="Not reported">
          {m.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      ) : null}
    </article>
  );
}

function LoadedList({ m, now }: { m: ModelEntry; now: number }) {
  const loaded = m.loaded ?? [];
  if (!loaded.length) return <p className="mt-3 text-xs text-tremor-content dark:text-dark-tremor-content">No model loaded.</p>;
  return (
    <ul className="mt-3 space-y-1 text-xs" aria-label="Loaded models">
      {loaded.map((l) => {
        const until = l.expires_at ? Date.parse(l.expires_at) : NaN;
        return (
          <li key={l.name} className="flex flex-wrap justify-between gap-x-2 text-tremor-content-strong dark:text-dark-tremor-content-strong">
            <span className="font-medium">{l.name}</span>
            <span className="tabular-nums text-tremor-content dark:text-dark-tremor-content">
              {fmt(l.vram_gb, 2)} of {fmt(l.size_gb, 2)} GB in VRAM ({fmt(l.vram_share_percent, 0, "%")}) · ctx {fmt(l.context_length)}
              {Number.isFinite(until) ? ` · unloads ${until > now ? `in ${ago(now, until).replace(" ago", "")}` : "now"}` : ""}
            </span>
          </li>
        );
      })}
    </ul>
  );
}

function SlotList({ m }: { m: ModelEntry }) {
  return (
    <ul className="mt-3 space-y-0.5 text-xs text-tremor-content dark:text-dark-tremor-content" aria-label="Slots">
      {(m.slots ?? []).map((s) => (
        <li key={s.id} className="tabular-nums">
          slot {s.id}: {s.busy ? "busy" : "idle"}
          {isNum(s.n_past) && isNum(s.n_ctx) && s.n_ctx > 0 ? ` · context ${fmt(s.n_past)} / ${fmt(s.n_ctx)} (${fmt((s.n_past / s.n_ctx) * 100, 0, "%")})` : isNum(s.n_ctx) ? ` · n_ctx ${fmt(s.n_ctx)}, use not reported` : ""}
          {isNum(s.n_decoded) ? ` · ${fmt(s.n_decoded)} decoded` : ""}
        </li>
      ))}
    </ul>
  );
}

export const ModelKindCard = memo(ModelKindCardImpl);

/** The entry of update.models behind one of the seed's two cards. */
export function seedEntry(u: Update, name: "rtdetr" | "nemotron"): ModelEntry | undefined {
  const host = u.ai_models?.[name]?.host;
  return (u.models ?? []).find((m) => m.name === name && m.host === host);
}

/**
 * Rows the seed's cards gain from the models list, after their own: for
 * llama.cpp tokens/s, queue and KV cache, and what the build cannot
 * report; for both the energy estimate.
 */
export function SeedExtraRows({ m }: { m: ModelEntry | undefined }) {
  if (!m) return null;
  const llama = m.kind === "llamacpp";
  return (
    <>
      {llama ? <Row k="Tokens/s" v={fmt(m.generation_tokens_per_s, 1)} testId={`${m.name}-tokens`} /> : null}
      {llama ? (
        <Row k="Queue" v={isNum(m.requests_waiting) || isNum(m.requests_running) ? `${fmt(m.requests_waiting)} deferred · ${fmt(m.requests_running)} processing` : DASH} testId={`${m.name}-queue`} />
      ) : null}
      {llama && isNum(m.kv_cache_percent) ? <Row k="KV cache" v={fmt(m.kv_cache_percent, 0, "%")} /> : null}
      {m.energy ? <Row k="Energy (estimate)" v={energyText(m)} testId={`${m.name}-energy`} title={m.energy.method} /> : null}
      {m.notes?.length ? (
        <dd className="col-span-2 mt-1 text-xs text-tremor-content dark:text-dark-tremor-content" data-testid={`${m.name}-notes`}>
          {m.notes.join(" · ")}
        </dd>
      ) : null}
    </>
  );
}
