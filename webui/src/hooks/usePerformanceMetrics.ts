import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { flushSync } from "react-dom";
import { afterPaint } from "../lib/frameQueue";
import { emptyBuffers, fleetPoint, fromHistory, isRange, mergeLive, toPoint, type Buffers } from "../lib/buffers";
import { RANGE_RESOLUTION_S, RANGES, type Connection, type FleetUpdate, type History, type Point, type Range, type Update } from "../types";
import { goToLogin } from "./signIn";

export interface PerformanceMetrics {
  /** The newest performance_update, or null before the first one. */
  latest: Update | null;
  /**
   * The selected range's points, oldest first (at most 60). On the fleet
   * view: the fleet's history (points with `fleet`, the site's totals) and
   * each fleet_update's totals after it, no host's figures.
   */
  history: Point[];
  /** Seconds per point of the selected range. */
  resolutionS: number;
  range: Range;
  setRange: (r: Range) => void;
  connection: Connection;
  /** Whether any connection ever opened (tells "connecting" from "reconnecting"). */
  everConnected: boolean;
  /** Wall-clock ms of the last message received, or null. */
  lastMessageAt: number | null;
  /** The newest fleet_update (the fleet view), or null. */
  fleet: FleetUpdate | null;
}

export interface Options {
  /** WebSocket URL; default ws(s)://<this host>/ws/system. */
  url?: string;
  WebSocketImpl?: typeof WebSocket;
  /** Backoff: first retry after ~baseMs, doubling up to maxMs, with jitter. */
  baseMs?: number;
  maxMs?: number;
  /** After this many failed attempts in a row the state is "offline" (retries continue). */
  offlineAfter?: number;
  random?: () => number;
  /**
   * An open socket that brings no message for this long is taken as dead
   * (a proxy or a suspended laptop can leave one open and silent) and
   * replaced. The wait grows to three times the gap seen between the
   * hub's updates, so a hub sending every minute is not cut off.
   */
  silentMs?: number;
  /** Installs window.__sysperfInject for the browser test (render timing). */
  testHook?: boolean;
  initialRange?: Range;
  /**
   * One host's view (`{"type":"subscribe","view":"host","host":…}`), or null
   * for the default view. Changing it switches the view on the open socket.
   */
  host?: string | null;
  /**
   * "fleet" opens the socket on the fleet view (`?view=fleet`), which sends
   * fleet_update only; its test hook is window.__sysperfInjectFleet.
   */
  view?: "fleet";
  /** false opens no socket (default true). */
  enabled?: boolean;
  /**
   * A browser does not show why a WebSocket upgrade failed, so when a socket
   * closes without having opened, this URL is asked (HEAD) whether the page
   * is still signed in; default /api/v1/performance.
   */
  authUrl?: string;
  fetchImpl?: typeof fetch;
  /** Called when that answer is 401; default: go to the sign-in page. */
  onUnauthorized?: () => void;
}

interface State {
  latest: Update | null;
  buffers: Buffers;
  connection: Connection;
  everConnected: boolean;
  lastMessageAt: number | null;
  fleet: FleetUpdate | null;
}

type Action =
  | { type: "connection"; value: Connection }
  | { type: "opened" }
  | { type: "history"; range: Range; history: History }
  | { type: "update"; update: Update; at: number }
  | { type: "fleet"; fleet: FleetUpdate; at: number }
  | { type: "reset" };

/** A live point placed into every range's buffer. */
function mergeAll(buffers: Buffers, p: Point): Buffers {
  const out = { ...buffers };
  for (const r of RANGES) out[r] = mergeLive(out[r], p);
  return out;
}

function reducer(s: State, a: Action): State {
  switch (a.type) {
    case "connection":
      return s.connection === a.value ? s : { ...s, connection: a.value };
    case "opened":
      return { ...s, connection: "connected", everConnected: true };
    case "history":
      return {
        ...s,
        lastMessageAt: Date.now(),
        buffers: { ...s.buffers, [a.range]: fromHistory(a.history, RANGE_RESOLUTION_S[a.range]) },
      };
    case "update":
      return { ...s, latest: a.update, buffers: mergeAll(s.buffers, toPoint(a.update)), lastMessageAt: a.at };
    case "fleet":
      // Only the fleet view sends fleet_update, so these buffers hold the
      // fleet's history: its site totals go after it as an update's figures
      // go after a host's.
      return { ...s, fleet: a.fleet, buffers: mergeAll(s.buffers, fleetPoint(a.fleet)), lastMessageAt: a.at };
    case "reset":
      // Another view: its history and updates replace the old one's whole.
      return { ...s, latest: null, buffers: emptyBuffers(), fleet: null };
  }
}

function defaultUrl(): string {
  const loc = window.location;
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws/system`;
}

declare global {
  interface Window {
    __sysperfInject?: (msg: unknown) => void;
    __sysperfInjectFleet?: (msg: unknown) => void;
  }
}

const MEASURE_COMMIT = "sysperf-update-commit";
const MEASURE_FRAME = "sysperf-update-frame";

/**
 * One WebSocket to /ws/system: backfills each range from performance_history,
 * keeps 60-point buffers per range from performance_update, switches range
 * with a subscribe message and reconnects with exponential backoff and
 * jitter. Every socket and timer it creates is released on reconnect and on
 * unmount.
 */
export function usePerformanceMetrics(opts: Options = {}): PerformanceMetrics {
  const {
    url,
    WebSocketImpl,
    baseMs = 1000,
    maxMs = 30_000,
    offlineAfter = 5,
    random = Math.random,
    silentMs = 20_000,
    testHook = false,
    initialRange = "5m",
    host = null,
    view,
    enabled = true,
    authUrl = "/api/v1/performance",
    fetchImpl,
    onUnauthorized = goToLogin,
  } = opts;

  const [state, dispatch] = useReducer(reducer, undefined, () => ({
    latest: null,
    buffers: emptyBuffers(),
    connection: "reconnecting" as Connection,
    everConnected: false,
    lastMessageAt: null,
    fleet: null,
  }));
  const [range, setRangeState] = useState<Range>(initialRange);
  const rangeRef = useRef<Range>(initialRange);
  const socketRef = useRef<WebSocket | null>(null);
  const hostRef = useRef<string | null>(host);

  // The socket effect reads options through a ref so that a caller passing
  // a new object each render does not tear the connection down. This effect
  // is declared first, so it runs before the socket effect on mount.
  const cfg = useRef({ WebSocketImpl, baseMs, maxMs, offlineAfter, random, silentMs, authUrl, fetchImpl, onUnauthorized });
  useEffect(() => {
    cfg.current = { WebSocketImpl, baseMs, maxMs, offlineAfter, random, silentMs, authUrl, fetchImpl, onUnauthorized };
  });

  /** Applies one message; returns its type when it was one the page uses. */
  const handle = useCallback((raw: unknown): string | null => {
    let msg: unknown = raw;
    if (typeof raw === "string") {
      try {
        msg = JSON.parse(raw);
      } catch {
        return null; // a malformed frame is dropped; the next one is independent
      }
    }
    if (!msg || typeof msg !== "object") return null;
    const m = msg as { type?: unknown; range?: unknown };
    if (m.type === "performance_history") {
      if (!isRange(m.range)) return null;
      dispatch({ type: "history", range: m.range, history: msg as History });
    } else if (m.type === "performance_update") {
      dispatch({ type: "update", update: msg as Update, at: Date.now() });
    } else if (m.type === "fleet_update") {
      dispatch({ type: "fleet", fleet: msg as FleetUpdate, at: Date.now() });
    } else if (m.type === "error") {
      // The hub refused a request (e.g. an unknown range); the last good
      // buffer stays on screen.
      console.warn("sysperf hub:", (msg as { error?: unknown }).error);
    } else {
      return null;
    }
    return m.type;
  }, []);

  useEffect(() => {
    if (!enabled) return;
    const base = url ?? defaultUrl();
    const target = view === "fleet" ? `${base}${base.includes("?") ? "&" : "?"}view=fleet` : base;
    const WS = cfg.current.WebSocketImpl ?? window.WebSocket;
    let disposed = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let watchdog: ReturnType<typeof setTimeout> | null = null;
    let attempt = 0;
    // Arrival of the last update and the gap before it, for the watchdog.
    let lastUpdateAt: number | null = null;
    let gapMs = 0;
    // Set once the hub said 401: retrying cannot help, signing in can.
    let signedOut = false;
    let probing = false;

    // Asks whether a refused upgrade was a 401; at most one probe at a time.
    const probeAuth = () => {
      const c = cfg.current;
      const f = c.fetchImpl ?? (typeof fetch === "function" ? fetch : undefined);
      if (!f || probing) return;
      probing = true;
      f(c.authUrl, { method: "HEAD", cache: "no-store" })
        .then((res) => {
          if (res.status === 401 && !disposed && !signedOut) {
            signedOut = true;
            if (timer) clearTimeout(timer);
            timer = null;
            cfg.current.onUnauthorized();
          }
        })
        .catch(() => {
          // The hub is unreachable: the reconnect loop goes on.
        })
        .finally(() => {
          probing = false;
        });
    };

    const schedule = () => {
      if (disposed || signedOut || timer) return;
      attempt++;
      const c = cfg.current;
      dispatch({ type: "connection", value: attempt > c.offlineAfter ? "offline" : "reconnecting" });
      const ceiling = Math.min(c.maxMs, c.baseMs * 2 ** (attempt - 1));
      // "Equal jitter": half fixed, half random, so many tabs reconnecting to
      // a restarted hub spread out instead of arriving together.
      const delay = ceiling / 2 + c.random() * (ceiling / 2);
      timer = setTimeout(connect, delay);
    };

    const stopWatchdog = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = null;
    };
    // Re-armed by every message: fires only when the socket stays open and silent.
    const armWatchdog = (sock: WebSocket) => {
      stopWatchdog();
      const wait = Math.max(cfg.current.silentMs, 3 * gapMs);
      watchdog = setTimeout(() => {
        watchdog = null;
        if (disposed || socketRef.current !== sock) return;
        console.warn(`sysperf: no message from the hub for ${Math.round(wait / 1000)} s; reconnecting`);
        socketRef.current = null;
        release(sock);
        schedule();
      }, wait);
    };

    const release = (sock: WebSocket | null) => {
      if (!sock) return;
      sock.onopen = null;
      sock.onmessage = null;
      sock.onerror = null;
      sock.onclose = null;
      try {
        sock.close();
      } catch {
        // closing a socket that never opened can throw in some engines
      }
    };

    function connect() {
      timer = null;
      if (disposed) return;
      release(socketRef.current);
      let sock: WebSocket;
      try {
        sock = new WS(target);
      } catch {
        schedule();
        return;
      }
      socketRef.current = sock;
      lastUpdateAt = null;
      let opened = false;
      sock.onopen = () => {
        opened = true;
        attempt = 0;
        armWatchdog(sock);
        dispatch({ type: "opened" });
        // The hub sends the view's 5m history on connect (the fleet view's
        // too); ask for the selected host and range.
        if (hostRef.current) sock.send(JSON.stringify({ type: "subscribe", view: "host", host: hostRef.current, range: rangeRef.current }));
        else if (rangeRef.current !== "5m") sock.send(JSON.stringify({ type: "subscribe", range: rangeRef.current }));
      };
      sock.onmessage = (ev: MessageEvent) => {
        if (handle(ev.data) === "performance_update") {
          const t = Date.now();
          if (lastUpdateAt !== null) gapMs = Math.max(gapMs, t - lastUpdateAt);
          lastUpdateAt = t;
        }
        armWatchdog(sock);
      };
      sock.onerror = () => {
        // close follows error; reconnecting is decided there
      };
      sock.onclose = () => {
        stopWatchdog();
        if (socketRef.current === sock) socketRef.current = null;
        release(sock);
        if (!opened) probeAuth();
        schedule();
      };
    }

    const onOnline = () => {
      if (timer) {
        clearTimeout(timer);
        timer = null;
        attempt = 0;
        connect();
      }
    };
    const onOffline = () => dispatch({ type: "connection", value: "offline" });
    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);

    connect();
    return () => {
      disposed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      stopWatchdog();
      window.removeEventListener("online", onOnline);
      window.removeEventListener("offline", onOffline);
      release(socketRef.current);
      socketRef.current = null;
    };
  }, [url, handle, view, enabled]);

  // A host picked or left: switch the view on the open socket (a closed one
  // subscribes on open). The old view's data goes at once.
  useEffect(() => {
    if (hostRef.current === host) return;
    hostRef.current = host;
    dispatch({ type: "reset" });
    const sock = socketRef.current;
    if (sock && sock.readyState === 1) {
      sock.send(JSON.stringify(host ? { type: "subscribe", view: "host", host, range: rangeRef.current } : { type: "subscribe", view: "all", range: rangeRef.current }));
    }
  }, [host]);

  useEffect(() => {
    if (!testHook) return;
    if (view === "fleet") {
      // The fleet table's render + commit, then the next frame.
      window.__sysperfInjectFleet = (msg: unknown) => {
        const start = performance.now();
        flushSync(() => handle(msg));
        performance.measure("sysperf-fleet-commit", { start, end: performance.now() });
        afterPaint(() => performance.measure("sysperf-fleet-frame", { start, end: performance.now() }));
      };
      return () => {
        delete window.__sysperfInjectFleet;
      };
    }
    // Render + commit of the update, measured synchronously: flushSync
    // returns once React has committed the DOM. The next frame after that
    // includes style, layout and paint. The charts follow, a frame at a
    // time, measured by main.tsx's frame queue ("sysperf-update-charts").
    window.__sysperfInject = (msg: unknown) => {
      performance.clearMarks("sysperf-inject");
      const start = performance.mark("sysperf-inject").startTime;
      flushSync(() => handle(msg));
      performance.measure(MEASURE_COMMIT, { start, end: performance.now() });
      afterPaint(() => performance.measure(MEASURE_FRAME, "sysperf-inject"));
    };
    return () => {
      delete window.__sysperfInject;
    };
  }, [testHook, handle, view]);

  const setRange = useCallback((r: Range) => {
    rangeRef.current = r;
    setRangeState(r);
    const sock = socketRef.current;
    if (sock && sock.readyState === 1) sock.send(JSON.stringify({ type: "subscribe", range: r }));
  }, []);

  const buf = state.buffers[range];
  return {
    latest: state.latest,
    history: buf.points,
    resolutionS: buf.resolutionS,
    range,
    setRange,
    connection: state.connection,
    everConnected: state.everConnected,
    lastMessageAt: state.lastMessageAt,
    fleet: state.fleet,
  };
}
