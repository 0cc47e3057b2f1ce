// Bundle the dashboard into Django's static files (realtime_project/static/client/).
// Usage: node build.mjs [--watch]. The output is built, never committed.
import { build, context } from "esbuild";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
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
  // Each file written whole, then renamed into place: a server, or a test on another
  // pytest-xdist worker, reading the bundle while it is rebuilt gets the old file or the
  // new one, never half of one.
  const { outputFiles } = await build({ ...options, write: false });
  for (const file of outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    const partial = `${file.path}.${process.pid}.tmp`;
    writeFileSync(partial, file.contents);
    renameSync(partial, file.path);
  }
}
