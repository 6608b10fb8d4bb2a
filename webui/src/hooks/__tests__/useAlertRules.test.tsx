import { act, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Options } from "../usePerformanceMetrics";
import { SystemPerformancePage } from "../../pages/SystemPerformancePage";
import { FakeWebSocket } from "../../test/fakeWebSocket";
import { soloSocket } from "../../test/soloSocket";
import { update } from "../../test/fixtures";
import type { Rule } from "../../lib/thresholds";

const options: Options = { url: "ws://hub.test/ws/system", WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket, random: () => 1, baseMs: 10 };

beforeEach(() => FakeWebSocket.reset());
afterEach(() => FakeWebSocket.reset());

const lv = (threshold: number, f = "1m0s") => ({ threshold, for: f });

/** The defaults as GET /api/v1/rules lists them, with changes. */
function rules(...changes: Rule[]): { rules: Rule[] } {
  const base: Rule[] = [
    { name: "gpu_power_watts", metric: "gpu_power_no_limit", target: "gpu", comparison: ">", warning: lv(300, "2m0s"), critical: lv(350) },
    { name: "host_cpu", metric: "host_cpu_percent", target: "host", comparison: ">", warning: lv(80, "5m0s"), critical: lv(95, "2m0s") },
  ];
  return { rules: base.filter((r) => !changes.some((c) => c.name === r.name)).concat(changes) };
}

function answering(...bodies: unknown[]) {
  let i = 0;
  return vi.fn(async (_url: string, _init?: RequestInit) => {
    const body = bodies[Math.min(i++, bodies.length - 1)];
    if (body instanceof Error) throw body;
    if (typeof body === "number") return new Response(JSON.stringify({ error: "alert rules not configured" }), { status: body });
    return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
  });
}

/** An update whose GPU, of unknown power limit, draws 320 W: over the default 300 W warning of gpu_power_watts. */
function at320W() {
  const u = update();
  u.gpu.power_watts = 320;
  delete u.gpu.power_limit_watts;
  for (const g of u.gpus ?? []) {
    g.power_watts = 320;
    delete g.power_limit_watts;
  }
  return { ...u, type: "performance_update" as const };
}

function show(fetchImpl: ReturnType<typeof answering>) {
  render(<SystemPerformancePage options={options} rules={{ fetchImpl: fetchImpl as unknown as typeof fetch }} />);
  const ws = soloSocket();
  act(() => {
    ws.open();
    ws.message(at320W());
  });
  return ws;
}

describe("alert rules from the hub", () => {
  it("colours bars at the fetched thresholds (an H200 at 600/680 W)", async () => {
    const f = answering(rules({ name: "gpu_power_watts", metric: "gpu_power_no_limit", target: "gpu", comparison: ">", warning: lv(600), critical: lv(680) }, { name: "host_cpu", metric: "host_cpu_percent", target: "host", comparison: ">", warning: lv(10), critical: lv(50) }));
    show(f);
    await waitFor(() => expect(screen.getByTestId("gpu-power")).toHaveAttribute("data-level", "ok"));
    // The fixture's 12 % CPU is over a 10 % warning.
    expect(screen.getByTestId("host-cpu")).toHaveAttribute("data-level", "warning");
    expect(f).toHaveBeenCalledTimes(1);
    expect(f.mock.calls[0]?.[0]).toBe("/api/v1/rules");
  });

  it("keeps the built-in defaults when the fetch fails or the hub has no rules", async () => {
    for (const f of [answering(new TypeError("Failed to fetch")), answering(501), answering("not a rule list")]) {
      const { unmount } = render(<SystemPerformancePage options={options} rules={{ fetchImpl: f as unknown as typeof fetch }} />);
      const ws = soloSocket();
      act(() => {
        ws.open();
        ws.message(at320W());
      });
      await waitFor(() => expect(f).toHaveBeenCalled());
      await act(async () => {});
      expect(screen.getByTestId("gpu-power")).toHaveAttribute("data-level", "warning");
      expect(screen.getByTestId("host-cpu")).toHaveAttribute("data-level", "ok");
      unmount();
    }
  });

  it("stops colouring a metric whose rule the hub disabled", async () => {
    const f = answering(rules({ name: "gpu_power_watts", metric: "gpu_power_no_limit", target: "gpu", comparison: ">", disabled: true }));
    show(f);
    await waitFor(() => expect(screen.getByTestId("gpu-power")).toHaveAttribute("data-level", "ok"));
  });

  it("fetches again after a reconnect, and the new rules apply", async () => {
    const f = answering(rules(), rules({ name: "gpu_power_watts", metric: "gpu_power_no_limit", target: "gpu", comparison: ">", warning: lv(250), critical: lv(310) }));
    const ws = show(f);
    await waitFor(() => expect(f).toHaveBeenCalledTimes(1));
    await act(async () => {});
    expect(screen.getByTestId("gpu-power")).toHaveAttribute("data-level", "warning");

    act(() => ws.drop());
    // The fleet view's socket, the first default feed, and the new one.
    await waitFor(() => expect(FakeWebSocket.instances.length).toBe(3));
    // Still one fetch while the feed is down.
    expect(f).toHaveBeenCalledTimes(1);
    act(() => FakeWebSocket.last().open());
    await waitFor(() => expect(screen.getByTestId("gpu-power")).toHaveAttribute("data-level", "critical"));
    expect(f).toHaveBeenCalledTimes(2);
  });

  it("goes to sign in when the hub answers 401", async () => {
    const onUnauthorized = vi.fn();
    const f = answering(401);
    render(<SystemPerformancePage options={options} rules={{ fetchImpl: f as unknown as typeof fetch, onUnauthorized }} />);
    await waitFor(() => expect(onUnauthorized).toHaveBeenCalledTimes(1));
  });

  it("does not go to sign in on other failures", async () => {
    const onUnauthorized = vi.fn();
    const f = answering(501);
    render(<SystemPerformancePage options={options} rules={{ fetchImpl: f as unknown as typeof fetch, onUnauthorized }} />);
    await waitFor(() => expect(f).toHaveBeenCalled());
    await act(async () => {});
    expect(onUnauthorized).not.toHaveBeenCalled();
  });
});
