import { Callout } from "@tremor/react";
import { ago, clock, fmt } from "../../lib/format";
import type { Alert } from "../../types";

const sinceMs = (a: Alert) => {
  const t = a.since ? Date.parse(a.since) : NaN;
  return Number.isFinite(t) ? t : Infinity;
};

/**
 * Firing before pending (pending is not an alert yet), then critical before
 * warning, then the oldest first: what has been wrong longest leads.
 */
export function alertOrder(a: Alert, b: Alert): number {
  const pend = (x: Alert) => (x.state === "pending" ? 1 : 0);
  const sev = (x: Alert) => (x.severity === "critical" ? 0 : x.severity === "warning" ? 1 : 2);
  return pend(a) - pend(b) || sev(a) - sev(b) || sinceMs(a) - sinceMs(b) || a.message.localeCompare(b.message);
}

function where(a: Alert): string | null {
  const parts = [a.target, a.host && a.host !== a.target ? `on ${a.host}` : null].filter(Boolean);
  return parts.length ? parts.join(" ") : null;
}

function Details({ a, now, pending }: { a: Alert; now: number; pending: boolean }) {
  const w = where(a);
  return (
    <span className="flex flex-wrap gap-x-3 gap-y-0.5 text-xs">
      <span>
        value <b className="tabular-nums">{fmt(a.value, 2)}</b> · threshold <b className="tabular-nums">{fmt(a.threshold, 2)}</b>
      </span>
      {w ? <span className="break-words">{w}</span> : null}
      {a.since ? (
        <span title={new Date(a.since).toISOString()} data-testid="alert-since">
          {pending ? "pending since" : "firing since"} {clock(a.since)} ({ago(a.since, now)})
        </span>
      ) : null}
    </span>
  );
}

/**
 * Firing alerts as Callouts, red for critical and yellow for warning;
 * pending ones (the condition holds but not yet for the rule's `for`) muted
 * and grey, saying they are not firing, so they never read as an alert.
 */
export function PerformanceAlerts({ alerts, now }: { alerts: Alert[] | null | undefined; now: number }) {
  const list = (alerts ?? []).slice().sort(alertOrder);
  if (!list.length) return null;
  const firing = list.filter((a) => a.state !== "pending").length;
  return (
    <section aria-labelledby="alerts-title" data-section="alerts">
      <h2 id="alerts-title" className="sr-only">
        Alerts: {firing} firing, {list.length - firing} pending
      </h2>
      <ul className="grid gap-2 lg:grid-cols-2">
        {list.map((a, i) => {
          const critical = a.severity === "critical";
          const pending = a.state === "pending";
          const sev = critical ? "Critical" : "Warning";
          return (
            <li key={`${a.rule ?? a.metric}|${a.host ?? ""}|${a.target ?? ""}|${i}`} data-severity={a.severity} data-state={a.state ?? "firing"} className="min-w-0">
              {pending ? (
                <div
                  role="status"
                  className="h-full rounded-tremor-default border border-dashed border-tremor-border bg-tremor-background-muted px-4 py-3 text-tremor-content dark:border-dark-tremor-border dark:bg-dark-tremor-background-muted dark:text-dark-tremor-content"
                >
                  <p className="break-words text-sm">
                    <span className="mr-1.5 rounded border border-tremor-border px-1 text-[11px] uppercase tracking-wide dark:border-dark-tremor-border">pending</span>
                    <span className="font-medium">{sev.toLowerCase()}, not firing yet:</span> {a.message}
                  </p>
                  <div className="mt-1">
                    <Details a={a} now={now} pending />
                  </div>
                </div>
              ) : (
                <Callout title={`${sev}: ${a.message}`} color={critical ? "red" : "yellow"} className="h-full break-words [&_h4]:whitespace-normal">
                  <Details a={a} now={now} pending={false} />
                </Callout>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
