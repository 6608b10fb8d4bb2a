import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import "./index.css";

// ?sysperf-test=1 installs the browser test's injection hook (render timing).
const testHook = new URLSearchParams(window.location.search).has("sysperf-test");

const root = document.getElementById("root");
if (!root) throw new Error("index.html lacks #root");
createRoot(root).render(
  <StrictMode>
    <App options={{ testHook }} />
  </StrictMode>,
);
