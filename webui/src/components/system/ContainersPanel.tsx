import { Badge, Tracker } from "@tremor/react";
import { memo, useMemo } from "react";
import { clock } from "../../lib/format";
import { useFramed } from "../../lib/frameQueue";
import { sectionMeta } from "../../lib/sections";
import { levelOf, useThresholds } from "../../lib/thresholds";
import { Section, type Container, type Update } from "../../types";
import { Absent, SectionCard, statusColor } from "./common";

const healthy = (c: Container) => c.health === "healthy" || (c.health === "" && c.status === "running");

function healthOf(c: Container): string {
  return c.health || c.status || "unknown";
}

type Timeline = NonNullable<Container["timeline"]>;

/** The hub keeps 60 points per container. */
const SLOTS = 60;

const sameTimeline = (a: Timeline, b: Timeline) =>
  a === b || (a.length === b.length && a.every((p, i) => p.timestamp === b[i]!.timestamp && p.health === b[i]!.health));

/**
 * Each Tracker block carries its own tooltip, so a redraw of every timeline
 * costs a few milliseconds: it waits for a frame of its own (useFramed)
 * rather than holding up the update's figures, and happens only when the
 * timeline moved.
 */
const HealthTimeline = memo(function HealthTimeline({ timeline }: { timeline: Timeline }) {
  const tl = useFramed(timeline, sameTimeline);
  const data = useMemo(() => {
    const shown = tl.slice(-SLOTS);
    // A short timeline (the hub restarted, the container is new) keeps its
    // place at the right end: empty slots fill the left, so each block is
    // always one interval wide instead of a few blocks stretched across.
    const empty = Array.from({ length: SLOTS - shown.length }, (_, i) => ({ key: `empty-${i}`, color: "transparent", tooltip: "no reading" }));
    return [...empty, ...shown.map((p, i) => ({ key: `${p.timestamp}-${i}`, color: statusColor(p.health), tooltip: `${clock(p.timestamp)} · ${p.health}` }))];
  }, [tl]);
  return <Tracker className="h-6" data={data} />;
}, (a, b) => sameTimeline(a.timeline, b.timeline));

function ContainersPanelImpl({ update, now }: { update: Update; now: number }) {
  const meta = sectionMeta(update, Section.Containers);
  const list = update.containers ?? [];
  const unhealthy = list.filter((c) => !healthy(c));
  const level = levelOf(unhealthy.length, useThresholds().containersUnhealthy);
  const summary = list.length
    ? unhealthy.length
      ? `${unhealthy.length} of ${list.length} not healthy`
      : `all ${list.length} healthy`
    : null;
  return (
    <SectionCard
      id="containers"
      title="Containers"
      count={list.length || undefined}
      meta={meta}
      now={now}
      right={
        summary ? (
          <span data-level={level} className={`text-xs ${level === "ok" ? "text-emerald-600 dark:text-emerald-400" : level === "warning" ? "text-amber-600 dark:text-amber-400" : "text-red-600 dark:text-red-400"}`}>
            {summary}
          </span>
        ) : null
      }
    >
      {list.length === 0 ? (
        <Absent title="No containers monitored" detail={meta.error ?? "List the containers and their health URLs under containers: in the hub's config file."} />
      ) : (
        <>
          <ul className="flex flex-wrap gap-2" aria-label="Container health">
            {list.map((c) => (
              <li key={c.name}>
                <Badge color={statusColor(healthOf(c))} size="sm" data-container={c.name} data-health={healthOf(c)} title={c.reason ?? `${c.status} · ${c.health}`}>
                  <span aria-hidden="true">● </span>
                  {c.name}
                  <span className="sr-only"> {healthOf(c)}</span>
                  {!healthy(c) ? <span className="ml-1 font-normal">({healthOf(c)})</span> : null}
                </Badge>
              </li>
            ))}
          </ul>
          <div className="mt-4 space-y-2.5">
            {list.map((c) => {
              const tl = c.timeline ?? [];
              return (
                <div key={c.name} className="grid grid-cols-[7rem_1fr] items-center gap-3 sm:grid-cols-[9rem_1fr]" data-tracker={c.name}>
                  <div className="min-w-0">
                    <p className="truncate text-xs font-medium text-tremor-content-strong dark:text-dark-tremor-content-strong" title={c.name}>{c.name}</p>
                  </div>
                  {tl.length ? <HealthTimeline timeline={tl} /> : <p className="text-xs text-tremor-content-subtle dark:text-dark-tremor-content-subtle">no health history yet</p>}
                  {/* The whole reason, wrapped under the row: a health check's output is the part worth reading. */}
                  {c.reason && !healthy(c) ? (
                    <p data-testid="container-reason" className="col-span-2 -mt-1.5 whitespace-pre-line break-words text-[11px] text-red-600 [overflow-wrap:anywhere] dark:text-red-400">
                      {c.reason}
                    </p>
                  ) : null}
                </div>
              );
            })}
          </div>
        </>
      )}
    </SectionCard>
  );
}

export const ContainersPanel = memo(ContainersPanelImpl);
