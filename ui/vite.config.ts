import preact from "@preact/preset-vite";
import { defineConfig } from "vitest/config";

// Built into the Python package, so that `iiot serve` serves it (no CDN, works offline).
export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: "../src/iiot/web/ui",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    // Strict CSP: no inline scripts or styles, no data: URLs for modules.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});
