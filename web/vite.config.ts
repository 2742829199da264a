import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

// The web app is built once into web/dist and served by `sputnik serve` at `/`.
// `npm run dev:web` serves it with hot reload, proxying the API to a running server.
export default defineConfig({
  root,
  base: "/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The Content-Security-Policy allows no inline scripts; never inline assets as data: scripts.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "/api": process.env.SPUTNIK_URL ?? "http://127.0.0.1:8080",
      "/v1": process.env.SPUTNIK_URL ?? "http://127.0.0.1:8080",
    },
  },
});
