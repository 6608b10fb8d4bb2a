import { useCallback, useDeferredValue, useEffect } from "react";
import { FleetCharts } from "../components/fleet/FleetCharts";
import { FleetTable } from "../components/fleet/FleetTable";
import { AiModelsPanel } from "../components/system/AiModelsPanel";
import { ContainersPanel } from "../components/system/ContainersPanel";
import { DatabasesPanel } from "../components/system/DatabasesPanel";
import { currentGpus, GpuOverviewPanel } from "../components/system/GpuOverviewPanel";
import { HostSystemPanel } from "../components/system/HostSystemPanel";
import { InferenceStatsPanel } from "../components/system/InferenceStatsPanel";
import { PageHeader } from "../components/system/PageHeader";
import { PerformanceAlerts } from "../components/system/PerformanceAlerts";
import { useAlertRules, type RulesOptions } from "../hooks/useAlertRules";
import { useHubHealth, type HealthOptions } from "../hooks/useHubHealth";
import { usePerformanceMetrics, type Options } from "../hooks/usePerformanceMetrics";
import { isRange } from "../lib/buffers";
import { ago, clock, plural } from "../lib/format";
import { useQuery } from "../lib/router";
import { useTheme } from "../lib/theme";
import { ThresholdsContext } from "../lib/thresholds";
import { sourceProblems } from "../lib/sections";
import { useNow } from "../lib/useNow";
import type { FleetUpdate, Range, Update } from "../types";

function summary(u: Update): string {
  const hosts = u.hosts?.length ?? 0;
  const gpus = currentGpus(u).length;
  const alerts = (u.alerts ?? []).filter((a) => a.state !== "pending").length;
  // Pending is said apart: it is not an alert yet.
  const pending = (u.alerts ?? []).length - alerts;
  const parts = [
    hosts ? plural(hosts, "host") : null,
    gpus ? plural(gpus, "GPU") : null,
    alerts ? plural(alerts, "alert") + " firing" : "no alerts firing",
    pending ? `${pending} pending` : null,
  ];
  return parts.filter(Boolean).join(" · ");
}

function fleetSummary(f: FleetUpdate): string {
  const t = f.totals;
  const alerts = t.alerts_critical + t.alerts_warning;
  return [plural(t.hosts, "host"), plural(t.gpus, "GPU"), alerts ? plural(alerts, "alert") + " firing" : "no alerts firing"].join(" · ");
}

/** A failing source that feeds several sections, said once above them all. */
function SourceProblems({ update }: { update: Update }) {
  const problems = sourceProblems(update);
  if (!problems.length) return null;
  return (
    <ul aria-label="Source problems" className="space-y-1 rounded-tremor-default border border-amber-300 bg-amber-50 px-4 py-2 text-sm text-amber-800 dark:border-amber-800 dark:bg-amber-950/40 dark:text-amber-200">
      {problems.map((p) => (
        <li key={p.source} data-source={p.source} className="break-words">
          <span className="font-medium">{p.name}:</span> {p.error}
        </li>
      ))}
    </ul>
  );
}

export function SystemPerformancePage({ options, rules, health }: { options?: Options; rules?: RulesOptions; health?: HealthOptions }) {
  // The URL carries the host and range, so a reload or a shared link lands
  // on the same view: /system?host=gpu01&range=15m.
  const [query, setQuery] = useQuery();
  const host = query.get("host") || null;
  const rawRange = query.get("range");
  const urlRange = isRange(rawRange) ? rawRange : null;
  const initialRange = urlRange ?? options?.initialRange;
  // Without a host the page opens the fleet view alone: it says how many
  // hosts there are, in a few bytes per host. More than one: the fleet
  // overview, and no host's sections until a row opens one (the default
  // feed would bring every host's GPUs and history). One host: the seed's
  // page on the default feed, the fleet view kept open so that a second
  // host joining brings the overview.
  const fleet = usePerformanceMetrics({ ...options, view: "fleet", enabled: !host, host: null, initialRange });
  const fleetHosts = fleet.fleet ? (fleet.fleet.hosts?.length ?? 0) : null;
  const multi = !host && fleetHosts !== null && fleetHosts > 1;
  const m = usePerformanceMetrics({ ...options, host, initialRange, enabled: host !== null || fleetHosts !== null && fleetHosts <= 1 });
  // What the header and the banners follow: the fleet view on the overview.
  const live = multi ? fleet : m;
  const { range, setRange: mSetRange } = m;
  const { setRange: fleetSetRange } = fleet;
  const hookSetRange = useCallback(
    (r: Range) => {
      mSetRange(r);
      fleetSetRange(r);
    },
    [mSetRange, fleetSetRange],
  );
  // Back and forward move the range too.
  useEffect(() => {
    if (urlRange && urlRange !== range) hookSetRange(urlRange);
  }, [urlRange, range, hookSetRange]);
  const setRange = useCallback(
    (r: Range) => {
      hookSetRange(r);
      setQuery({ range: r }, true);
    },
    [hookSetRange, setQuery],
  );
  const openHost = useCallback((h: string) => setQuery({ host: h, range }), [setQuery, range]);
  const thresholds = useAlertRules(live.connection, rules);
  const hubSays = useHubHealth(live.connection, health);
  const { theme, toggle } = useTheme();
  const now = useNow(5000);
  const u = m.latest;
  // Figures show a new update in the next frame. The charts' data follows in
  // a deferred render React can interrupt, and each chart then redraws in a
  // frame of its own (lib/frameQueue), so a burst of updates or a click never
  // waits behind a redraw of every chart.
  const history = useDeferredValue(m.history);
  const resolutionS = useDeferredValue(m.resolutionS);
  const panel = u ? { update: u, history, resolutionS, now } : null;
  // The fleet view's history and live totals, deferred the same way.
  const fleetHistory = useDeferredValue(fleet.history);
  const fleetResolutionS = useDeferredValue(fleet.resolutionS);
  const shownAt = multi ? (fleet.fleet?.timestamp ?? null) : (u?.timestamp ?? null);

  return (
    <ThresholdsContext.Provider value={thresholds}>
      <div className="mx-auto max-w-screen-2xl space-y-5 px-3 py-4 sm:px-6 sm:py-6" data-range={m.range}>
        <PageHeader
          range={m.range}
          setRange={setRange}
          connection={live.connection}
          everConnected={live.everConnected}
          updatedAt={shownAt}
          summary={multi && fleet.fleet ? fleetSummary(fleet.fleet) : u ? summary(u) : null}
          theme={theme}
          toggleTheme={toggle}
          now={now}
        />
        {host ? (
          <nav aria-label="Host" className="flex items-center gap-2 text-sm">
            <a
              href={`/system?range=${m.range}`}
              onClick={(e) => {
                e.preventDefault();
                setQuery({ host: null });
              }}
              className="font-medium text-tremor-brand hover:underline"
            >
              ← Fleet
            </a>
            <span aria-hidden="true" className="text-tremor-content-subtle">/</span>
            <span data-testid="host-name" className="font-semibold text-tremor-content-strong dark:text-dark-tremor-content-strong">
              {host}
            </span>
          </nav>
        ) : null}
        {shownAt && live.connection !== "connected" ? (
          <p role="alert" className="rounded-tremor-default border border-amber-300 bg-amber-50 px-4 py-2 text-sm text-amber-800 dark:border-amber-800 dark:bg-amber-950/40 dark:text-amber-200">
            Connection to the hub lost — showing the last update, from {clock(shownAt)} ({ago(shownAt, now)}). {hubSays ? `The hub answers but cannot serve the feed: ${hubSays}. Still retrying.` : live.connection === "offline" ? "The hub is unreachable; still retrying." : "Reconnecting…"}
          </p>
        ) : null}
        {multi ? (
          <>
            <FleetCharts history={fleetHistory} resolutionS={fleetResolutionS} range={fleet.range} now={now} />
            <FleetTable fleet={fleet.fleet} onOpen={openHost} />
          </>
        ) : !panel ? (
          <div role="status" className="rounded-tremor-default border border-dashed border-tremor-border px-6 py-16 text-center dark:border-dark-tremor-border">
            <p className="text-sm font-medium text-tremor-content-strong dark:text-dark-tremor-content-strong">
              {live.connection === "connected" ? "Connected — waiting for the first update from the hub…" : live.everConnected ? "Reconnecting to the hub…" : "Connecting to the hub…"}
            </p>
            {hubSays ? (
              <p data-testid="hub-says" className="mx-auto mt-2 max-w-2xl break-words text-sm text-amber-700 dark:text-amber-300">
                The hub answers but cannot serve the feed yet: {hubSays}
              </p>
            ) : null}
            <p className="mt-1 text-xs text-tremor-content dark:text-dark-tremor-content">The hub sends an update every interval (5 s by default).</p>
          </div>
        ) : (
          <>
            <SourceProblems update={panel.update} />
            <PerformanceAlerts alerts={panel.update.alerts} now={now} />
            <GpuOverviewPanel {...panel} range={m.range} />
            <AiModelsPanel update={panel.update} now={now} />
            <InferenceStatsPanel {...panel} range={m.range} />
            <DatabasesPanel {...panel} />
            <HostSystemPanel {...panel} range={m.range} />
            <ContainersPanel update={panel.update} now={now} />
          </>
        )}
        <footer className="pt-2 text-center text-[11px] text-tremor-content-subtle dark:text-dark-tremor-content-subtle">
          sysperf · {m.range} window, {m.resolutionS < 300 ? `${m.resolutionS} s` : `${Math.round(m.resolutionS / 60)} min`} per point
        </footer>
      </div>
    </ThresholdsContext.Provider>
  );
}
