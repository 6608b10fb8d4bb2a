import { memo, useMemo, type ReactNode } from "react";
import { fmt, isNum } from "../../lib/format";
import { sectionMeta, type SectionMeta } from "../../lib/sections";
import { rows } from "../../lib/series";
import { levelOf, percentOf, scaleOf, THRESHOLDS, useThresholds } from "../../lib/thresholds";
import { Section, type PostgreSQL, type Redis } from "../../types";
import { Absent, Chart, Figure, Meter, num0, num2, SectionCard, StaleBadge, StatusBadge } from "./common";
import type { PanelProps } from "./GpuOverviewPanel";

const ACTIVE = ["active"];
const MB = ["MB"];
const BLUE = ["blue"];
const VIOLET = ["violet"];
const MAX_FROM: Record<string, string | undefined> = { pool_size: "pool", max_connections: "max_connections" };

function DbCard(props: { title: string; kind: string; status: string | undefined; reason?: string | undefined; meta: SectionMeta; now: number; children: ReactNode }) {
  const { title, kind, status, reason, meta, now, children } = props;
  return (
    <article aria-label={title} data-db={kind} className="min-w-0 rounded-tremor-default border border-tremor-border p-4 dark:border-dark-tremor-border">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h3 className="text-sm font-semibold text-tremor-content-strong dark:text-dark-tremor-content-strong">{title}</h3>
        {meta.stale ? <StaleBadge lastSeen={meta.lastSeen} now={now} /> : null}
      </div>
      <div className="mt-2">
        <StatusBadge status={status || "unconfigured"} reason={reason} />
      </div>
      <div className="mt-3">{children}</div>
    </article>
  );
}

const notMonitored = (s: { status?: string } | undefined, meta: SectionMeta) => !s || !s.status || s.status === "unconfigured" || (!meta.source && s.status !== "unreachable" && s.status !== "unhealthy");

function PostgresBody({ pg, meta, chart }: { pg: PostgreSQL; meta: SectionMeta; chart: ReactNode }) {
  const th = useThresholds();
  if (notMonitored(pg, meta)) return <Absent title="PostgreSQL is not monitored" detail={meta.error ?? "Give the hub a PostgreSQL DSN to see connections, cache hits and transactions."} />;
  const connPct = percentOf(pg.connections_active, pg.connections_max);
  return (
    <div className="space-y-3">
      <Meter
        testId="pg-connections"
        label="Connections"
        value={`${fmt(pg.connections_active)} / ${fmt(pg.connections_max)}`}
        detail={MAX_FROM[pg.connections_max_from ?? ""]}
        percent={connPct}
        level={levelOf(connPct, th.pgConnectionsPercent)}
      />
      <Meter
        testId="pg-cache-hit"
        label="Cache hit"
        value={fmt(pg.cache_hit_ratio, 1, "%")}
        percent={isNum(pg.cache_hit_ratio) ? pg.cache_hit_ratio : null}
        level={levelOf(pg.cache_hit_ratio, th.pgCacheHit)}
        okColor="emerald"
      />
      <div className="grid grid-cols-2 gap-3">
        <Figure label="Transactions" value={fmt(pg.transactions_per_min, 0)} sub="per minute" />
        {isNum(pg.longest_query_s) ? <Figure label="Longest query" value={fmt(pg.longest_query_s, 1, "s")} /> : isNum(pg.deadlocks) ? <Figure label="Deadlocks" value={fmt(pg.deadlocks)} /> : null}
      </div>
      {chart}
    </div>
  );
}

/**
 * The further databases of the hub's config file (databases.postgresql_extra),
 * one line each: the first database keeps the card's meters and chart.
 */
function PostgresExtra({ dbs }: { dbs: PostgreSQL[] | undefined }) {
  const th = useThresholds();
  if (!dbs?.length) return null;
  return (
    <ul aria-label="Further PostgreSQL databases" className="mt-3 space-y-2 border-t border-tremor-border pt-3 dark:border-dark-tremor-border">
      {dbs.map((d, i) => {
        const name = d.database || `database ${i + 2}`;
        const level = levelOf(percentOf(d.connections_active, d.connections_max), th.pgConnectionsPercent);
        return (
          <li key={`${name}#${i}`} data-testid="pg-extra" data-db-name={name} className="flex flex-wrap items-center gap-x-3 gap-y-1 text-sm">
            <span className="min-w-0 break-all font-medium text-tremor-content-strong dark:text-dark-tremor-content-strong">{name}</span>
            <StatusBadge status={d.status} reason={d.reason} />
            <span data-testid="pg-extra-connections" data-level={level} className="tabular-nums text-tremor-content dark:text-dark-tremor-content">
              {fmt(d.connections_active)} / {fmt(d.connections_max)} connections
            </span>
            <span className="tabular-nums text-tremor-content dark:text-dark-tremor-content">{fmt(d.cache_hit_ratio, 1, "%")} cache hit</span>
            <span className="tabular-nums text-tremor-content dark:text-dark-tremor-content">{fmt(d.transactions_per_min, 0)} tx/min</span>
          </li>
        );
      })}
    </ul>
  );
}

function RedisBody({ r, meta, chart }: { r: Redis; meta: SectionMeta; chart: ReactNode }) {
  const th = useThresholds();
  if (notMonitored(r, meta)) return <Absent title="Redis is not monitored" detail={meta.error ?? "Give the hub a Redis address to see clients, memory and hit ratio."} />;
  const memScale = scaleOf(th.redisMemoryMb, THRESHOLDS.redisMemoryMb.critical);
  return (
    <div className="space-y-3">
      <Meter
        testId="redis-memory"
        label="Memory"
        value={fmt(r.memory_mb, 2, "MB")}
        detail={th.redisMemoryMb ? `alert at ${fmt(th.redisMemoryMb.warning)} MB` : "no alert"}
        percent={isNum(r.memory_mb) ? (r.memory_mb / memScale) * 100 : null}
        level={levelOf(r.memory_mb, th.redisMemoryMb)}
        okColor="violet"
      />
      <Meter
        testId="redis-hit"
        label="Keyspace hit ratio"
        value={fmt(r.hit_ratio, 2, "%")}
        percent={isNum(r.hit_ratio) ? r.hit_ratio : null}
        level={levelOf(r.hit_ratio, th.redisHitRatio)}
        okColor="emerald"
      />
      <div className="grid grid-cols-3 gap-3">
        <Figure label="Clients" value={fmt(r.connected_clients)} testId="redis-clients" />
        <Figure label="Blocked" value={fmt(r.blocked_clients)} />
        <Figure label="Ops/s" value={fmt(r.ops_per_sec, 0)} />
      </div>
      {chart}
    </div>
  );
}

function DatabasesPanelImpl({ update, history, resolutionS, now }: PanelProps) {
  const pg = update.databases?.postgresql;
  const rd = update.databases?.redis;
  const pgMeta = sectionMeta(update, Section.PostgreSQL);
  const rdMeta = sectionMeta(update, Section.Redis);
  const charts = useMemo(
    () => ({
      conn: rows(history, resolutionS, ACTIVE, (p) => ({ active: p.databases?.postgresql?.connections_active }), 0),
      mem: rows(history, resolutionS, MB, (p) => ({ MB: p.databases?.redis?.memory_mb }), 2),
    }),
    [history, resolutionS],
  );
  return (
    <SectionCard id="databases" title="Databases" now={now}>
      <div className="grid grid-cols-1 gap-4 md:grid-cols-2">
        <DbCard title="PostgreSQL" kind="postgresql" status={pg?.status} reason={pg?.reason} meta={pgMeta} now={now}>
          <PostgresBody
            pg={pg ?? ({ status: "unconfigured" } as PostgreSQL)}
            meta={pgMeta}
            chart={<Chart title="Connections" data={charts.conn} categories={ACTIVE} colors={BLUE} minValue={0} height="h-28" valueFormatter={num0} integer />}
          />
          <PostgresExtra dbs={update.databases?.postgresql_extra} />
        </DbCard>
        <DbCard title="Redis" kind="redis" status={rd?.status} reason={rd?.reason} meta={rdMeta} now={now}>
          <RedisBody
            r={rd ?? ({ status: "unconfigured" } as Redis)}
            meta={rdMeta}
            chart={<Chart title="Memory (MB)" data={charts.mem} categories={MB} colors={VIOLET} minValue={0} height="h-28" valueFormatter={num2} />}
          />
        </DbCard>
      </div>
    </SectionCard>
  );
}

export const DatabasesPanel = memo(DatabasesPanelImpl);
