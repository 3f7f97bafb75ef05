// Starts a real `natter serve --dev` for the web tests: builds the binary
// once per process (or uses $NATTER_BIN), picks free ports, waits for
// /healthz and mints tokens with `natter token`.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
let binary = process.env.NATTER_BIN || "";

/** Builds ./cmd/natter into a temporary directory (once per process). */
export function natterBinary() {
  if (!binary) {
    const dir = mkdtempSync(join(tmpdir(), "natter-bin-"));
    binary = join(dir, "natter");
    execFileSync("go", ["build", "-o", binary, "./cmd/natter"], { cwd: repo, stdio: "inherit" });
  }
  return binary;
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `natter serve --dev` with extra flags; resolves once /healthz is 200.
 * Returns { httpURL, wsURL, token(user), stop() }.
 */
export async function startNatter(extraArgs = []) {
  const bin = natterBinary();
  const data = mkdtempSync(join(tmpdir(), "natter-data-"));
  const httpPort = await freePort();
  const natsPort = await freePort();
  const httpURL = `http://127.0.0.1:${httpPort}`;
  const args = ["serve", "--dev", "--data", data, "--http", `127.0.0.1:${httpPort}`, "--nats", `127.0.0.1:${natsPort}`, "--log-format", "text", "--log-level", "warn", ...extraArgs];
  const proc = spawn(bin, args, { stdio: ["ignore", "inherit", "pipe"] });
  let log = "";
  proc.stderr.on("data", (b) => {
    log += b;
    if (process.env.NATTER_LOG) process.stderr.write(b);
  });
  let exited = false;
  proc.on("exit", () => (exited = true));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`natter serve exited:\n${log}`);
    try {
      const r = await fetch(`${httpURL}/healthz`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`natter serve not healthy in 60 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    httpURL,
    wsURL: `ws://127.0.0.1:${httpPort}/v1/ws`,
    data,
    log: () => log,
    token(user, ttl = "1h") {
      return execFileSync(bin, ["token", "--data", data, "--user", user, "--ttl", ttl], { encoding: "utf8" }).trim();
    },
    async stop() {
      if (!exited) {
        const done = new Promise((r) => proc.on("exit", r));
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 15_000);
        await done;
        clearTimeout(t);
      }
      rmSync(data, { recursive: true, force: true });
    },
  };
}
