import { Callout } from "@tremor/react";
import { ago, clock, fmt } from "../../lib/format";
import type { Alert } from "../../types";

const rank = (a: Alert) => (a.severity === "critical" ? 0 : 2) + (a.state === "pending" ? 1 : 0);

function where(a: Alert): string | null {
  const parts = [a.target, a.host && a.host !== a.target ? `on ${a.host}` : null].filter(Boolean);
  return parts.length ? parts.join(" ") : null;
}

/** Pending and firing alerts as Callouts: red for critical, yellow for warning. */
export function PerformanceAlerts({ alerts, now }: { alerts: Alert[] | null | undefined; now: number }) {
  const list = (alerts ?? []).slice().sort((a, b) => rank(a) - rank(b) || a.message.localeCompare(b.message));
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
          const w = where(a);
          return (
            <li key={`${a.rule ?? a.metric}|${a.host ?? ""}|${a.target ?? ""}|${i}`} data-severity={a.severity} data-state={a.state ?? "firing"}>
              <Callout
                title={`${critical ? "Critical" : "Warning"}${pending ? " (pending)" : ""}: ${a.message}`}
                color={critical ? "red" : "yellow"}
                className={pending ? "opacity-80" : undefined}
              >
                <span className="flex flex-wrap gap-x-3 gap-y-0.5 text-xs">
                  <span>
                    value <b className="tabular-nums">{fmt(a.value, 2)}</b> · threshold <b className="tabular-nums">{fmt(a.threshold, 2)}</b>
                  </span>
                  {w ? <span>{w}</span> : null}
                  {a.since ? (
                    <span title={new Date(a.since).toISOString()}>
                      {pending ? "pending" : "firing"} since {clock(a.since)} ({ago(a.since, now)})
                    </span>
                  ) : null}
                </span>
              </Callout>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
