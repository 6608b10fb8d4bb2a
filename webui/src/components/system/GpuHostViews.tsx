import { memo } from "react";
import { fmt, fmtGB, isNum } from "../../lib/format";
import { hostHeadroom, modelsByHost, type HostModels, type ModelRow } from "../../lib/gpus";
import type { GPUView, Point, Update } from "../../types";
import { Figure } from "./common";

const muted = "text-tremor-content dark:text-dark-tremor-content";
const strong = "text-tremor-content-strong dark:text-dark-tremor-content-strong";

const signed = (gb: number) => `${gb > 0 ? "+" : gb < 0 ? "−" : "±"}${fmtGB(Math.abs(gb))} GB`;

/** A host's VRAM headroom: free now and its low point over the range, the largest model one GPU could take now, and the trend. */
export function HostHeadroom({ host, gpus, history, rangeLabel }: { host: string; gpus: GPUView[]; history: Point[]; rangeLabel: string }) {
  const h = hostHeadroom(host, gpus, history);
  return (
    <div data-testid="host-headroom" data-host={host} className="grid grid-cols-2 gap-x-4 gap-y-2 sm:grid-cols-4">
      <Figure testId="headroom-free" label="VRAM free now" value={`${fmtGB(h.freeGb)} GB`} sub={h.totalGb !== null ? `of ${fmtGB(h.totalGb)} GB on ${h.gpus} GPU${h.gpus === 1 ? "" : "s"}` : null} />
      <Figure
        testId="headroom-low"
        label={`Low point (${rangeLabel})`}
        value={`${fmtGB(h.lowGb)} GB`}
        title="The least free VRAM over the selected range, from each slot's peak use"
        sub="free at peak use"
      />
      <Figure
        testId="headroom-fit"
        label="Largest model that fits now"
        value={`${fmtGB(h.largestFitGb)} GB`}
        sub={h.largestFitIndex !== null ? `on GPU ${h.largestFitIndex}, without splitting` : null}
        title="The most free VRAM on any one GPU of this host"
      />
      <Figure
        testId="headroom-trend"
        label={`VRAM use trend (${rangeLabel})`}
        value={h.trendGb === null ? "—" : signed(h.trendGb)}
        sub={h.trendGb === null ? "not enough history" : h.trendGb > 0.05 ? "less headroom than at the start" : h.trendGb < -0.05 ? "more headroom than at the start" : "steady"}
        title="VRAM used now minus at the start of the selected range (choose 24h or 7d for the long trend)"
      />
    </div>
  );
}

function ModelLine({ r, colors }: { r: ModelRow; colors: Map<string, string> }) {
  const name = r.model ?? "processes of no model";
  return (
    <tr data-testid="model-row" data-model={r.model ?? ""} data-vram={r.vramGb.toFixed(3)} className="border-t border-tremor-border align-top dark:border-dark-tremor-border">
      <th scope="row" className={`py-1 pr-3 text-left font-medium ${strong}`}>
        <span className="inline-flex max-w-[14rem] items-center gap-1.5">
          <span aria-hidden="true" className={`inline-block h-2 w-2 shrink-0 rounded-sm ${r.model ? `bg-${colors.get(r.model) ?? "blue-600"}` : "bg-gray-400"}`} />
          <span className="truncate" title={name}>
            {name}
          </span>
        </span>
      </th>
      <td className={`py-1 pr-3 tabular-nums ${muted}`}>{r.gpus.map((x) => `GPU ${x.index}`).join(", ")}</td>
      <td className={`py-1 pr-3 text-right tabular-nums ${strong}`}>
        {fmtGB(r.vramGb)} GB
        <span className={`block text-[11px] font-normal ${muted}`}>{r.processes === 1 ? "1 process" : `${r.processes} processes`}</span>
      </td>
      <td className={`py-1 pr-3 text-right tabular-nums ${strong}`} title={r.gpus.map((x) => `GPU ${x.index}: ${fmt(x.smPercent, 0, "%")}`).join(", ")}>
        {fmt(r.smPercent, 0, "%")}
      </td>
      <td className={`py-1 pr-3 text-right tabular-nums ${strong}`}>{isNum(r.powerW) ? `≈ ${fmt(r.powerW, 0)} W` : "—"}</td>
      <td className={`py-1 text-right tabular-nums ${muted}`} data-testid="model-server-vram">
        {r.serverVramGb !== null ? (
          <span title={`What the ${r.server} server itself reports (its /health); counted apart from the VRAM its processes hold`}>{fmtGB(r.serverVramGb)} GB</span>
        ) : (
          "—"
        )}
      </td>
    </tr>
  );
}

/** One host's models on its GPUs: never summed with another host's. */
export function HostModelsTable({ m, colors }: { m: HostModels; colors: Map<string, string> }) {
  if (!m.rows.length) {
    return (
      <p data-testid="host-models" data-host={m.host} className={`text-xs ${muted}`}>
        No GPU process reported on {m.host || "this host"}.
      </p>
    );
  }
  return (
    <div data-testid="host-models" data-host={m.host} data-process-vram={m.processVramGb.toFixed(3)} className="overflow-x-auto">
      <table className="w-full min-w-[34rem] text-xs">
        <caption className="sr-only">VRAM, SM share and estimated power by model on {m.host}</caption>
        <thead>
          <tr className={`text-left text-[11px] ${muted}`}>
            <th scope="col" className="pb-1 pr-3 font-normal">
              Model
            </th>
            <th scope="col" className="pb-1 pr-3 font-normal">
              GPUs
            </th>
            <th scope="col" className="pb-1 pr-3 text-right font-normal" title="VRAM its processes hold, from NVML">
              VRAM held (processes)
            </th>
            <th scope="col" className="pb-1 pr-3 text-right font-normal" title="Its processes' SM share, averaged over its GPUs">
              SM share
            </th>
            <th scope="col" className="pb-1 pr-3 text-right font-normal" title="SM share × each GPU's board power: an estimate, not a measurement">
              Power (estimate)
            </th>
            <th scope="col" className="pb-1 text-right font-normal" title="The VRAM figure the model server reports about itself (RT-DETRv2 /health)">
              Server reports
            </th>
          </tr>
        </thead>
        <tbody>
          {m.rows.map((r) => (
            <ModelLine key={r.model ?? ""} r={r} colors={colors} />
          ))}
        </tbody>
      </table>
      <p className={`mt-1 text-[11px] ${muted}`}>
        Processes hold {fmtGB(m.processVramGb)} GB of the {fmtGB(m.usedGb)} GB NVML counts as used on {m.host || "this host"}; the rest is the driver and
        processes NVML does not list. Power is an estimate (SM share × board power). &quot;Server reports&quot; is the model server&apos;s own figure, kept apart
        from what its processes hold.
      </p>
    </div>
  );
}

/** Per host: its headroom and its by-model view. */
function GpuHostViewsImpl({ update, gpus, history, rangeLabel, modelColors, multiHost }: { update: Update; gpus: GPUView[]; history: Point[]; rangeLabel: string; modelColors: Map<string, string>; multiHost: boolean }) {
  const hosts = modelsByHost(update, gpus);
  const anyProcesses = gpus.some((g) => g.processes !== undefined);
  return (
    <div className="mt-5 space-y-5">
      {hosts.map((m) => {
        const hostGpus = gpus.filter((g) => (g.host ?? "") === m.host);
        return (
          <section key={m.host} aria-label={`GPU headroom and models on ${m.host || "this host"}`} data-host-view={m.host} className="min-w-0 space-y-3">
            {multiHost ? <h3 className={`text-sm font-semibold ${strong}`}>{m.host}</h3> : null}
            <HostHeadroom host={m.host} gpus={hostGpus} history={history} rangeLabel={rangeLabel} />
            {anyProcesses ? (
              <div>
                <h4 className={`mb-1 text-xs font-medium ${muted}`}>By model{multiHost ? ` on ${m.host}` : ""}</h4>
                <HostModelsTable m={m} colors={modelColors} />
              </div>
            ) : null}
          </section>
        );
      })}
    </div>
  );
}

export const GpuHostViews = memo(GpuHostViewsImpl);
