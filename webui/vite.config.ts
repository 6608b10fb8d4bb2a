/// <reference types="vitest/config" />
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

// Vite empties dist/ before a build; dist/.keep is committed so that the Go
// package's go:embed pattern matches in a checkout without a build, so put
// it back after every build (otherwise git shows it deleted).
function keepPlaceholder(): Plugin {
  return {
    name: "sysperf-keep-placeholder",
    apply: "build",
    closeBundle() {
      writeFileSync(
        resolve(import.meta.dirname, "dist/.keep"),
        "placeholder so go:embed matches before the UI is built; see webui/embed.go\n",
      );
    },
  };
}

// The dev server proxies the hub's API, WebSocket and sign-in page
// (SYSPERF_HUB, default the hub's default --http) so `npm run dev` works
// against a running hub: sign in at the dev server's /login.
const hub = process.env.SYSPERF_HUB ?? "http://127.0.0.1:8321";

export default defineConfig({
  plugins: [react(), keepPlaceholder()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      // @tremor/react does not declare "sideEffects": false, so its whole
      // index (date pickers, selects and their dependencies) would ship.
      // Its modules only define components; let unused ones be dropped.
      treeshake: {
        moduleSideEffects: (id: string) => !/[\\/]node_modules[\\/]@tremor[\\/]react[\\/]dist[\\/].*\.js$/.test(id),
      },
    },
  },
  server: {
    proxy: {
      "/api": hub,
      "/login": hub,
      "/ws": { target: hub.replace(/^http/, "ws"), ws: true },
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    css: false,
    // A test that renders the whole page takes 1–3 s in jsdom on an idle
    // machine and several times that on a loaded CI runner: wait on
    // conditions (waitFor), and give them room rather than flake.
    testTimeout: 20_000,
  },
});
