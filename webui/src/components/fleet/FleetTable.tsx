import { Table, TableBody, TableCell, TableHead, TableHeaderCell, TableRow } from "@tremor/react";
import { memo, useCallback, useMemo, useState, type KeyboardEvent, type ReactNode } from "react";
import { DASH, plural } from "../../lib/format";
import type { FleetRow, FleetUpdate } from "../../types";

export type HostStatus = "online" | "offline" | "alerting";

/** Offline wins: an offline host's alerts are about its last samples. */
export function hostStatus(r: FleetRow): HostStatus {
  if (r.off) return "offline";
  return (r.ac ?? 0) > 0 || (r.aw ?? 0) > 0 ? "alerting" : "online";
}

function since(s: number): string {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

const n = (v: number | undefined, unit = "") => (v === undefined ? DASH : `${v}${unit}`);

const STATUS_STYLE: Record<HostStatus, string> = {
  online: "bg-emerald-500",
  offline: "bg-gray-400 dark:bg-gray-500",
  alerting: "bg-red-500",
};

interface Column {
  key: string;
  label: string;
  /** The figure sorted on; undefined (nobody reported it) sorts last either way. */
  value: (r: FleetRow) => number | string | undefined;
  cell: (r: FleetRow) => ReactNode;
  numeric?: boolean;
}

const unhealthy = (r: FleetRow) => (r.mx ? Object.keys(r.mx).length : 0);

const COLUMNS: Column[] = [
  { key: "host", label: "Host", value: (r) => r.h, cell: (r) => <span className="font-medium text-tremor-content-strong dark:text-dark-tremor-content-strong">{r.h}</span> },
  {
    key: "status",
    label: "Status",
    value: hostStatus,
    cell: (r) => {
      const s = hostStatus(r);
      return (
        <span className="inline-flex items-center gap-1.5" data-status={s}>
          <span aria-hidden="true" className={`h-2 w-2 rounded-full ${STATUS_STYLE[s]}`} />
          {s}
        </span>
      );
    },
  },
  { key: "seen", label: "Last seen", value: (r) => r.ago, cell: (r) => `${since(r.ago)} ago`, numeric: true },
  { key: "gpus", label: "GPUs", value: (r) => r.g, cell: (r) => r.g, numeric: true },
  { key: "util", label: "GPU util", value: (r) => r.um, cell: (r) => (r.um === undefined ? DASH : `${r.um} %${r.ux !== undefined ? ` (max ${r.ux})` : ""}`), numeric: true },
  { key: "vram", label: "VRAM", value: (r) => r.vu, cell: (r) => (r.vu === undefined ? DASH : `${r.vu}${r.vt !== undefined ? ` / ${r.vt}` : ""} GB`), numeric: true },
  { key: "temp", label: "Hottest", value: (r) => r.t, cell: (r) => n(r.t, " °C"), numeric: true },
  { key: "power", label: "Power", value: (r) => r.p, cell: (r) => (r.p === undefined ? DASH : `${r.p}${r.pl !== undefined ? ` / ${r.pl}` : ""} W`), numeric: true },
  {
    key: "models",
    label: "Models",
    // Hosts with servers down first when sorted descending.
    value: (r) => (r.mn === undefined && !r.mx ? undefined : unhealthy(r) * 10_000 + (r.mn ?? 0)),
    cell: (r) => {
      const bad = unhealthy(r);
      if (r.mn === undefined && !bad) return DASH;
      const title = r.mx ? Object.entries(r.mx).map(([role, st]) => `${role}: ${st}`).join(", ") : undefined;
      return (
        <span title={title}>
          {r.mn ?? 0}
          {bad ? <span className="text-red-600 dark:text-red-400"> ({bad} not healthy)</span> : null}
        </span>
      );
    },
    numeric: true,
  },
  {
    key: "alerts",
    label: "Alerts",
    value: (r) => (r.ac ?? 0) * 10_000 + (r.aw ?? 0),
    cell: (r) =>
      !r.ac && !r.aw ? (
        "0"
      ) : (
        <span>
          {r.ac ? <span className="text-red-600 dark:text-red-400">{r.ac} critical</span> : null}
          {r.ac && r.aw ? " · " : null}
          {r.aw ? <span className="text-amber-600 dark:text-amber-400">{r.aw} warning</span> : null}
        </span>
      ),
    numeric: true,
  },
  { key: "cpu", label: "CPU", value: (r) => r.c, cell: (r) => n(r.c, " %"), numeric: true },
  { key: "ram", label: "RAM", value: (r) => r.ru, cell: (r) => (r.ru === undefined ? DASH : `${r.ru}${r.rt !== undefined ? ` / ${r.rt}` : ""} GB`), numeric: true },
];

type Dir = "ascending" | "descending";
interface Sort {
  key: string;
  dir: Dir;
}

// One collator: localeCompare with options builds one per call, which made
// a 500-row sort by name cost ~150 ms.
const byName = new Intl.Collator(undefined, { numeric: true }).compare;

function compare(a: number | string | undefined, b: number | string | undefined): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return byName(String(a), String(b));
}

/** Sorted copy; rows without the figure go last in both directions, ties by name. */
export function sortRows(rows: readonly FleetRow[], sort: Sort): FleetRow[] {
  const col = COLUMNS.find((c) => c.key === sort.key) ?? COLUMNS[0]!;
  const sign = sort.dir === "ascending" ? 1 : -1;
  const keyed = rows.map((r) => ({ r, v: col.value(r) }));
  keyed.sort((x, y) => {
    if (x.v === undefined || y.v === undefined) {
      if (x.v === y.v) return byName(x.r.h, y.r.h);
      return x.v === undefined ? 1 : -1;
    }
    return sign * compare(x.v, y.v) || byName(x.r.h, y.r.h);
  });
  return keyed.map((k) => k.r);
}

/** Fixed row height: what lets the table render only the rows in view. */
export const ROW_H = 37;
const VIEW_H = 592; // 16 rows
const OVERSCAN = 8;

const Row = memo(function Row({ row, onOpen }: { row: FleetRow; onOpen: (host: string) => void }) {
  const open = () => onOpen(row.h);
  const key = (e: KeyboardEvent) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      open();
    }
  };
  return (
    <TableRow
      data-host={row.h}
      tabIndex={0}
      onClick={open}
      onKeyDown={key}
      style={{ height: ROW_H }}
      className="cursor-pointer hover:bg-tremor-background-muted focus:bg-tremor-background-muted focus:outline-none dark:hover:bg-dark-tremor-background-muted dark:focus:bg-dark-tremor-background-muted"
    >
      {COLUMNS.map((c) => (
        <TableCell key={c.key} className={`whitespace-nowrap px-3 py-2 ${c.numeric ? "text-right tabular-nums" : ""}`}>
          {c.cell(row)}
        </TableCell>
      ))}
    </TableRow>
  );
});

function Totals({ fleet }: { fleet: FleetUpdate }) {
  const t = fleet.totals;
  const parts = [
    `${t.online} of ${plural(t.hosts, "host")} online`,
    plural(t.gpus, "GPU"),
    t.util_mean !== undefined ? `GPU util ${t.util_mean} % mean` : null,
    t.vram_used_gb !== undefined ? `VRAM ${Math.round(t.vram_used_gb)}${t.vram_total_gb !== undefined ? ` / ${Math.round(t.vram_total_gb)}` : ""} GB` : null,
    t.power_watts !== undefined ? `${Math.round(t.power_watts)}${t.power_limit_watts !== undefined ? ` / ${Math.round(t.power_limit_watts)}` : ""} W` : null,
    t.alerts_critical || t.alerts_warning ? `${t.alerts_critical} critical, ${t.alerts_warning} warning alerts` : "no alerts firing",
  ];
  return (
    <p data-testid="fleet-totals" className="text-sm text-tremor-content dark:text-dark-tremor-content">
      {parts.filter(Boolean).join(" · ")}
    </p>
  );
}

const INPUT =
  "rounded-tremor-default border border-tremor-border bg-tremor-background px-3 py-1.5 text-sm text-tremor-content-strong shadow-tremor-input focus:border-tremor-brand-subtle focus:outline-none focus:ring-2 focus:ring-tremor-brand-muted dark:border-dark-tremor-border dark:bg-dark-tremor-background dark:text-dark-tremor-content-strong";

/**
 * Every host in one table: sortable by each column, filtered by name and
 * status, and a picker that opens a host by name. Only the rows in view (and
 * a margin) are rendered, so 2,000 hosts sort and filter as fast as 20.
 */
// Memoised: the page re-renders on every update of the other view; the
// table only when its own data, or the host opener, changes.
export const FleetTable = memo(function FleetTable({ fleet, onOpen }: { fleet: FleetUpdate | null; onOpen: (host: string) => void }) {
  const [sort, setSort] = useState<Sort>({ key: "host", dir: "ascending" });
  const [name, setName] = useState("");
  const [status, setStatus] = useState<"" | HostStatus>("");
  const [pick, setPick] = useState("");
  const [scrollTop, setScrollTop] = useState(0);

  const rows = fleet?.hosts ?? null;
  const sorted = useMemo(() => (rows ? sortRows(rows, sort) : []), [rows, sort]);
  const shown = useMemo(() => {
    const q = name.trim().toLowerCase();
    if (!q && !status) return sorted;
    return sorted.filter((r) => (!q || r.h.toLowerCase().includes(q)) && (!status || hostStatus(r) === status));
  }, [sorted, name, status]);
  const names = useMemo(() => (rows ? rows.map((r) => r.h).sort(byName) : []), [rows]);
  const known = useMemo(() => new Set(names), [names]);

  const by = useCallback((key: string) => {
    setSort((s) => (s.key === key ? { key, dir: s.dir === "ascending" ? "descending" : "ascending" } : { key, dir: "ascending" }));
  }, []);

  const openPicked = (v: string) => {
    if (known.has(v.trim())) onOpen(v.trim());
  };

  // Window: the rows in view plus a margin; spacers keep the scroll height.
  const top = Math.min(scrollTop, Math.max(0, shown.length * ROW_H - VIEW_H));
  const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
  const last = Math.min(shown.length, Math.ceil((top + VIEW_H) / ROW_H) + OVERSCAN);
  const visible = shown.slice(first, last);

  return (
    <section data-section="fleet" aria-labelledby="fleet-title" className="space-y-3 rounded-tremor-default border border-tremor-border bg-tremor-background p-4 shadow-tremor-card dark:border-dark-tremor-border dark:bg-dark-tremor-background">
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h2 id="fleet-title" className="text-base font-semibold text-tremor-content-strong dark:text-dark-tremor-content-strong">
          Fleet
        </h2>
        {fleet ? <Totals fleet={fleet} /> : null}
      </div>
      <div className="flex flex-wrap items-end gap-3">
        <label className="flex flex-col gap-1 text-xs text-tremor-content dark:text-dark-tremor-content">
          Filter by name
          <input type="search" value={name} onChange={(e) => setName(e.target.value)} placeholder="gpu01" className={INPUT} />
        </label>
        <label className="flex flex-col gap-1 text-xs text-tremor-content dark:text-dark-tremor-content">
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value as "" | HostStatus)} className={INPUT}>
            <option value="">All</option>
            <option value="online">Online</option>
            <option value="alerting">Alerting</option>
            <option value="offline">Offline</option>
          </select>
        </label>
        <form
          className="ml-auto flex items-end gap-2"
          onSubmit={(e) => {
            e.preventDefault();
            openPicked(pick);
          }}
        >
          <label className="flex flex-col gap-1 text-xs text-tremor-content dark:text-dark-tremor-content">
            Open host
            <input
              list="fleet-host-names"
              value={pick}
              onChange={(e) => {
                setPick(e.target.value);
                // Choosing from the list opens at once; typing waits for Enter.
                if ((e.nativeEvent as InputEvent).inputType === "insertReplacementText" || !(e.nativeEvent as InputEvent).inputType) openPicked(e.target.value);
              }}
              placeholder="Search hosts…"
              className={INPUT}
            />
          </label>
          <datalist id="fleet-host-names">
            {names.map((h) => (
              <option key={h} value={h} />
            ))}
          </datalist>
          <button type="submit" className="rounded-tremor-default bg-tremor-brand px-3 py-1.5 text-sm font-medium text-tremor-brand-inverted hover:bg-tremor-brand-emphasis">
            Open
          </button>
        </form>
      </div>
      {!fleet ? (
        <p role="status" className="py-8 text-center text-sm text-tremor-content dark:text-dark-tremor-content">
          Waiting for the fleet view from the hub…
        </p>
      ) : (
        <>
          <p className="text-xs text-tremor-content dark:text-dark-tremor-content" data-testid="fleet-count">
            {shown.length === (rows?.length ?? 0) ? plural(shown.length, "host") : `${shown.length} of ${plural(rows?.length ?? 0, "host")}`}
          </p>
          <div data-testid="fleet-scroll" className="overflow-auto" style={{ maxHeight: VIEW_H + ROW_H }} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}>
            <Table className="overflow-visible" aria-rowcount={shown.length + 1}>
              <TableHead className="sticky top-0 z-10 bg-tremor-background dark:bg-dark-tremor-background">
                <TableRow>
                  {COLUMNS.map((c) => {
                    const active = sort.key === c.key;
                    return (
                      <TableHeaderCell key={c.key} aria-sort={active ? sort.dir : "none"} className={`whitespace-nowrap px-3 py-2 ${c.numeric ? "text-right" : ""}`}>
                        <button type="button" onClick={() => by(c.key)} className="inline-flex items-center gap-1 hover:text-tremor-content-strong dark:hover:text-dark-tremor-content-strong">
                          {c.label}
                          <span aria-hidden="true" className={active ? "" : "opacity-0"}>
                            {active && sort.dir === "descending" ? "▼" : "▲"}
                          </span>
                        </button>
                      </TableHeaderCell>
                    );
                  })}
                </TableRow>
              </TableHead>
              <TableBody>
                {first > 0 ? <tr aria-hidden="true" style={{ height: first * ROW_H }} /> : null}
                {visible.map((r) => (
                  <Row key={r.h} row={r} onOpen={onOpen} />
                ))}
                {last < shown.length ? <tr aria-hidden="true" style={{ height: (shown.length - last) * ROW_H }} /> : null}
              </TableBody>
            </Table>
          </div>
          {shown.length === 0 ? <p className="py-4 text-center text-sm text-tremor-content dark:text-dark-tremor-content">No host matches.</p> : null}
        </>
      )}
    </section>
  );
});
