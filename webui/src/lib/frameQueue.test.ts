import { describe, expect, it } from "vitest";
import { frameQueue, type FrameQueueOptions } from "./frameQueue";

/** A queue whose frames and clock the test drives: each job costs `cost` ms. */
function harness(opts: FrameQueueOptions & { cost?: number } = {}) {
  let t = 0;
  const frames: (() => void)[] = [];
  const ran: string[] = [];
  const jobMs: number[] = [];
  let drained = 0;
  const q = frameQueue({
    budgetMs: 8,
    frame: (cb) => frames.push(cb),
    now: () => t,
    onJob: (ms) => jobMs.push(ms),
    onDrained: () => drained++,
    ...opts,
  });
  const job = (name: string, cost = opts.cost ?? 3) => () => {
    t += cost;
    ran.push(name);
  };
  /** Runs the frame callback requested so far; returns what it drew. */
  const frame = () => {
    const cb = frames.shift();
    if (!cb) throw new Error("no frame requested");
    const before = ran.length;
    cb();
    return ran.slice(before);
  };
  return { q, job, frame, ran, jobMs, frames, drained: () => drained };
}

describe("frameQueue", () => {
  it("draws nothing until a frame, then as many jobs as fit in the budget", () => {
    const h = harness({ cost: 3 });
    for (const n of ["a", "b", "c", "d", "e"]) h.q.schedule(h.job(n));
    expect(h.ran).toEqual([]);
    // one frame callback requested, however many jobs were queued
    expect(h.frames).toHaveLength(1);
    // 3 ms each against 8 ms: a and b fit, c would end at 9 ms
    expect(h.frame()).toEqual(["a", "b"]);
    expect(h.frame()).toEqual(["c", "d"]);
    expect(h.frame()).toEqual(["e"]);
    expect(h.frames).toHaveLength(0);
    expect(h.jobMs).toEqual([3, 3, 3, 3, 3]);
  });

  it("draws one job per frame even when one job alone is over the budget", () => {
    const h = harness({ cost: 12 });
    for (const n of ["a", "b", "c"]) h.q.schedule(h.job(n));
    expect(h.frame()).toEqual(["a"]);
    expect(h.frame()).toEqual(["b"]);
    expect(h.frame()).toEqual(["c"]);
  });

  it("skips a withdrawn job and says when the queue is drained", () => {
    const h = harness({ cost: 5 });
    h.q.schedule(h.job("a"));
    const cancel = h.q.schedule(h.job("b"));
    h.q.schedule(h.job("c"));
    cancel();
    expect(h.frame()).toEqual(["a"]);
    expect(h.drained()).toBe(0);
    expect(h.frame()).toEqual(["c"]);
    expect(h.drained()).toBe(1);
    // a queue whose only job was withdrawn draws nothing and reports nothing
    h.q.schedule(h.job("d"))();
    expect(h.frame()).toEqual([]);
    expect(h.drained()).toBe(1);
    expect(h.frames).toHaveLength(0);
  });

  it("wraps every job in commit, and takes jobs queued while it draws", () => {
    const commits: string[] = [];
    const h = harness({ cost: 1, commit: (j) => (commits.push("begin"), j(), commits.push("end")) });
    h.q.schedule(() => {
      h.job("a")();
      h.q.schedule(h.job("late"));
    });
    expect(h.frame()).toEqual(["a", "late"]);
    expect(commits).toEqual(["begin", "end", "begin", "end"]);
  });

  it("a job that throws does not leave the queue stuck", () => {
    const h = harness({ cost: 1 });
    h.q.schedule(() => {
      throw new Error("chart broke");
    });
    h.q.schedule(h.job("next"));
    expect(() => h.frame()).toThrow("chart broke");
    expect(h.frame()).toEqual(["next"]);
  });

  it("stays small while no frame comes and every update replaces each chart's redraw", () => {
    const h = harness({ cost: 1 });
    // a hidden tab: 10 charts, 1,000 updates, no frame
    let cancels: (() => void)[] = [];
    for (let u = 0; u < 1000; u++) {
      for (const c of cancels) c();
      cancels = Array.from({ length: 10 }, (_, i) => h.q.schedule(h.job(`u${u}c${i}`)));
    }
    expect(h.q.pending()).toBeLessThanOrEqual(64 + 10);
    expect(h.frames).toHaveLength(1);
    // the tab is shown again: only the newest redraw of each chart runs
    while (h.frames.length) h.frame();
    expect(h.ran).toEqual(Array.from({ length: 10 }, (_, i) => `u999c${i}`));
  });
});
