import { Section, type HostStatus, type Update } from "../types";

export interface SectionMeta {
  /** Where the section came from ("agent:gpu-box-1", "postgres", "prometheus"), or null when none. */
  source: string | null;
  /** True when the hub flags the section stale (newest data older than three intervals). */
  stale: boolean;
  /** Why the section is empty or partial, as the hub said. */
  error: string | null;
  /** When the host that fills the section was last heard from, if known. */
  lastSeen: string | null;
}

export function hostOfSource(source: string | null): string | null {
  if (!source) return null;
  const m = /^agent:(.+)$/.exec(source);
  return m && m[1] ? m[1] : null;
}

export function findHost(u: Update, host: string | null | undefined): HostStatus | undefined {
  if (!host) return undefined;
  return (u.hosts ?? []).find((h) => h.host === host);
}

/** The hub's reason, unless it only repeats what the section already says. */
function informative(e: string | undefined): string | null {
  if (!e || /^not configured$/i.test(e.trim())) return null;
  return e;
}

export function sectionMeta(u: Update, section: string): SectionMeta {
  const raw = u.sources?.[section];
  const source = raw && raw !== "none" ? raw : null;
  const h = findHost(u, hostOfSource(source));
  return {
    source,
    stale: Boolean(u.stale?.[section]),
    error: informative(u.errors?.[section]),
    lastSeen: h?.last_seen ?? null,
  };
}

/** A readable name for a source key. */
export function sourceLabel(source: string): string {
  const host = hostOfSource(source);
  if (host) return `agent on ${host}`;
  const many = /^agents:(.+)$/.exec(source);
  if (many && many[1]) return `agents on ${many[1].split(",").join(", ")}`;
  return source;
}

/**
 * The section's meta for a panel that shows several hosts: the hub names
 * one agent as the section's source (the last to report), which would read
 * "via agent on box2" above both hosts' figures. Then the source names
 * every host shown.
 */
export function withHosts(meta: SectionMeta, hosts: readonly string[]): SectionMeta {
  const named = [...new Set(hosts.filter(Boolean))];
  if (named.length < 2) return meta;
  return { ...meta, source: `agents:${named.join(",")}` };
}

const SECTION_KEYS: ReadonlySet<string> = new Set(Object.values(Section));

const SOURCE_NAMES: Record<string, string> = { prometheus: "Prometheus", nats: "NATS" };

/**
 * The hub's errors that belong to no section: a source that feeds several
 * (Prometheus fills GPUs and inference of hosts without an agent), so no
 * single panel would say it is failing.
 */
export function sourceProblems(u: Update): { source: string; name: string; error: string }[] {
  return Object.entries(u.errors ?? {})
    .filter(([k, e]) => !SECTION_KEYS.has(k) && Boolean(informative(e)))
    .sort(([a], [b]) => a.localeCompare(b))
    // "prometheus http://…: refused" reads "Prometheus: http://…: refused" once named.
    .map(([k, e]) => ({ source: k, name: SOURCE_NAMES[k] ?? k, error: e.toLowerCase().startsWith(`${k} `) ? e.slice(k.length + 1) : e }));
}
