import { act } from "@testing-library/react";
import { expect } from "vitest";
import { FakeWebSocket } from "./fakeWebSocket";

/** The fleet view of a one-box hub. */
export const oneHostFleet = {
  type: "fleet_update",
  timestamp: "2026-12-03T15:40:00Z",
  hosts: [{ h: "gpu-box-1", ago: 1, g: 1, um: 50 }],
  totals: { hosts: 1, online: 1, gpus: 1, alerts_critical: 0, alerts_warning: 0 },
};

/**
 * Without a host the page opens the fleet view first; once it says there is
 * one host, the default feed opens. Returns that socket, not yet open.
 */
export function soloSocket(): FakeWebSocket {
  const fws = FakeWebSocket.last();
  expect(fws.url).toMatch(/\/ws\/system\?view=fleet$/);
  act(() => {
    fws.open();
    fws.message(oneHostFleet);
  });
  const ws = FakeWebSocket.last();
  expect(ws.url).toMatch(/\/ws\/system$/);
  return ws;
}
