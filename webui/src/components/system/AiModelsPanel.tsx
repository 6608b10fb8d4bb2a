import { DonutChart, Legend, ProgressBar } from "@tremor/react";
import { memo, type ReactNode } from "react";
import { fmt, isNum } from "../../lib/format";
import { sectionMeta, type SectionMeta } from "../../lib/sections";
import { Section, type ModelView, type Update } from "../../types";
import { Absent, CHART_COLORS, SectionCard, StaleBadge, StatusBadge } from "./common";
import { currentGpus } from "./GpuOverviewPanel";
import { extraModels, ModelKindCard, SeedExtraRows, seedEntry } from "./ModelCards";

interface Slice {
  name: string;
  vram: number;
}

/**
 * VRAM by model (or process when no model is known) over one host's GPUs,
 * largest first. Never summed across hosts: a model's VRAM on one box says
 * nothing about another box's headroom.
 */
export function vramSlices(u: Update, host?: string): { slices: Slice[]; known: boolean } {
  const by = new Map<string, number>();
  let known = false;
  let used = 0;
  let attributed = 0;
  for (const g of currentGpus(u)) {
    if (host !== undefined && (g.host ?? "") !== host) continue;
    if (isNum(g.vram_used_gb)) used += g.vram_used_gb;
    for (const p of g.processes ?? []) {
      known = true;
      if (!isNum(p.vram_gb)) continue;
      const name = p.model || p.container || p.name || `pid ${p.pid}`;
      by.set(name, (by.get(name) ?? 0) + p.vram_gb);
      attributed += p.vram_gb;
    }
  }
  const slices = [...by.entries()].map(([name, vram]) => ({ name, vram: Math.round(vram * 100) / 100 })).sort((a, b) => b.vram - a.vram);
  // What NVML counts as used but no listed process holds: the driver's and
  // other users' share, shown so the slices add up to the bar above.
  const rest = used - attributed;
  if (known && rest > 0.05) slices.push({ name: "other / driver", vram: Math.round(rest * 100) / 100 });
  return { slices, known };
}

function ModelCard(props: { title: string; kind: string; m: ModelView; meta: SectionMeta; now: number; flag: string; children: ReactNode }) {
  const { title, kind, m, meta, now, flag, children } = props;
  const unconfigured = m.status === "unconfigured" || !m.status;
  return (
    <article aria-label={title} data-model={kind} className="rounded-tremor-default border border-tremor-border p-4 dark:border-dark-tremor-border">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h3 className="text-sm font-semibold text-tremor-content-strong dark:text-dark-tremor-content-strong">
          {title} <span className="font-normal text-tremor-content dark:text-dark-tremor-content">({kind === "rtdetr" ? "Detection" : "LLM"})</span>
        </h3>
        {meta.stale || m.stale ? <StaleBadge lastSeen={meta.lastSeen} now={now} /> : null}
      </div>
      <div className="mt-2">
        <StatusBadge status={m.status || "unconfigured"} reason={m.reason} />
      </div>
      {unconfigured ? (
        <p className="mt-3 text-xs text-tremor-content dark:text-dark-tremor-content">
          No agent reports {title}. Give an agent <code className="rounded bg-tremor-background-subtle px-1 dark:bg-dark-tremor-background-subtle">{flag}</code> to monitor it.
        </p>
      ) : (
        <dl className="mt-3 grid grid-cols-[auto_1fr] gap-x-4 gap-y-1.5 text-sm">
          {children}
          {m.host ? <Row k="Host" v={m.host} /> : null}
        </dl>
      )}
    </article>
  );
}

function Row({ k, v, testId }: { k: string; v: string; testId?: string }) {
  return (
    <>
      <dt className="text-xs leading-5 text-tremor-content dark:text-dark-tremor-content">{k}</dt>
      <dd data-testid={testId} className="min-w-0 truncate font-medium tabular-nums text-tremor-content-strong dark:text-dark-tremor-content-strong" title={v}>
        {v}
      </dd>
    </>
  );
}

function AiModelsPanelImpl({ update, now }: { update: Update; now: number }) {
  const rt = update.ai_models?.rtdetr ?? { status: "unconfigured" };
  const nm = update.ai_models?.nemotron ?? { status: "unconfigured" };
  const rtMeta = sectionMeta(update, Section.RTDETR);
  const nmMeta = sectionMeta(update, Section.Nemotron);
  // One donut per host that has GPUs (in host order); a host's "other /
  // driver" slice is what its own GPUs hold outside any listed process.
  const hostNames = [...new Set(currentGpus(update).map((g) => g.host ?? ""))].sort();
  const donuts = (hostNames.length ? hostNames : [""]).map((h) => ({ host: h, ...vramSlices(update, hostNames.length > 1 ? h : undefined) }));
  const slotsPct = isNum(nm.slots_active) && isNum(nm.slots_total) && nm.slots_total > 0 ? (nm.slots_active / nm.slots_total) * 100 : null;

  return (
    <SectionCard id="models" title="AI models" now={now}>
      <div className="grid grid-cols-1 gap-4 md:grid-cols-2 xl:grid-cols-3">
        <ModelCard title="RT-DETRv2" kind="rtdetr" m={rt} meta={rtMeta} now={now} flag="--rtdetr-url">
          <Row k="VRAM" v={isNum(rt.vram_gb) ? `${fmt(rt.vram_gb, 2)} GB` : "—"} testId="rtdetr-vram" />
          <Row k="Model" v={rt.model || "—"} />
          <Row k="Device" v={rt.device || "—"} />
          <SeedExtraRows m={seedEntry(update, "rtdetr")} />
        </ModelCard>
        <ModelCard title="Nemotron" kind="nemotron" m={nm} meta={nmMeta} now={now} flag="--llm-url">
          <Row k="Slots" v={isNum(nm.slots_active) || isNum(nm.slots_total) ? `${fmt(nm.slots_active)} / ${fmt(nm.slots_total)} active` : "—"} testId="nemotron-slots" />
          {slotsPct !== null ? (
            <dd className="col-span-2 -mt-0.5 mb-1" aria-label={`${Math.round(slotsPct)}% of slots busy`}>
              <ProgressBar value={slotsPct} color={slotsPct >= 100 ? "amber" : "blue"} showAnimation={false} />
            </dd>
          ) : null}
          <Row k="Context" v={isNum(nm.context_size) ? `${fmt(nm.context_size)} tokens` : "—"} />
          {nm.model ? <Row k="Model" v={nm.model} /> : null}
          {isNum(nm.vram_gb) ? <Row k="VRAM" v={`${fmt(nm.vram_gb, 2)} GB`} /> : null}
          <SeedExtraRows m={seedEntry(update, "nemotron")} />
        </ModelCard>
        {extraModels(update).map((m) => (
          <ModelKindCard key={`${m.host}/${m.name}`} m={m} now={now} lastSeen={update.hosts?.find((h) => h.host === m.host)?.last_seen} />
        ))}
        {donuts.map(({ host, slices, known }) => (
        <article key={host} aria-label={donuts.length > 1 ? `VRAM by model on ${host}` : "VRAM by model"} className="rounded-tremor-default border border-tremor-border p-4 md:col-span-2 xl:col-span-1 dark:border-dark-tremor-border">
          <h3 className="text-sm font-semibold text-tremor-content-strong dark:text-dark-tremor-content-strong">
            VRAM by model{donuts.length > 1 ? ` on ${host}` : ""}
          </h3>
          {slices.length ? (
            <div className="mt-3 flex flex-col items-center gap-4 sm:flex-row xl:flex-col 2xl:flex-row">
              <DonutChart
                className="h-32 w-32 shrink-0"
                data={slices}
                category="vram"
                index="name"
                colors={CHART_COLORS}
                valueFormatter={(v: number) => `${v.toFixed(2)} GB`}
                showAnimation={false}
                label={`${slices.reduce((s, x) => s + x.vram, 0).toFixed(1)} GB`}
              />
              <Legend categories={slices.map((s) => `${s.name} ${s.vram.toFixed(2)} GB`)} colors={CHART_COLORS} className="max-w-full" />
            </div>
          ) : (
            <div className="mt-3">
              <Absent
                title={known ? "No process holds VRAM" : "No per-process VRAM reported"}
                detail={known ? "The GPU has no compute processes right now." : "The agent reports GPU processes when NVML is available on the host."}
              />
            </div>
          )}
        </article>
        ))}
      </div>
    </SectionCard>
  );
}

export const AiModelsPanel = memo(AiModelsPanelImpl);
