// Bundle the dashboard into Django's static files (realtime_project/static/client/).
// Usage: node build.mjs [--watch]. The output is built, never committed.
import { build, context } from "esbuild";
import { fileURLToPath } from "node:url";

const outdir = fileURLToPath(new URL("../realtime_project/static/client/", import.meta.url));
const options = {
  entryPoints: { dashboard: "src/dashboard/main.tsx" },
  bundle: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  jsx: "automatic",
  minify: true,
  sourcemap: true,
  outdir,
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "info",
  legalComments: "none",
};

if (process.argv.includes("--watch")) {
  const ctx = await context({ ...options, minify: false, define: { "process.env.NODE_ENV": '"development"' } });
  await ctx.watch();
} else {
  await build(options);
}
