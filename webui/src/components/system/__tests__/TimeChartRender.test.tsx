import { fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TimeChart } from "../TimeChart";

// jsdom has no layout: give every element a 600 × 200 box so the chart draws.
const size = { w: 600, h: 200 };
const orig = {
  w: Object.getOwnPropertyDescriptor(Element.prototype, "clientWidth")!,
  h: Object.getOwnPropertyDescriptor(Element.prototype, "clientHeight")!,
};

const data = [
  { time: "12:00:00", a: 10, b: 50, c: 1 },
  { time: "12:00:05", a: null, b: 55, c: 2 },
  { time: "12:00:10", a: 30, b: 60, c: 3 },
];

describe("TimeChart", () => {
  beforeEach(() => {
    Object.defineProperty(Element.prototype, "clientWidth", { configurable: true, get: () => size.w });
    Object.defineProperty(Element.prototype, "clientHeight", { configurable: true, get: () => size.h });
  });
  afterEach(() => {
    Object.defineProperty(Element.prototype, "clientWidth", orig.w);
    Object.defineProperty(Element.prototype, "clientHeight", orig.h);
  });

  it("draws one line per series, a gap where a value is missing, and no fill past two series", () => {
    const { container } = render(<TimeChart data={data} categories={["a", "b", "c"]} colors={["blue", "violet", "cyan"]} valueFormatter={String} minValue={0} />);
    const paths = [...container.querySelectorAll("path[data-series]")];
    expect(paths.map((p) => p.getAttribute("data-series"))).toEqual(["a", "b", "c"]);
    // "a" has two separate points: two moves, no line through the missing slot
    expect(paths[0]!.getAttribute("d")!.match(/M/g)).toHaveLength(2);
    expect(paths[1]!.getAttribute("d")!.match(/M/g)).toHaveLength(1);
    // ...and since neither of its points has a neighbour, each is drawn as a dot
    expect(container.querySelectorAll("circle[data-lone]")).toHaveLength(2);
    expect(container.querySelectorAll("linearGradient")).toHaveLength(0);
    // y labels run from the fixed 0 to a tick at or above the largest value
    const labels = [...container.querySelectorAll("text")].map((t) => t.textContent);
    expect(labels).toContain("0");
    expect(labels).toContain("60");
    expect(labels).toContain("12:00:00");
  });

  it("fills under the series when there are at most two", () => {
    const { container } = render(<TimeChart data={data} categories={["b"]} colors={["violet"]} valueFormatter={String} />);
    expect(container.querySelectorAll("linearGradient")).toHaveLength(1);
  });

  it("reads out every series at the hovered slot, a missing one as a dash", () => {
    const { container } = render(<TimeChart data={data} categories={["a", "b"]} colors={["blue", "violet"]} valueFormatter={(v) => `${v} %`} />);
    const svg = container.querySelector("svg")!;
    // the plot spans x 68..580 in a 600 px box: 324 is the middle slot
    fireEvent.mouseMove(svg, { clientX: 324, clientY: 50 });
    const tip = screen.getByRole("tooltip");
    expect(tip).toHaveTextContent("12:00:05");
    expect(tip).toHaveTextContent("55 %");
    expect(tip).toHaveTextContent("a—");
    fireEvent.mouseLeave(svg);
    expect(screen.queryByRole("tooltip")).toBeNull();
  });
});
