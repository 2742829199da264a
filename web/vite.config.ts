import path from "node:path";
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";
import { precompressDir } from "../tools/precompress.ts";

const root = fileURLToPath(new URL(".", import.meta.url));

/** Brotli and gzip copies of the built files, served as they are by `sputnik serve` (tools/precompress.ts). */
function precompress(): Plugin {
  let outDir = "";
  return {
    name: "sputnik-precompress",
    apply: "build",
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    async closeBundle() {
      const { files, bytes, brotliBytes } = await precompressDir(outDir);
      this.info(`precompressed ${files} files: ${(bytes / 1024).toFixed(0)} KiB → ${(brotliBytes / 1024).toFixed(0)} KiB with brotli`);
    },
  };
}

// The web app is built once into web/dist and served by `sputnik serve` at `/`.
// `npm run dev:web` serves it with hot reload, proxying the API to a running server.
export default defineConfig({
  root,
  base: "/",
  plugins: [react(), precompress()],
  // Preact's React-compatible core in place of react-dom: the same components and hooks at about a
  // tenth of the size, which keeps the first-paint script within its budget (test/web-budget.test.ts).
  resolve: {
    alias: [
      { find: /^react-dom\/client$/, replacement: "preact/compat/client" },
      { find: /^react-dom$/, replacement: "preact/compat" },
      { find: /^react\/jsx-runtime$/, replacement: "preact/jsx-runtime" },
      { find: /^react\/jsx-dev-runtime$/, replacement: "preact/jsx-dev-runtime" },
      { find: /^react$/, replacement: "preact/compat" },
    ],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The Content-Security-Policy allows no inline scripts; never inline assets as data: scripts.
    assetsInlineLimit: 0,
    // dist/.vite/manifest.json: which chunks the entry loads up front (test/web-budget.test.ts). Never served: dot paths are not.
    manifest: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "/api": process.env.SPUTNIK_URL ?? "http://127.0.0.1:8080",
      "/v1": process.env.SPUTNIK_URL ?? "http://127.0.0.1:8080",
    },
  },
});
