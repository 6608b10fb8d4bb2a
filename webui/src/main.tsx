import { StrictMode } from "react";
import { flushSync } from "react-dom";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { afterPaint, frameQueue, FrameQueueContext, type FrameQueueOptions } from "./lib/frameQueue";
import "./index.css";

// ?sysperf-test=1 installs the browser test's injection hook (render timing).
const testHook = new URLSearchParams(window.location.search).has("sysperf-test");

// What the browser test reads: each chart's redraw, and when the last chart
// of an injected update was drawn and then painted.
const measured: FrameQueueOptions = {
  onJob: (ms) => performance.measure("sysperf-chart-draw", { duration: ms, end: performance.now() }),
  onDrained: () => {
    if (performance.getEntriesByName("sysperf-inject", "mark").length === 0) return;
    performance.measure("sysperf-update-charts", "sysperf-inject");
    afterPaint(() => performance.measure("sysperf-update-painted", "sysperf-inject"));
  },
};
// flushSync: a chart's commit happens inside its job, so the job's time is its whole redraw.
const charts = frameQueue({ commit: flushSync, ...(testHook ? measured : {}) });

const root = document.getElementById("root");
if (!root) throw new Error("index.html lacks #root");
createRoot(root).render(
  <StrictMode>
    <FrameQueueContext.Provider value={charts}>
      <App options={{ testHook }} />
    </FrameQueueContext.Provider>
  </StrictMode>,
);
