import { useEffect, useRef, useState } from "react";
import type { Connection } from "../types";

export interface HealthOptions {
  /** Default /healthz on this host. */
  url?: string;
  fetchImpl?: typeof fetch;
  /** A check that takes longer is given up; default 3 s. */
  timeoutMs?: number;
  /** How often to ask while the feed is down; default 5 s. */
  everyMs?: number;
}

/**
 * Why the hub refuses the feed, when it can say: while the WebSocket is not
 * connected, /healthz is asked every few seconds, and a hub that is up but
 * not ready (waiting for its NATS, say) answers 503 with the reason. Null
 * while connected, when the hub answers 200, and when it cannot be reached
 * at all (the page then only says it is reconnecting).
 */
export function useHubHealth(connection: Connection, opts: HealthOptions = {}): string | null {
  const { url = "/healthz", fetchImpl, timeoutMs = 3000, everyMs = 5000 } = opts;
  const [reason, setReason] = useState<string | null>(null);
  const fetchRef = useRef(fetchImpl);
  useEffect(() => {
    fetchRef.current = fetchImpl;
  });

  const down = connection !== "connected";
  useEffect(() => {
    if (!down) {
      setReason(null);
      return;
    }
    const f = fetchRef.current ?? (typeof fetch === "function" ? fetch : undefined);
    if (!f) return;
    let live = true;
    let ctl: AbortController | null = null;
    const ask = async () => {
      ctl = new AbortController();
      const c = ctl;
      const timer = setTimeout(() => c.abort(), timeoutMs);
      try {
        const res = await f(url, { signal: c.signal, cache: "no-store" });
        const text = res.ok ? "" : (await res.text()).trim();
        if (live) setReason(text ? text.slice(0, 300) : null);
      } catch {
        if (live) setReason(null);
      } finally {
        clearTimeout(timer);
      }
    };
    void ask();
    const every = setInterval(() => void ask(), everyMs);
    return () => {
      live = false;
      clearInterval(every);
      ctl?.abort();
    };
  }, [down, url, timeoutMs, everyMs]);

  return down ? reason : null;
}
