import { act, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { frameQueue, FrameQueueContext } from "../../../lib/frameQueue";
import { Chart } from "../common";

// A hand-driven IntersectionObserver: the test says when the chart is near the screen.
class FakeIO {
  static all: FakeIO[] = [];
  constructor(private cb: IntersectionObserverCallback) {
    FakeIO.all.push(this);
  }
  observe() {}
  unobserve() {}
  disconnect() {}
  takeRecords() {
    return [];
  }
  set(near: boolean) {
    act(() => this.cb([{ isIntersecting: near } as IntersectionObserverEntry], this as unknown as IntersectionObserver));
  }
}

const empty = [{ time: "12:00:00", cpu: null }];
const full = [{ time: "12:00:00", cpu: 12 }, { time: "12:00:05", cpu: 14 }];

describe("Chart", () => {
  beforeEach(() => {
    FakeIO.all = [];
    globalThis.IntersectionObserver = FakeIO as unknown as typeof IntersectionObserver;
  });
  afterEach(() => {
    delete (globalThis as { IntersectionObserver?: unknown }).IntersectionObserver;
  });

  it("says the window is empty instead of drawing an empty chart", () => {
    render(<Chart title="CPU (%)" data={empty} categories={["cpu"]} />);
    expect(screen.getByText("No samples in this window yet")).toBeInTheDocument();
  });

  it("keeps its last drawing while off screen and catches up when scrolled near", () => {
    const { rerender } = render(<Chart title="CPU (%)" data={full} categories={["cpu"]} />);
    FakeIO.all[0]!.set(false);
    rerender(<Chart title="CPU (%)" data={empty} categories={["cpu"]} />);
    // off screen: still what it drew before
    expect(screen.queryByText("No samples in this window yet")).toBeNull();
    FakeIO.all[0]!.set(true);
    expect(screen.getByText("No samples in this window yet")).toBeInTheDocument();
  });

  it("off screen, still draws data that arrives while it shows the empty notice (full-page screenshot)", () => {
    const { rerender } = render(<Chart title="CPU (%)" data={empty} categories={["cpu"]} />);
    FakeIO.all[0]!.set(false);
    rerender(<Chart title="CPU (%)" data={full} categories={["cpu"]} />);
    expect(screen.queryByText("No samples in this window yet")).toBeNull();
    expect(document.querySelector("figure[data-chart='CPU (%)']")).not.toHaveAttribute("data-empty");
  });

  it("off screen, redraws when its drawing is older than 15 s, and whenever the page prints", () => {
    let now = 1_000_000;
    const clock = vi.spyOn(Date, "now").mockImplementation(() => now);
    try {
      const { rerender } = render(<Chart title="CPU (%)" data={full} categories={["cpu"]} />);
      FakeIO.all[0]!.set(false);
      rerender(<Chart title="CPU (%)" data={empty} categories={["cpu"]} />);
      expect(screen.queryByText("No samples in this window yet")).toBeNull();
      now += 16_000;
      rerender(<Chart title="CPU (%)" data={[...empty]} categories={["cpu"]} />);
      expect(screen.getByText("No samples in this window yet")).toBeInTheDocument();
      // Printing: drawn at once although off screen and fresh.
      rerender(<Chart title="CPU (%)" data={full} categories={["cpu"]} />);
      rerender(<Chart title="CPU (%)" data={[...empty, { time: "12:00:05", cpu: null }]} categories={["cpu"]} />);
      expect(screen.queryByText("No samples in this window yet")).toBeNull();
      act(() => {
        window.dispatchEvent(new Event("beforeprint"));
      });
      expect(screen.getByText("No samples in this window yet")).toBeInTheDocument();
    } finally {
      clock.mockRestore();
    }
  });

  it("draws lines past two series and filled areas up to two", () => {
    const three = [{ time: "12:00:00", a: 1, b: 2, c: 3 }];
    render(<Chart title="three" data={three} categories={["a", "b", "c"]} />);
    render(<Chart title="two" data={three} categories={["a", "b"]} />);
    expect(document.querySelector("figure[data-chart='three'] [data-kind]")).toHaveAttribute("data-kind", "line");
    expect(document.querySelector("figure[data-chart='two'] [data-kind]")).toHaveAttribute("data-kind", "area");
  });

  it("redraws in a frame of the page's queue, with the newest data when several updates came first", () => {
    const frames: (() => void)[] = [];
    let jobs = 0;
    const q = frameQueue({ frame: (cb) => frames.push(cb), onJob: () => jobs++ });
    const three = [...full, { time: "12:00:10", cpu: 16 }];
    const at = (data: Record<string, string | number | null>[]) => (
      <FrameQueueContext.Provider value={q}>
        <Chart title="CPU (%)" data={data} categories={["cpu"]} />
      </FrameQueueContext.Provider>
    );
    const { rerender } = render(at(empty));
    expect(frames).toHaveLength(0); // the first drawing is immediate
    rerender(at(full));
    rerender(at(three));
    // not redrawn with the update itself
    expect(screen.getByText("No samples in this window yet")).toBeInTheDocument();
    act(() => {
      while (frames.length) frames.shift()!();
    });
    expect(screen.queryByText("No samples in this window yet")).toBeNull();
    // one redraw, not two: the job for `full` was withdrawn when `three` came
    expect(jobs).toBe(1);
  });
});
