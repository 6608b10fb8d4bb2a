import { act, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeWebSocket } from "../../test/fakeWebSocket";
import { history, T0, update } from "../../test/fixtures";
import { usePerformanceMetrics, type Options } from "../usePerformanceMetrics";

const base: Options = { url: "ws://hub.test/ws/system", WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket, random: () => 1, baseMs: 1000, maxMs: 30_000 };

function setup(opts: Partial<Options> = {}) {
  return renderHook(() => usePerformanceMetrics({ ...base, ...opts }));
}

function liveUpdate(offsetS: number, cpu: number) {
  const u = update();
  u.timestamp = new Date(T0 + offsetS * 1000).toISOString();
  u.host.cpu_percent = cpu;
  return u;
}

beforeEach(() => {
  FakeWebSocket.reset();
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
  vi.setSystemTime(T0);
});
afterEach(() => {
  vi.useRealTimers();
});

describe("usePerformanceMetrics", () => {
  it("opens one socket to the URL and backfills from performance_history, then appends updates", () => {
    const { result } = setup();
    expect(FakeWebSocket.instances).toHaveLength(1);
    const ws = FakeWebSocket.last();
    expect(ws.url).toBe("ws://hub.test/ws/system");
    expect(result.current.connection).toBe("reconnecting");
    expect(result.current.everConnected).toBe(false);

    act(() => ws.open());
    expect(result.current.connection).toBe("connected");
    expect(ws.sent).toEqual([]); // 5m is what the hub sends unasked

    act(() => ws.message(history("5m")));
    expect(result.current.history).toHaveLength(60);
    expect(result.current.resolutionS).toBe(5);
    expect(result.current.history[59]!.host?.cpu_percent).toBe(69);
    expect(result.current.latest).toBeNull();

    act(() => ws.message(liveUpdate(5, 77)));
    expect(result.current.latest?.host.cpu_percent).toBe(77);
    // still 60: the oldest point made room for the new slot
    expect(result.current.history).toHaveLength(60);
    expect(result.current.history[59]!.host?.cpu_percent).toBe(77);
    expect(result.current.history[58]!.host?.cpu_percent).toBe(69);
    expect(result.current.history[0]!.timestamp).toBe(new Date(T0 - 58 * 5000).toISOString());
  });

  it("switches range with subscribe and draws that range's window", () => {
    const { result } = setup();
    const ws = FakeWebSocket.last();
    act(() => {
      ws.open();
      ws.message(history("5m"));
    });
    act(() => result.current.setRange("15m"));
    expect(ws.subscriptions).toEqual(["15m"]);
    expect(result.current.range).toBe("15m");

    act(() => ws.message(history("15m", 40)));
    expect(result.current.history).toHaveLength(40);
    expect(result.current.resolutionS).toBe(15);

    // A live update lands in the 15 s slot grid, not as a 5 s point.
    act(() => ws.message(liveUpdate(5, 90)));
    expect(result.current.history).toHaveLength(40); // T0+5s is inside the T0 slot: replaced
    act(() => ws.message(liveUpdate(16, 91)));
    expect(result.current.history).toHaveLength(41);
    expect(result.current.history[40]!.timestamp).toBe(new Date(T0 + 15_000).toISOString());

    // Back to 5m: its buffer is shown at once, kept up to date meanwhile.
    act(() => result.current.setRange("5m"));
    expect(result.current.resolutionS).toBe(5);
    expect(result.current.history.at(-1)!.host?.cpu_percent).toBe(91);
    // the T0+10 slot had no update, so the 60-slot window now holds 59 points
    expect(result.current.history).toHaveLength(59);
    expect(ws.subscriptions).toEqual(["15m", "5m"]);
  });

  it("ignores history for an unknown range and malformed frames, and logs hub errors", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const { result } = setup();
    const ws = FakeWebSocket.last();
    act(() => {
      ws.open();
      ws.message(history("5m", 10));
      ws.message({ ...history("5m", 3), range: "7y" });
      ws.message("{not json");
      ws.message({ type: "error", error: "range \"7y\": unknown" });
    });
    expect(result.current.history).toHaveLength(10);
    expect(result.current.connection).toBe("connected");
    expect(warn).toHaveBeenCalledWith("sysperf hub:", 'range "7y": unknown');
    warn.mockRestore();
  });

  it("reconnects with exponential backoff and jitter, releasing the old socket", () => {
    const { result } = setup({ random: () => 0.5 });
    const first = FakeWebSocket.last();
    act(() => {
      first.open();
      first.message(history("5m"));
    });
    act(() => first.drop());
    expect(result.current.connection).toBe("reconnecting");
    expect(result.current.everConnected).toBe(true);
    expect(first.hasHandlers).toBe(false); // nothing of the old socket can reach the state
    // attempt 1: ceiling 1000 ms, equal jitter at 0.5 → 750 ms
    act(() => vi.advanceTimersByTime(749));
    expect(FakeWebSocket.instances).toHaveLength(1);
    act(() => vi.advanceTimersByTime(1));
    expect(FakeWebSocket.instances).toHaveLength(2);
    // attempt 2 fails too: ceiling 2000 → 1500 ms
    act(() => FakeWebSocket.last().drop());
    act(() => vi.advanceTimersByTime(1499));
    expect(FakeWebSocket.instances).toHaveLength(2);
    act(() => vi.advanceTimersByTime(1));
    expect(FakeWebSocket.instances).toHaveLength(3);

    const third = FakeWebSocket.last();
    act(() => third.open());
    expect(result.current.connection).toBe("connected");
    // the buffers survived the outage
    expect(result.current.history).toHaveLength(60);
    // a fresh failure starts again from the base delay
    act(() => third.drop());
    act(() => vi.advanceTimersByTime(750));
    expect(FakeWebSocket.instances).toHaveLength(4);
  });

  it("replaces an open socket that goes silent, waiting longer for a hub that sends less often", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const { result } = setup({ silentMs: 20_000, random: () => 1 });
    const ws = FakeWebSocket.last();
    act(() => {
      ws.open();
      ws.message(history("5m"));
    });
    // updates every 5 s keep it alive for two minutes
    for (let i = 1; i <= 24; i++) {
      act(() => vi.advanceTimersByTime(5000));
      act(() => ws.message(liveUpdate(i * 5, 10)));
    }
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(ws.closedByClient).toBe(false);
    // then silence, with the socket still open: dead after 20 s, not before
    act(() => vi.advanceTimersByTime(19_999));
    expect(result.current.connection).toBe("connected");
    act(() => vi.advanceTimersByTime(1));
    expect(ws.closedByClient).toBe(true);
    expect(ws.hasHandlers).toBe(false);
    expect(result.current.connection).toBe("reconnecting");
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("no message from the hub for 20 s"));
    act(() => vi.advanceTimersByTime(1000));
    expect(FakeWebSocket.instances).toHaveLength(2);

    // a hub that sends every 60 s: the wait grows to three gaps
    const slow = FakeWebSocket.last();
    act(() => {
      slow.open();
      slow.message(liveUpdate(200, 10));
    });
    act(() => vi.advanceTimersByTime(19_000));
    act(() => slow.message(liveUpdate(219, 10)));
    act(() => vi.advanceTimersByTime(60_000 - 19_000));
    act(() => slow.message(liveUpdate(260, 10)));
    act(() => vi.advanceTimersByTime(3 * 41_000 - 1));
    expect(slow.closedByClient).toBe(false);
    act(() => vi.advanceTimersByTime(1));
    expect(slow.closedByClient).toBe(true);
    warn.mockRestore();
  });

  it("resubscribes to the selected range after a reconnect", () => {
    const { result } = setup();
    act(() => FakeWebSocket.last().open());
    act(() => result.current.setRange("60m"));
    act(() => FakeWebSocket.last().drop());
    act(() => vi.advanceTimersByTime(1000));
    const ws = FakeWebSocket.last();
    expect(FakeWebSocket.instances).toHaveLength(2);
    act(() => ws.open());
    expect(ws.subscriptions).toEqual(["60m"]);
  });

  it("caps the delay and reports offline after repeated failures, still retrying", () => {
    const { result } = setup({ offlineAfter: 3, maxMs: 4000 });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      act(() => FakeWebSocket.last().drop());
      const n = FakeWebSocket.instances.length;
      let waited = 0;
      while (FakeWebSocket.instances.length === n) {
        act(() => vi.advanceTimersByTime(250));
        waited += 250;
      }
      delays.push(waited);
    }
    expect(delays).toEqual([1000, 2000, 4000, 4000, 4000, 4000]);
    expect(result.current.connection).toBe("offline");
    act(() => FakeWebSocket.last().open());
    expect(result.current.connection).toBe("connected");
  });

  it("leaves no socket, handler or timer behind on unmount", () => {
    const { unmount } = setup();
    act(() => FakeWebSocket.last().open());
    act(() => FakeWebSocket.last().drop()); // a reconnect timer is pending
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    const pending = FakeWebSocket.instances.length;
    unmount();
    expect(vi.getTimerCount()).toBe(0);
    act(() => vi.advanceTimersByTime(60_000));
    expect(FakeWebSocket.instances).toHaveLength(pending);

    FakeWebSocket.reset();
    const second = setup();
    const ws = FakeWebSocket.last();
    act(() => ws.open());
    second.unmount();
    expect(ws.closedByClient).toBe(true);
    expect(ws.hasHandlers).toBe(false);
  });

  it("installs the test injection hook only when asked", () => {
    const a = setup();
    expect(window.__sysperfInject).toBeUndefined();
    a.unmount();
    const { result, unmount } = setup({ testHook: true });
    expect(typeof window.__sysperfInject).toBe("function");
    act(() => window.__sysperfInject!(liveUpdate(0, 42)));
    expect(result.current.latest?.host.cpu_percent).toBe(42);
    unmount();
    expect(window.__sysperfInject).toBeUndefined();
  });

  it("goes to sign in when a refused upgrade is a 401, and stops retrying", async () => {
    const onUnauthorized = vi.fn();
    const fetchImpl = vi.fn(async () => new Response(null, { status: 401 }));
    setup({ fetchImpl: fetchImpl as unknown as typeof fetch, onUnauthorized, authUrl: "/api/v1/performance" });
    act(() => FakeWebSocket.last().drop()); // the upgrade answered 401: the browser only sees a close
    await act(async () => {});
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    expect(fetchImpl.mock.calls[0]).toEqual(["/api/v1/performance", { method: "HEAD", cache: "no-store" }]);
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    act(() => vi.advanceTimersByTime(120_000));
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it("keeps reconnecting when the hub is down or the session is fine, and never asks after an open socket closes", async () => {
    const onUnauthorized = vi.fn();
    const answers = [new Error("refused"), new Response(null, { status: 200 })];
    const fetchImpl = vi.fn(async () => {
      const a = answers.shift() ?? new Response(null, { status: 200 });
      if (a instanceof Error) throw a;
      return a;
    });
    setup({ fetchImpl: fetchImpl as unknown as typeof fetch, onUnauthorized });
    act(() => FakeWebSocket.last().drop());
    await act(async () => {});
    act(() => vi.advanceTimersByTime(1000));
    act(() => FakeWebSocket.last().drop());
    await act(async () => {});
    act(() => vi.advanceTimersByTime(2000));
    expect(FakeWebSocket.instances).toHaveLength(3);
    expect(fetchImpl).toHaveBeenCalledTimes(2);
    act(() => FakeWebSocket.last().open());
    act(() => FakeWebSocket.last().drop()); // a connection that was up: the hub went away
    await act(async () => {});
    expect(fetchImpl).toHaveBeenCalledTimes(2);
    expect(onUnauthorized).not.toHaveBeenCalled();
  });
});
