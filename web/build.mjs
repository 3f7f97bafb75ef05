// Builds the client library (client/dist/natter.js, ES module, for tests and
// for other apps) and the chat app into dist/, which natter embeds
// (web/web.go). Asset names carry a content hash, so the Go handler can let
// browsers cache them forever; index.html is written last and names them.
//
//   node build.mjs                 client library + app
//   node build.mjs --client-only   client library only
import * as esbuild from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const clientOnly = process.argv.includes("--client-only");

await esbuild.build({
  entryPoints: [join(root, "client/src/index.ts")],
  outfile: join(root, "client/dist/natter.js"),
  bundle: true,
  format: "esm",
  target: "es2022",
  sourcemap: true,
  logLevel: "warning",
});

if (!clientOnly) {
  const dist = join(root, "dist");
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(join(dist, "assets"), { recursive: true });
  const result = await esbuild.build({
    entryPoints: [join(root, "app/src/main.ts"), join(root, "app/src/style.css")],
    outdir: join(dist, "assets"),
    entryNames: "[name]-[hash]",
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022", "chrome110", "firefox110", "safari16"],
    metafile: true,
    logLevel: "warning",
  });
  const out = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = out.find((f) => f.endsWith(".js"));
  const css = out.find((f) => f.endsWith(".css"));
  const html = readFileSync(join(root, "app/index.html"), "utf8")
    .replace("%APP_JS%", `/assets/${js}`)
    .replace("%APP_CSS%", `/assets/${css}`);
  writeFileSync(join(dist, "index.html"), html);
  console.log(`built dist/index.html, dist/assets/${js}, dist/assets/${css}`);
}
