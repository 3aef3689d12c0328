import assert from "node:assert/strict";
// The local stack: fixture origins, the built worker under `wrangler dev`,
// and local KV seeded through the portico CLI. Used by `make dev` and by the
// end-to-end tests; each caller picks its own ports and state directory.
//
// wrangler is started as `node .../wrangler.js` in its own process group
// (npx does not pass signals on), and stopped by group, so no workerd
// process outlives the stack.

import { spawn, execFile } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
export const PORTICO = path.join(ROOT, "target/debug/portico");

const run = promisify(execFile);

/** A TCP port that was free a moment ago. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/**
 * An origin that is down, on a port no other server of the run can be
 * given: every connection is reset as soon as it is accepted. (A port
 * merely found free and left closed can be handed to the next server that
 * asks for any port, which then answers in the dead origin's place.)
 */
export async function downOrigin() {
  const server = net.createServer((socket) => socket.resetAndDestroy());
  // Never what keeps a test process alive, should a setup fail first.
  server.unref();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { port: server.address().port, close: () => new Promise((resolve) => server.close(resolve)) };
}

const baseEnv = () => ({ ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" });

/** `portico config push FILE --local --persist-to DIR`; resolves to { code, output }. */
export async function pushConfig(file, persistTo) {
  try {
    const { stdout, stderr } = await run(
      PORTICO,
      ["config", "push", file, "--local", "--persist-to", persistTo],
      { cwd: ROOT, env: baseEnv() },
    );
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    return { code: error.code ?? 1, output: `${error.stdout ?? ""}${error.stderr ?? ""}` };
  }
}

/**
 * A wrangler configuration for tests, written to `dir`: the project's, but
 * serving the already built worker with no [build] step, so wrangler dev
 * neither rebuilds nor watches `src` (a watcher-triggered reload in the
 * middle of a test would drop requests in flight). With
 * `rateLimiterScript`, RATE_LIMITER is bound to that script instead of the
 * local class (a script that is not running makes the objects unreachable).
 */
export function writeTestWranglerConfig(dir, { rateLimiterScript, keysService } = {}) {
  const project = fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  const withoutBuild = project.replace(/\n\[build\][\s\S]*?\n(?=\n)/, "\n");
  let config = withoutBuild.replace(/^main = .*$/m, `main = ${JSON.stringify(path.join(ROOT, "build/worker/shim.mjs"))}`);
  if (keysService) {
    // KEYS bound to a Worker that does not run, in place of the namespace:
    // every key lookup fails, as when KV is unavailable.
    config = config.replace(
      /\[\[kv_namespaces\]\]\nbinding = "KEYS"\nid = .*\n/,
      `[[services]]\nbinding = "KEYS"\nservice = ${JSON.stringify(keysService)}\n`,
    );
    assert.ok(config.includes(`service = ${JSON.stringify(keysService)}`), "the KEYS binding was replaced");
  }
  if (rateLimiterScript) {
    config = config
      .replace(/bindings = \[\{ name = "RATE_LIMITER", class_name = "RateLimiter" \}\]/, `bindings = [{ name = "RATE_LIMITER", class_name = "RateLimiter", script_name = ${JSON.stringify(rateLimiterScript)} }]`)
      .replace(/\[\[migrations\]\][\s\S]*$/, "");
  }
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "wrangler.toml");
  fs.writeFileSync(file, config);
  return file;
}

/** Run the portico CLI; resolves to { code, stdout, stderr }. */
export async function portico(args) {
  try {
    const { stdout, stderr } = await run(PORTICO, args, { cwd: ROOT, env: baseEnv() });
    return { code: 0, stdout, stderr };
  } catch (error) {
    return { code: error.code ?? 1, stdout: error.stdout ?? "", stderr: error.stderr ?? "" };
  }
}

/** Write a KV value directly with wrangler, bypassing the CLI's checks. */
export async function putKvRaw(binding, key, file, persistTo) {
  await run(
    process.execPath,
    [WRANGLER, "kv", "key", "put", key, "--binding", binding, "--path", file, "--local", "--persist-to", persistTo],
    { cwd: ROOT, env: baseEnv() },
  );
}

/** Delete a KV value directly with wrangler. */
export async function deleteKvRaw(binding, key, persistTo) {
  await run(
    process.execPath,
    [WRANGLER, "kv", "key", "delete", key, "--binding", binding, "--local", "--persist-to", persistTo],
    { cwd: ROOT, env: baseEnv() },
  );
}

/**
 * Start `wrangler dev` on `port` with state in `persistTo`. Output goes to
 * `logFile` (or this process's stdout when `inherit` is set). `args` are
 * passed on (`--test-scheduled`, say). Resolves once the gateway answers
 * HTTP.
 */
export async function startWrangler({ port, persistTo, logFile, config, vars = {}, args: extra = [], inherit = false, readyTimeoutMs = 180_000 }) {
  const inspectorPort = await freePort();
  const args = [
    WRANGLER, "dev",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspectorPort),
    "--persist-to", persistTo,
    "--show-interactive-dev-session=false",
    ...(config ? ["--config", config] : []),
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ...extra,
  ];
  const out = inherit ? "inherit" : fs.openSync(logFile, "a");
  // VSCODE_INSPECTOR_OPTIONS makes wrangler skip its DevTools proxy, which
  // otherwise sits on every request's path and dominates its cost.
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...baseEnv(), VSCODE_INSPECTOR_OPTIONS: "{}" },
    stdio: ["ignore", out, out],
    detached: true,
  });
  const exited = once(child, "exit");
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}; see ${logFile ?? "its output"}`);
    try {
      await fetch(`${url}/`, { signal: AbortSignal.timeout(2_000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        stopGroup(child);
        throw new Error(`wrangler dev did not answer on ${url} within ${readyTimeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  return {
    url,
    child,
    stop: async () => {
      stopGroup(child);
      const timer = setTimeout(() => stopGroup(child, "SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function stopGroup(child, signal = "SIGTERM") {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Wait until `check()` resolves truthy, polling; throws after `timeoutMs`. */
export async function eventually(check, { timeoutMs = 20_000, intervalMs = 250, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
