import { Badge } from "@tremor/react";
import { memo, useMemo } from "react";
import { ago, fmt, fmtGB, isNum } from "../../lib/format";
import { colorsFor, pick } from "../../lib/colors";
import { sectionMeta, withHosts } from "../../lib/sections";
import { axisTop, hostRows } from "../../lib/series";
import { levelOf, percentOf, useThresholds } from "../../lib/thresholds";
import { Section, type HostView, type Update } from "../../types";
import { Absent, Chart, Meter, num1, pct0, SectionCard } from "./common";
import type { PanelProps } from "./GpuOverviewPanel";

interface HostEntry {
  name: string;
  online: boolean;
  lastSeen: string | null;
  system: HostView;
  error: string | null;
}


const hasAny = (h: HostView | undefined) => !!h && [h.cpu_percent, h.ram_used_gb, h.disk_used_gb].some(isNum);

export function hostEntries(u: Update): HostEntry[] {
  if (u.hosts && u.hosts.length) {
    return u.hosts.map((h) => ({
      name: h.host,
      online: h.online,
      lastSeen: h.last_seen,
      system: h.system,
      error: h.errors?.host ?? null,
    }));
  }
  if (hasAny(u.host)) {
    const src = u.sources?.[Section.Host];
    return [{ name: src?.startsWith("agent:") ? src.slice(6) : "host", online: true, lastSeen: null, system: u.host, error: null }];
  }
  return [];
}

function uptime(s: number | null | undefined): string | null {
  if (!isNum(s)) return null;
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  return d > 0 ? `${d} d ${h} h` : `${h} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Memoised: the deferred chart render passes the same host objects again. */
const HostCard = memo(function HostCard({ h, now, showName }: { h: HostEntry; now: number; showName: boolean }) {
  const th = useThresholds();
  const s = h.system;
  const ramPct = percentOf(s.ram_used_gb, s.ram_total_gb);
  const diskPct = percentOf(s.disk_used_gb, s.disk_total_gb);
  const up = uptime(s.uptime_s);
  return (
    <article aria-label={`Host ${h.name}`} data-host={h.name} data-online={h.online} className="min-w-0">
      {showName || !h.online ? (
        <div className="mb-2 flex flex-wrap items-center gap-2">
          <h3 className="text-sm font-semibold text-tremor-content-strong dark:text-dark-tremor-content-strong">{h.name}</h3>
          {h.online ? (
            <Badge color="emerald" size="xs">
              <span aria-hidden="true">● </span>online
            </Badge>
          ) : (
            <Badge color="amber" size="xs">
              stale — last seen {ago(h.lastSeen, now)}
            </Badge>
          )}
        </div>
      ) : null}
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-3">
        <Meter
          testId="host-cpu"
          label="CPU"
          value={fmt(s.cpu_percent, 1, "%")}
          detail={isNum(s.load1) ? `load ${fmt(s.load1, 2)}` : undefined}
          percent={isNum(s.cpu_percent) ? s.cpu_percent : null}
          level={levelOf(s.cpu_percent, th.hostCpu)}
        />
        <Meter
          testId="host-ram"
          label="RAM"
          value={`${fmtGB(s.ram_used_gb)} / ${fmtGB(s.ram_total_gb)} GB`}
          percent={ramPct}
          level={levelOf(ramPct, th.hostRamPercent)}
          okColor="violet"
        />
        <Meter
          testId="host-disk"
          label="Disk"
          value={`${fmtGB(s.disk_used_gb)} / ${fmtGB(s.disk_total_gb)} GB`}
          percent={diskPct}
          level={levelOf(diskPct, th.hostDiskPercent)}
          okColor="cyan"
        />
      </div>
      {h.error || up || isNum(s.net_rx_mb_s) ? (
        <p className="mt-2 flex flex-wrap gap-x-4 text-xs text-tremor-content dark:text-dark-tremor-content">
          {up ? <span>up {up}</span> : null}
          {isNum(s.net_rx_mb_s) ? (
            <span>
              net ↓ {fmt(s.net_rx_mb_s, 1)} ↑ {fmt(s.net_tx_mb_s, 1)} MB/s
            </span>
          ) : null}
          {isNum(s.disk_read_mb_s) ? (
            <span>
              disk r {fmt(s.disk_read_mb_s, 1)} w {fmt(s.disk_write_mb_s, 1)} MB/s
            </span>
          ) : null}
          {h.error ? <span className="text-red-600 dark:text-red-400">{h.error}</span> : null}
        </p>
      ) : null}
    </article>
  );
});

function HostSystemPanelImpl({ update, history, resolutionS, now }: PanelProps) {
  const hosts = hostEntries(update);
  const names = hosts.map((h) => h.name);
  // With several hosts the hub names one agent as the source; say all.
  const meta = withHosts(sectionMeta(update, Section.Host), names);
  const key = names.join("\u0000");
  const ramTop = Math.max(0, ...hosts.map((h) => (isNum(h.system.ram_total_gb) ? h.system.ram_total_gb : 0)));
  const charts = useMemo(() => {
    const cpu = hostRows(history, resolutionS, names, (h) => h.cpu_percent);
    // One colour per host from its name, the same in both charts.
    const colors = pick(colorsFor(cpu.categories), cpu.categories);
    return { colors, cpu, ram: hostRows(history, resolutionS, names, (h) => h.ram_used_gb) };
  }, [history, resolutionS, key]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <SectionCard id="host" title="Host system" count={hosts.length > 1 ? hosts.length : undefined} meta={meta} now={now}>
      {hosts.length === 0 ? (
        <Absent title="No host data" detail={meta.error ?? "No agent has reported yet. Start sysperf-agent on each host."} />
      ) : (
        <>
          <div className={hosts.length > 1 ? "grid grid-cols-1 gap-5 xl:grid-cols-2" : ""}>
            {hosts.map((h) => (
              <HostCard key={h.name} h={h} now={now} showName={hosts.length > 1} />
            ))}
          </div>
          <div className="mt-5 grid grid-cols-1 gap-x-6 gap-y-4 lg:grid-cols-2">
            <Chart title="CPU (%)" {...charts.cpu} colors={charts.colors} minValue={0} maxValue={100} valueFormatter={pct0} />
            {/* Scaled to the installed RAM, not to the data: 8 GB of 512 GB must not fill the chart. */}
            <Chart title="RAM used (GB)" {...charts.ram} colors={charts.colors} minValue={0} maxValue={ramTop > 0 ? axisTop(ramTop) : undefined} valueFormatter={num1} />
          </div>
        </>
      )}
    </SectionCard>
  );
}

export const HostSystemPanel = memo(HostSystemPanelImpl);
