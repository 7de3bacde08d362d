import { defineConfig } from "vite";
import { resolve } from "node:path";

// Built by the Dashboard's .csproj (npm ci + vite build) into src/Dashboard/wwwroot, which is not committed.
export default defineConfig({
  root: __dirname,
  base: "/",
  build: {
    outDir: resolve(__dirname, "../wwwroot"),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:5080",
      "/metrics": "http://127.0.0.1:5080",
      "/hubs": { target: "http://127.0.0.1:5080", ws: true },
    },
  },
});
