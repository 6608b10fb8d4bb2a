import { createContext, useContext, useEffect, useState } from "react";

/**
 * Spreads costly redraws over animation frames. A Tremor AreaChart costs
 * several milliseconds to redraw (Recharts lays out every series and visits
 * every point), so redrawing all of them in the task that received an update
 * would hold the main thread for several frames at once. The queue runs them
 * one after another instead, each in the task that follows a frame, as many
 * per frame as fit in the budget and never fewer than one, so no frame waits
 * on more than its share.
 */
export interface FrameQueue {
  /** Queues draw for a coming frame; the returned function withdraws it. */
  schedule(draw: () => void): () => void;
}

export interface FrameQueueOptions {
  /** Milliseconds of drawing per frame; a job that would overrun waits for the next frame. */
  budgetMs?: number;
  /** Calls back once per frame, after it is painted (afterPaint by default). */
  frame?: (cb: () => void) => void;
  now?: () => number;
  /** Wraps each job, e.g. react-dom's flushSync, so its commit lands inside the job. */
  commit?: (job: () => void) => void;
  /** Told each job's duration, for measurement. */
  onJob?: (ms: number) => void;
  /** Told when the last queued job has run. */
  onDrained?: () => void;
}

/**
 * Calls cb in a task right after the next frame is painted: a
 * requestAnimationFrame callback runs before that frame's style and layout,
 * so work done there delays the frame; a message posted from it runs after.
 */
export function afterPaint(cb: () => void): void {
  if (typeof requestAnimationFrame !== "function" || typeof MessageChannel !== "function") {
    setTimeout(cb, 16);
    return;
  }
  requestAnimationFrame(() => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      cb();
    };
    ch.port2.postMessage(null);
  });
}

interface Entry {
  draw: () => void;
  live: boolean;
}

const noop = () => {};

export function frameQueue(opts: FrameQueueOptions = {}): FrameQueue & { pending(): number } {
  const { budgetMs = 8, frame = afterPaint, now = () => performance.now(), commit = (job) => job(), onJob, onDrained } = opts;
  let entries: Entry[] = [];
  let requested = false;
  // The last job's cost predicts the next one's: charts on a page cost about the same.
  let lastMs = 0;

  const run = () => {
    requested = false;
    const start = now();
    let ran = 0;
    try {
      while (entries.length) {
        const spent = now() - start;
        if (ran > 0 && spent + lastMs > budgetMs) break;
        const e = entries.shift()!;
        if (!e.live) continue;
        e.live = false;
        const t = now();
        ran++;
        commit(e.draw);
        lastMs = now() - t;
        onJob?.(lastMs);
      }
    } finally {
      // Also after a job threw: the others still get their frames.
      entries = entries.filter((e) => e.live);
      if (entries.length) request();
      else if (ran > 0) onDrained?.();
    }
  };
  const request = () => {
    if (requested) return;
    requested = true;
    frame(run);
  };

  return {
    schedule(draw) {
      // While no frame comes (a hidden tab) every update withdraws and
      // requeues each chart's redraw; drop the withdrawn ones as they pile up.
      if (entries.length >= 64) entries = entries.filter((e) => e.live);
      const e: Entry = { draw, live: true };
      entries.push(e);
      request();
      return () => {
        e.live = false;
        e.draw = noop; // let go of the data the withdrawn redraw held
      };
    },
    /** Redraws waiting for a frame, withdrawn ones not yet dropped included. */
    pending: () => entries.length,
  };
}

/** Draws at once: for tests and for a tree mounted without a provider. */
export const immediate: FrameQueue = {
  schedule(draw) {
    draw();
    return () => {};
  },
};

export const FrameQueueContext = createContext<FrameQueue>(immediate);

/**
 * The value as last drawn. A new value reaches the caller through the
 * page's FrameQueue, in a frame of its own, so the component that draws it
 * re-renders then rather than with the update that brought it. While
 * enabled is false (off screen) the old value stays; same decides what
 * counts as a change.
 */
export function useFramed<T>(value: T, same: (a: T, b: T) => boolean = Object.is, enabled = true): T {
  const queue = useContext(FrameQueueContext);
  const [drawn, setDrawn] = useState(value);
  useEffect(() => {
    if (!enabled || same(drawn, value)) return;
    return queue.schedule(() => setDrawn(() => value));
  }, [enabled, value, drawn, queue, same]);
  return drawn;
}
