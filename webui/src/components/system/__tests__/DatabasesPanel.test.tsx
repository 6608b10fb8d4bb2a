import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { onlyAgent, points, T0, update } from "../../../test/fixtures";
import { DatabasesPanel } from "../DatabasesPanel";

const props = (u = update()) => ({ update: u, history: points(12, 5, u), resolutionS: 5, now: T0 });

describe("DatabasesPanel", () => {
  it("shows PostgreSQL and Redis with status and figures", () => {
    render(<DatabasesPanel {...props()} />);
    const pg = screen.getByRole("article", { name: "PostgreSQL" });
    expect(within(pg).getByText("Healthy")).toBeInTheDocument();
    expect(within(pg).getByTestId("pg-connections")).toHaveTextContent("5 / 30pool");
    expect(within(pg).getByTestId("pg-cache-hit")).toHaveTextContent("98.2%");
    expect(within(pg).getByText("1,200")).toBeInTheDocument();
    const rd = screen.getByRole("article", { name: "Redis" });
    expect(within(rd).getByTestId("redis-clients")).toHaveTextContent("8");
    expect(within(rd).getByTestId("redis-memory")).toHaveTextContent("1.44 MB");
    expect([...document.querySelectorAll("figure[data-chart]")].map((f) => f.getAttribute("data-chart"))).toEqual(["Connections", "Memory (MB)"]);
  });

  it("lists the further PostgreSQL databases (postgresql_extra) with status and figures, none when there are none", () => {
    const { unmount } = render(<DatabasesPanel {...props()} />);
    expect(screen.queryByRole("list", { name: "Further PostgreSQL databases" })).toBeNull();
    unmount();
    const u = update();
    u.databases.postgresql_extra = [
      { status: "healthy", database: "orders", connections_active: 29, connections_max: 30, cache_hit_ratio: 99.5, transactions_per_min: 4200 },
      { status: "unreachable", reason: "dial tcp 10.0.0.9:5432: i/o timeout", connections_active: null, connections_max: null, cache_hit_ratio: null, transactions_per_min: null },
    ];
    render(<DatabasesPanel {...props(u)} />);
    const list = within(screen.getByRole("article", { name: "PostgreSQL" })).getByRole("list", { name: "Further PostgreSQL databases" });
    const items = within(list).getAllByTestId("pg-extra");
    expect(items.map((li) => li.getAttribute("data-db-name"))).toEqual(["orders", "database 3"]);
    const [orders, down] = items as [HTMLElement, HTMLElement];
    expect(within(orders).getByText("Healthy")).toBeInTheDocument();
    expect(within(orders).getByTestId("pg-extra-connections")).toHaveTextContent("29 / 30 connections");
    expect(within(orders).getByTestId("pg-extra-connections")).toHaveAttribute("data-level", "critical");
    expect(orders).toHaveTextContent("99.5% cache hit");
    expect(orders).toHaveTextContent("4,200 tx/min");
    expect(within(down).getByText("Unreachable")).toBeInTheDocument();
    expect(within(down).getByText(/i\/o timeout/)).toBeInTheDocument();
    expect(within(down).getByTestId("pg-extra-connections")).toHaveTextContent("— / — connections");
    // The first database keeps the card's meters.
    expect(screen.getByTestId("pg-connections")).toHaveTextContent("5 / 30pool");
  });

  it.each([
    ["pool_size", "5 / 30pool"],
    ["max_connections", "5 / 30max_connections"],
    [undefined, "5 / 30"],
  ] as const)("names what the connection limit is (%s)", (from, text) => {
    const u = update();
    u.databases.postgresql.connections_max_from = from;
    render(<DatabasesPanel {...props(u)} />);
    expect(screen.getByTestId("pg-connections")).toHaveTextContent(new RegExp(`^Connections${text}$`));
  });

  it("colours the seed's Redis hit ratio of 0.01 % critical (< 10 %) and a full pool critical", () => {
    const u = update();
    u.databases.postgresql.connections_active = 29; // 96.7 % of 30
    render(<DatabasesPanel {...props(u)} />);
    expect(screen.getByTestId("redis-hit")).toHaveAttribute("data-level", "critical");
    expect(screen.getByTestId("pg-connections")).toHaveAttribute("data-level", "critical");
    expect(screen.getByTestId("pg-cache-hit")).toHaveAttribute("data-level", "ok");
  });

  it("shows an unreachable database with its reason", () => {
    const u = update();
    u.databases.postgresql = { status: "unreachable", reason: "dial tcp 127.0.0.1:5432: connect: connection refused", connections_active: null, connections_max: null, cache_hit_ratio: null, transactions_per_min: null };
    render(<DatabasesPanel {...props(u)} />);
    const pg = screen.getByRole("article", { name: "PostgreSQL" });
    expect(within(pg).getByText("Unreachable")).toBeInTheDocument();
    expect(within(pg).getByText(/connection refused/)).toBeInTheDocument();
    expect(within(pg).getByTestId("pg-connections")).toHaveTextContent("— / —");
  });

  it("says a database that is not configured is not monitored", () => {
    render(<DatabasesPanel {...props(onlyAgent())} />);
    expect(screen.getByText("PostgreSQL is not monitored")).toBeInTheDocument();
    expect(screen.getByText("Redis is not monitored")).toBeInTheDocument();
    expect(document.querySelectorAll("figure[data-chart]")).toHaveLength(0);
  });

  it("marks a stale database section", () => {
    const u = update();
    u.stale = { ...u.stale, "databases.redis": true };
    render(<DatabasesPanel {...props(u)} />);
    expect(within(screen.getByRole("article", { name: "Redis" })).getByText("stale — no fresh data")).toBeInTheDocument();
    expect(within(screen.getByRole("article", { name: "PostgreSQL" })).queryByText(/stale/)).toBeNull();
  });
});
