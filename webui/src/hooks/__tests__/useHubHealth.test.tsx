import { act, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SystemPerformancePage } from "../../pages/SystemPerformancePage";
import { FakeWebSocket } from "../../test/fakeWebSocket";
import { soloSocket } from "../../test/soloSocket";
import { update } from "../../test/fixtures";
import type { Options } from "../usePerformanceMetrics";

const options: Options = { url: "ws://hub.test/ws/system", WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket, random: () => 1, baseMs: 10 };
const noRules = { fetchImpl: vi.fn(async () => new Response("", { status: 404 })) };

beforeEach(() => FakeWebSocket.reset());
afterEach(() => FakeWebSocket.reset());

/** A /healthz that answers each call with the next of answers (the last repeats). */
function health(...answers: (Response | Error)[]) {
  let i = 0;
  return vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) => {
    const a = answers[Math.min(i++, answers.length - 1)]!;
    if (a instanceof Error) throw a;
    return a.clone();
  });
}

const waiting = "not ready: waiting for NATS at nats://nats:4222: connection refused";

describe("useHubHealth through the page", () => {
  it("says why a hub that answers cannot serve the feed, and stops asking once connected", async () => {
    const f = health(new Response(waiting + "\n", { status: 503 }));
    render(<SystemPerformancePage options={options} rules={noRules} health={{ fetchImpl: f, everyMs: 20 }} />);
    await waitFor(() => expect(screen.getByTestId("hub-says")).toHaveTextContent(`The hub answers but cannot serve the feed yet: ${waiting}`));
    expect(f).toHaveBeenCalledWith("/healthz", expect.objectContaining({ cache: "no-store" }));
    const ws = soloSocket();
    act(() => {
      ws.open();
      ws.message({ ...update(), type: "performance_update" });
    });
    expect(screen.queryByTestId("hub-says")).toBeNull();
    const calls = f.mock.calls.length;
    await new Promise((r) => setTimeout(r, 80));
    expect(f.mock.calls.length).toBe(calls);
    // the feed drops while the hub says why: the banner carries it
    act(() => ws.drop());
    await waitFor(() => expect(screen.getByRole("alert")).toHaveTextContent(`The hub answers but cannot serve the feed: ${waiting}. Still retrying.`));
  });

  it.each([
    ["a ready hub", new Response("ok", { status: 200 })],
    ["an unreachable hub", new TypeError("Failed to fetch")],
    ["an empty 503", new Response("", { status: 503 })],
  ] as const)("adds nothing for %s", async (_name, answer) => {
    const f = health(answer);
    render(<SystemPerformancePage options={options} rules={noRules} health={{ fetchImpl: f, everyMs: 20 }} />);
    await waitFor(() => expect(f.mock.calls.length).toBeGreaterThanOrEqual(2));
    expect(screen.queryByTestId("hub-says")).toBeNull();
    expect(screen.getByText("Connecting to the hub…")).toBeInTheDocument();
  });

  it("clears the reason when the hub becomes ready or unreachable", async () => {
    const f = health(new Response(waiting, { status: 503 }), new Response(waiting, { status: 503 }), new TypeError("Failed to fetch"));
    render(<SystemPerformancePage options={options} rules={noRules} health={{ fetchImpl: f, everyMs: 20 }} />);
    await waitFor(() => expect(screen.getByTestId("hub-says")).toBeInTheDocument());
    await waitFor(() => expect(screen.queryByTestId("hub-says")).toBeNull());
  });
});
