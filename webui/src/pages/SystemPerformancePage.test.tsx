import { act, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { FakeWebSocket } from "../test/fakeWebSocket";
import { soloSocket } from "../test/soloSocket";
import { history, manyGpus, noGpu, update, withAlerts } from "../test/fixtures";
import type { Options } from "../hooks/usePerformanceMetrics";

const options: Options = { url: "ws://hub.test/ws/system", WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket, random: () => 1 };

beforeEach(() => {
  FakeWebSocket.reset();
  window.history.replaceState(null, "", "/");
  window.localStorage.clear();
  document.documentElement.classList.remove("dark");
});
afterEach(() => FakeWebSocket.reset());

describe("App and SystemPerformancePage", () => {
  it("redirects / to /system and says it is connecting before any data", () => {
    render(<App options={options} />);
    expect(window.location.pathname).toBe("/system");
    expect(screen.getByRole("heading", { level: 1, name: "System performance" })).toBeInTheDocument();
    expect(screen.getByTestId("live-indicator")).toHaveTextContent("Connecting…");
    expect(screen.getByText("Connecting to the hub…")).toBeInTheDocument();
  });

  it("renders every section from the hub's messages, then flags a lost connection", () => {
    render(<App options={options} />);
    const ws = soloSocket();
    act(() => {
      ws.open();
      ws.message(history("5m"));
      ws.message({ ...withAlerts(), type: "performance_update" });
    });
    const live = screen.getByTestId("live-indicator");
    expect(live).toHaveAttribute("data-connection", "connected");
    expect(live).toHaveTextContent("Live");
    for (const id of ["alerts", "gpu", "models", "inference", "databases", "host", "containers"]) {
      expect(document.querySelector(`[data-section=${id}]`), id).not.toBeNull();
    }
    expect(screen.getByTestId("updated-at")).toHaveTextContent("1 host · 1 GPU · 2 alerts firing");

    act(() => ws.drop());
    expect(live).toHaveAttribute("data-connection", "reconnecting");
    expect(live).toHaveTextContent("Reconnecting…");
    expect(screen.getByRole("alert")).toHaveTextContent(/Connection to the hub lost — showing the last update/);
    // the last data stays on screen, marked as such, rather than vanishing
    expect(document.querySelector("[data-section=gpu]")).not.toBeNull();
  });

  it("switches range from the header", () => {
    render(<App options={options} />);
    const ws = soloSocket();
    act(() => {
      ws.open();
      ws.message({ ...noGpu(), type: "performance_update" });
    });
    act(() => screen.getByRole("tab", { name: "60m" }).click());
    expect(ws.subscriptions).toEqual(["60m"]);
    act(() => ws.message(history("60m", 30)));
    expect(screen.getByText(/60m window, 60 s per point/)).toBeInTheDocument();
    expect(within(document.querySelector("[data-section=gpu]") as HTMLElement).getByText("No NVIDIA GPU detected — NVML: library not found")).toBeInTheDocument();
  });

  it("counts pending alerts apart from firing ones in the header", () => {
    render(<App options={options} />);
    const ws = soloSocket();
    const u = withAlerts();
    u.alerts = [...u.alerts!, { ...u.alerts![0]!, state: "pending", rule: "other" }];
    act(() => {
      ws.open();
      ws.message({ ...u, type: "performance_update" });
    });
    expect(screen.getByTestId("updated-at")).toHaveTextContent("1 host · 1 GPU · 2 alerts firing · 1 pending");
  });

  it("offers 6h, 24h and 7d, subscribing to each; the headroom's low point follows the range", () => {
    render(<App options={options} />);
    const ws = soloSocket();
    act(() => {
      ws.open();
      ws.message({ ...update(), type: "performance_update" });
    });
    for (const [r, res, per] of [["6h", 360, "6 min"], ["24h", 1440, "24 min"], ["7d", 10080, "168 min"]] as const) {
      act(() => screen.getByRole("tab", { name: r }).click());
      expect(ws.sent.map((x) => JSON.parse(x))).toContainEqual({ type: "subscribe", range: r });
      const h = history("60m", 5);
      act(() => ws.message({ ...h, range: r, resolution_s: res }));
      expect(screen.getByText(new RegExp(`${r} window, ${per} per point`))).toBeInTheDocument();
    }
    expect(screen.getByTestId("headroom-low")).toHaveTextContent("Low point (7d)");
  });

  it("gives the inference panel the selected range's figures", () => {
    render(<App options={options} />);
    const ws = soloSocket();
    const u = update();
    u.inference_windows = { "5m": { ...u.inference, window: "5m" }, "15m": { ...u.inference, window: "15m" }, "60m": { ...u.inference, window: "60m", rtdetr_latency_ms: { avg: 160, p95: 460, p99: 490 } } };
    act(() => {
      ws.open();
      ws.message({ ...u, type: "performance_update" });
    });
    expect(screen.getByText("figures over 5m")).toBeInTheDocument();
    act(() => screen.getByRole("tab", { name: "60m" }).click());
    expect(screen.getByText("figures over 60m")).toBeInTheDocument();
    expect(screen.getByTestId("latency-rtdetr")).toHaveTextContent(/160 ms\s*avg\s*460 ms/);
  });

  it("says once, above the sections, that a source feeding several of them fails", () => {
    render(<App options={options} />);
    const ws = soloSocket();
    const u = update();
    u.errors = { ...u.errors, prometheus: "prometheus http://prom:9090: connection refused", "databases.redis": "dial tcp: refused" };
    act(() => {
      ws.open();
      ws.message({ ...u, type: "performance_update" });
    });
    const list = screen.getByRole("list", { name: "Source problems" });
    // only the source that is no section of its own; Redis says its error in its card
    expect(within(list).getAllByRole("listitem").map((li) => li.textContent)).toEqual(["Prometheus: http://prom:9090: connection refused"]);
    act(() => ws.message({ ...update(), type: "performance_update" }));
    expect(screen.queryByRole("list", { name: "Source problems" })).toBeNull();
  });

  it("toggles the theme and remembers the choice", () => {
    render(<App options={options} />);
    const toggle = screen.getByRole("button", { name: "Switch to dark theme" });
    act(() => toggle.click());
    expect(document.documentElement).toHaveClass("dark");
    expect(window.localStorage.getItem("sysperf-theme")).toBe("dark");
    expect(screen.getByRole("button", { name: "Switch to light theme" })).toBeInTheDocument();
  });

  it("shows a not-found page for other paths", () => {
    window.history.replaceState(null, "", "/nope");
    render(<App options={options} />);
    expect(screen.getByRole("heading", { name: "Page not found" })).toBeInTheDocument();
    act(() => screen.getByRole("link", { name: "Go to System performance" }).click());
    expect(window.location.pathname).toBe("/system");
  });
});

describe("fleet overview and the URL's host and range", () => {
  const sent = (ws: FakeWebSocket) => ws.sent.map((s) => JSON.parse(s) as Record<string, unknown>);
  const fleetSocket = () => FakeWebSocket.instances.find((s) => s.url.endsWith("?view=fleet"));
  const fleetUpdate = {
    type: "fleet_update",
    timestamp: "2026-12-03T15:40:00Z",
    hosts: [
      { h: "gpu-box-1", ago: 1, g: 4, um: 50, c: 10 },
      { h: "gpu-box-2", ago: 1, g: 4, um: 70, c: 50, aw: 1 },
    ],
    totals: { hosts: 2, online: 2, gpus: 8, alerts_critical: 0, alerts_warning: 1 },
  };

  it("shows one host's page as before, on the default feed, once the fleet view says there is one host", () => {
    render(<App options={options} />);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(screen.getByText("Connecting to the hub…")).toBeInTheDocument();
    const ws = soloSocket();
    act(() => {
      ws.open();
      ws.message({ ...update(), type: "performance_update" });
    });
    expect(document.querySelector("[data-section=gpu]")).not.toBeNull();
    expect(document.querySelector("[data-section=fleet]")).toBeNull();
    expect(screen.queryByRole("link", { name: "← Fleet" })).toBeNull();
    // The fleet view stays open, so that a second host joining brings the overview.
    expect(FakeWebSocket.instances).toHaveLength(2);
    const fws = fleetSocket()!;
    expect(fws.closedByClient).toBe(false);
    expect(ws.sent).toEqual([]);
    expect(window.location.search).toBe("");
    act(() => fws.message(fleetUpdate));
    expect(document.querySelector("[data-section=fleet]")).not.toBeNull();
    expect(ws.closedByClient).toBe(true);
  });

  it("with more than one host shows the fleet view alone; a row opens that host's view and back returns", async () => {
    render(<App options={options} />);
    const fws = fleetSocket()!;
    expect(fws.url).toBe("ws://hub.test/ws/system?view=fleet");
    act(() => {
      fws.open();
      fws.message(fleetUpdate);
    });
    const section = document.querySelector("[data-section=fleet]") as HTMLElement;
    expect(section).not.toBeNull();
    expect(within(section).getByTestId("fleet-totals")).toHaveTextContent("2 of 2 hosts online");
    expect(screen.getByTestId("updated-at")).toHaveTextContent("2 hosts · 8 GPUs · 1 alert firing");
    // No default feed (every host's GPUs and history), no host's sections.
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(document.querySelector("[data-section=gpu]")).toBeNull();

    act(() => (section.querySelector("tr[data-host=gpu-box-2]") as HTMLElement).click());
    expect(new URLSearchParams(window.location.search).get("host")).toBe("gpu-box-2");
    expect(new URLSearchParams(window.location.search).get("range")).toBe("5m");
    expect(fws.closedByClient).toBe(true);
    const ws = FakeWebSocket.last();
    expect(ws.url).toBe("ws://hub.test/ws/system");
    act(() => ws.open());
    expect(sent(ws)).toEqual([{ type: "subscribe", view: "host", host: "gpu-box-2", range: "5m" }]);
    expect(document.querySelector("[data-section=fleet]")).toBeNull();
    expect(screen.getByTestId("host-name")).toHaveTextContent("gpu-box-2");
    const one = manyGpus();
    one.hosts = one.hosts!.slice(1);
    act(() => ws.message({ ...one, type: "performance_update" }));
    expect(document.querySelector("[data-section=gpu]")).not.toBeNull();
    expect(document.querySelector("[data-section=fleet]")).toBeNull();

    // The back button leaves the host's view for the fleet view.
    act(() => window.history.back());
    await waitFor(() => expect(window.location.search).toBe(""));
    await waitFor(() => expect(ws.closedByClient).toBe(true));
    const again = FakeWebSocket.last();
    expect(again.url).toBe("ws://hub.test/ws/system?view=fleet");
    act(() => {
      again.open();
      again.message(fleetUpdate);
    });
    expect(document.querySelector("[data-section=fleet]")).not.toBeNull();
    expect(screen.queryByTestId("host-name")).toBeNull();
  });

  it("loads ?host=&range= into the subscribe, keeps both in the URL as they change, and the link goes back to the fleet", () => {
    window.history.replaceState(null, "", "/system?host=gpu-box-2&range=15m");
    render(<App options={options} />);
    const ws = FakeWebSocket.last();
    act(() => ws.open());
    expect(sent(ws)).toEqual([{ type: "subscribe", view: "host", host: "gpu-box-2", range: "15m" }]);
    expect(document.querySelector("[data-range]")).toHaveAttribute("data-range", "15m");
    expect(screen.getByTestId("host-name")).toHaveTextContent("gpu-box-2");

    act(() => screen.getByRole("tab", { name: "6h" }).click());
    expect(sent(ws).at(-1)).toEqual({ type: "subscribe", range: "6h" });
    expect(window.location.search).toBe("?host=gpu-box-2&range=6h");

    act(() => screen.getByRole("link", { name: "← Fleet" }).click());
    expect(window.location.search).toBe("?range=6h");
    expect(ws.closedByClient).toBe(true);
    const fws = FakeWebSocket.last();
    expect(fws.url).toBe("ws://hub.test/ws/system?view=fleet");
    act(() => fws.open());
    // The fleet view's history at the selected range (sent once the hub keeps one).
    expect(sent(fws)).toEqual([{ type: "subscribe", range: "6h" }]);

    // Back to a host: a new socket subscribes to that host and range.
    act(() => screen.getByRole("tab", { name: "15m" }).click());
    window.history.replaceState(null, "", "/system?host=gpu-box-1&range=15m");
    act(() => window.dispatchEvent(new PopStateEvent("popstate")));
    expect(fws.closedByClient).toBe(true);
    const hws = FakeWebSocket.last();
    act(() => hws.open());
    expect(sent(hws)).toEqual([{ type: "subscribe", view: "host", host: "gpu-box-1", range: "15m" }]);
  });
});
