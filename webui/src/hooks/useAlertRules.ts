import { useEffect, useRef, useState } from "react";
import { DEFAULT_THRESHOLDS, thresholdsFromRules, type Thresholds } from "../lib/thresholds";
import type { Connection } from "../types";
import { goToLogin } from "./signIn";

export interface RulesOptions {
  /** Default /api/v1/rules on this host. */
  url?: string;
  fetchImpl?: typeof fetch;
  /** A fetch that takes longer is given up; default 5 s. */
  timeoutMs?: number;
  /** Called when the hub answers 401; default: go to the sign-in page. */
  onUnauthorized?: () => void;
}

/**
 * The thresholds of the hub's effective alert rules: fetched once when the
 * page loads and again each time the feed reconnects (the hub may have
 * restarted with another rules file). Until an answer arrives, and when a
 * fetch fails, the last known thresholds (at first the built-in defaults)
 * stay.
 */
export function useAlertRules(connection: Connection, opts: RulesOptions = {}): Thresholds {
  const { url = "/api/v1/rules", fetchImpl, timeoutMs = 5000, onUnauthorized = goToLogin } = opts;
  const [thresholds, setThresholds] = useState<Thresholds>(DEFAULT_THRESHOLDS);
  // Bumped on each reconnect, which refetches.
  const [generation, setGeneration] = useState(0);
  const seenConnected = useRef(false);
  const prev = useRef<Connection>(connection);
  const fetchRef = useRef(fetchImpl);
  const unauthorizedRef = useRef(onUnauthorized);
  useEffect(() => {
    fetchRef.current = fetchImpl;
    unauthorizedRef.current = onUnauthorized;
  });

  useEffect(() => {
    if (connection === "connected" && prev.current !== "connected") {
      if (seenConnected.current) setGeneration((g) => g + 1);
      seenConnected.current = true;
    }
    prev.current = connection;
  }, [connection]);

  useEffect(() => {
    const f = fetchRef.current ?? (typeof fetch === "function" ? fetch : undefined);
    if (!f) return;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    let live = true;
    (async () => {
      try {
        const res = await f(url, { signal: ctl.signal, headers: { Accept: "application/json" } });
        if (res.status === 401) {
          if (live) unauthorizedRef.current();
          return;
        }
        if (!res.ok) return; // an older hub without the endpoint, or none configured
        const body: unknown = await res.json();
        if (live) setThresholds(thresholdsFromRules(body));
      } catch {
        // Unreachable hub or a bad body: the thresholds in place stay; the
        // next reconnect tries again.
      } finally {
        clearTimeout(timer);
      }
    })();
    return () => {
      live = false;
      clearTimeout(timer);
      ctl.abort();
    };
  }, [url, timeoutMs, generation]);

  return thresholds;
}
