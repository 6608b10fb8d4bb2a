import { Tab, TabGroup, TabList } from "@tremor/react";
import { ago, clock } from "../../lib/format";
import type { Theme } from "../../lib/theme";
import { RANGES, type Connection, type Range } from "../../types";

const LIVE: Record<Connection, { dot: string; text: string; hint: string }> = {
  connected: { dot: "bg-emerald-500", text: "Live", hint: "Connected to the hub; updates arrive every interval" },
  reconnecting: { dot: "bg-amber-500", text: "Reconnecting…", hint: "The connection to the hub dropped; retrying with backoff" },
  offline: { dot: "bg-gray-400 dark:bg-gray-500", text: "Offline", hint: "The hub cannot be reached; still retrying in the background" },
};

export function LiveIndicator({ connection, everConnected }: { connection: Connection; everConnected: boolean }) {
  const l = LIVE[connection];
  const text = connection === "reconnecting" && !everConnected ? "Connecting…" : l.text;
  return (
    <span
      role="status"
      aria-live="polite"
      data-testid="live-indicator"
      data-connection={connection}
      title={l.hint}
      className="inline-flex items-center gap-2 rounded-tremor-full border border-tremor-border bg-tremor-background px-3 py-1 text-xs font-medium text-tremor-content-strong dark:border-dark-tremor-border dark:bg-dark-tremor-background dark:text-dark-tremor-content-strong"
    >
      <span className="relative flex h-2.5 w-2.5" aria-hidden="true">
        {connection === "connected" ? <span className={`absolute inline-flex h-full w-full animate-ping rounded-full opacity-60 motion-reduce:animate-none ${l.dot}`} /> : null}
        <span className={`relative inline-flex h-2.5 w-2.5 rounded-full ${l.dot}`} />
      </span>
      {text}
    </span>
  );
}

export function PageHeader(props: {
  range: Range;
  setRange: (r: Range) => void;
  connection: Connection;
  everConnected: boolean;
  updatedAt: string | null;
  summary: string | null;
  theme: Theme;
  toggleTheme: () => void;
  now: number;
}) {
  const { range, setRange, connection, everConnected, updatedAt, summary, theme, toggleTheme, now } = props;
  return (
    <header className="flex flex-wrap items-center gap-x-4 gap-y-3">
      <div className="mr-auto min-w-0">
        <h1 className="text-lg font-bold uppercase tracking-wide text-tremor-content-strong sm:text-xl dark:text-dark-tremor-content-strong">System performance</h1>
        <p className="text-xs text-tremor-content dark:text-dark-tremor-content" data-testid="updated-at">
          {updatedAt ? (
            <>
              updated {clock(updatedAt)} ({ago(updatedAt, now)}){summary ? ` · ${summary}` : ""}
            </>
          ) : (
            "waiting for the first update"
          )}
        </p>
      </div>
      <div className="flex flex-wrap items-center gap-3">
        <TabGroup index={RANGES.indexOf(range)} onIndexChange={(i: number) => setRange(RANGES[i] ?? "5m")} aria-label="Time range" className="w-auto">
          <TabList variant="solid">
            {RANGES.map((r) => (
              <Tab key={r} data-range={r}>
                {r}
              </Tab>
            ))}
          </TabList>
        </TabGroup>
        <LiveIndicator connection={connection} everConnected={everConnected} />
        <button
          type="button"
          onClick={toggleTheme}
          aria-label={theme === "dark" ? "Switch to light theme" : "Switch to dark theme"}
          title={theme === "dark" ? "Switch to light theme" : "Switch to dark theme"}
          className="inline-flex h-8 w-8 items-center justify-center rounded-tremor-full border border-tremor-border bg-tremor-background text-tremor-content-emphasis hover:bg-tremor-background-subtle focus:outline-none focus-visible:ring-2 focus-visible:ring-tremor-brand dark:border-dark-tremor-border dark:bg-dark-tremor-background dark:text-dark-tremor-content-emphasis dark:hover:bg-dark-tremor-background-subtle"
        >
          <span aria-hidden="true">{theme === "dark" ? "☀" : "☾"}</span>
        </button>
      </div>
    </header>
  );
}
