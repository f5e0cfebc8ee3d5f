// Test support: a real Echo edge (`echoctl dev`) on free ports, dev tokens, and a TCP proxy that
// can be severed to simulate a network drop.
//
// ECHOCTL names the echoctl binary (default: ../../target/debug/echoctl from clients/js).

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ECHOCTL = process.env.ECHOCTL || path.resolve(here, "..", "..", "..", "target", "debug", "echoctl");

const READY_LINE = /^echo edge listening on http:\/\/([^\s/]+):(\d+)/;
const MANAGE_LINE = /management API\s+http:\/\/([^\s/]+):(\d+)/;
const READY_TIMEOUT_MS = 30_000;

/**
 * Starts `echoctl dev --port 0 --manage-port 0` on a fresh data directory, with `extraArgs`.
 * Returns {base, wsUrl, managePort, dataDir, token(app, sub, opts), manage(method, path), stop()}.
 */
export async function startEdge(extraArgs = []) {
  if (!existsSync(ECHOCTL)) {
    throw new Error(`echoctl not found at ${ECHOCTL}: run \`cargo build -p echoctl\` or set ECHOCTL`);
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), "echo-js-client-"));
  // No publish rate limit: the tests publish far faster than any person.
  const args = ["dev", "--port", "0", "--manage-port", "0", "--publish-rate", "0", "--data-dir", dataDir, ...extraArgs];
  const proc = spawn(ECHOCTL, args, { stdio: ["ignore", "pipe", "pipe"], env: { NO_COLOR: "1", ...process.env } });
  let stdout = "";
  let stderr = "";
  proc.stderr.setEncoding("utf8");
  proc.stderr.on("data", (c) => {
    stderr = (stderr + c).slice(-20_000);
  });
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));

  const ports = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echoctl printed no ready line within ${READY_TIMEOUT_MS} ms\n${stderr}`)), READY_TIMEOUT_MS);
    proc.stdout.setEncoding("utf8");
    proc.stdout.on("data", (c) => {
      stdout += c;
      const ready = READY_LINE.exec(stdout.split("\n")[0] ?? "");
      const manage = MANAGE_LINE.exec(stdout);
      if (ready && manage) {
        clearTimeout(timer);
        resolve({ port: Number(ready[2]), managePort: Number(manage[2]) });
      }
    });
    proc.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`echoctl exited (code ${code}, signal ${signal}) before it was ready\n${stderr}`));
    });
  });

  const base = `http://127.0.0.1:${ports.port}`;
  const manageToken = (await readFile(path.join(dataDir, "manage-token"), "utf8")).trim();
  return {
    base,
    port: ports.port,
    wsUrl: `ws://127.0.0.1:${ports.port}/`,
    managePort: ports.managePort,
    dataDir,
    logs: () => stderr,
    /** A dev token for `sub` in `app`. */
    async token(app, sub, { role, ttl } = {}) {
      const q = new URLSearchParams({ app, sub });
      if (role) q.set("role", role);
      if (ttl) q.set("ttl", String(ttl));
      const res = await fetch(`${base}/dev/token?${q}`);
      if (!res.ok) throw new Error(`GET /dev/token answered HTTP ${res.status}`);
      return (await res.json()).token;
    },
    /** The management API's token. */
    async manageToken() {
      return manageToken;
    },
    /** Calls the management API; returns the fetch Response. */
    manage(method, urlPath) {
      return fetch(`http://127.0.0.1:${ports.managePort}${urlPath}`, {
        method,
        headers: { authorization: `Bearer ${manageToken}` },
      });
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy on a free port forwarding to `targetPort`. `sever()` destroys every connection and
 * stops listening (new connections are refused); `restore()` listens on the same port again.
 */
export async function startProxy(targetPort) {
  const sockets = new Set();
  const onConnection = (client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    // What the edge sends is dropped while muted (an answer lost on the way).
    upstream.on("data", (chunk) => {
      if (!muted) client.write(chunk);
    });
  };
  let muted = false;
  let server = net.createServer(onConnection);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;
  let accepted = 0;
  server.on("connection", () => (accepted += 1));
  return {
    port,
    url: `ws://127.0.0.1:${port}/`,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size / 2;
    },
    /** Drops everything the edge sends from now until `sever`. */
    mute() {
      muted = true;
    },
    async sever() {
      muted = false;
      const closed = new Promise((resolve) => server.close(resolve));
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closed;
    },
    async restore() {
      server = net.createServer(onConnection);
      server.on("connection", () => (accepted += 1));
      await new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", resolve);
      });
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => (server.listening ? server.close(resolve) : resolve()));
    },
  };
}

/** Resolves when `predicate()` is true; rejects with `what` after `timeout` ms. */
export async function waitFor(predicate, what, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(20);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A unique name for channels and apps, so tests do not see each other's messages. */
export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
