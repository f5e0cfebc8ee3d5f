#!/usr/bin/env node
// The original architecture Echo is measured against: a Socket.IO server, scaled out with the Redis
// adapter, whose channels run middleware functions in-process. Channel semantics follow Echo's
// protocol (README.md, "Protocol" and "Associations"); see bench/baseline/README.md for the mapping.
//
//   node server.js --port P [--host H] [--redis redis://127.0.0.1:6379 | none] [--associations FILE]
//                  [--history N] [--ping-interval MS] [--ping-timeout MS]

import { randomBytes } from "node:crypto";
import { readFileSync, realpathSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, resolve as resolvePath } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";

import { parseAssociations, resolve, validApp, validChannel } from "./associations.js";
import { demoFunctions } from "./functions.js";

const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_ASSOCIATIONS = resolvePath(HERE, "../../apps/chat/associations.json");
export const DEFAULT_REDIS = "redis://127.0.0.1:6379";
export const DEFAULT_APP = "chat-demo";
/** Messages kept per channel for `since` replay and `history`. */
export const DEFAULT_HISTORY = 1000;
/** Subscriptions one connection may hold, as Echo's default. */
export const MAX_SUBSCRIPTIONS = 256;
const MAX_ID_BYTES = 128;
const MAX_HISTORY_LIMIT = 1000;
const DEFAULT_HISTORY_LIMIT = 100;

const noop = () => {};

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function refusal(code, message) {
  return { error: code, message };
}

function checkChannel(channel) {
  if (validChannel(channel)) return null;
  if (channel === "$status") return refusal("forbidden", "$status is for admins; this server has none");
  return refusal(
    "bad_request",
    `invalid channel ${JSON.stringify(channel)}: 1 to 128 of letters, digits and _ - . : @ =`,
  );
}

function isSeq(v) {
  return Number.isSafeInteger(v) && v >= 0;
}

/** Per-channel state: the latest seq and a ring of the last `cap` messages (seq s at (s-1) % cap). */
class Channel {
  constructor(cap) {
    this.seq = 0;
    this.cap = cap;
    this.ring = cap > 0 ? new Array(cap) : null;
  }

  store(message) {
    if (this.ring !== null) this.ring[(message.seq - 1) % this.cap] = message;
  }

  /** Stored messages with seq > since, oldest first, at most `limit`. */
  range(since, limit) {
    const out = [];
    if (this.ring === null) return out;
    const first = Math.max(since + 1, this.seq - this.cap + 1, 1);
    const last = Math.min(this.seq, first + limit - 1);
    for (let s = first; s <= last; s++) out.push(this.ring[(s - 1) % this.cap]);
    return out;
  }
}

// ---- the middleware chain ------------------------------------------------------------------------

function failed(policy, input, name, error) {
  if (policy.onError === "pass") return { data: input.message.data };
  return refusal("function_failed", `function ${name} failed: ${error}; nothing was delivered`);
}

// Applies one function's answer: null to go on, or the chain's outcome.
function step(policy, input, name, out) {
  if (out !== null && typeof out === "object") {
    if (out.action === "continue" && out.data !== undefined) {
      input.message.data = out.data;
      return null;
    }
    if (out.action === "drop") {
      return { dropped: true, reason: typeof out.reason === "string" ? out.reason : `dropped by ${name}` };
    }
  }
  return failed(policy, input, name, "function answered something that is not a valid function output");
}

function errorText(e) {
  return e instanceof Error ? e.message : String(e);
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`function did not answer within ${ms}ms`), { timedOut: true })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Continues a chain once a function answered with a promise; each is bounded by the policy's timeout.
async function finishChain(functions, policy, input, i, pending) {
  const names = policy.functions;
  for (;;) {
    let out;
    try {
      out = await withTimeout(pending, policy.timeoutMs);
    } catch (e) {
      return failed(policy, input, names[i], e?.timedOut ? e.message : `function failed: ${errorText(e)}`);
    }
    const outcome = step(policy, input, names[i], out);
    if (outcome !== null) return outcome;
    if (++i === names.length) return { data: input.message.data };
    try {
      pending = Promise.resolve(functions.get(names[i])(input));
    } catch (e) {
      return failed(policy, input, names[i], `function failed: ${errorText(e)}`);
    }
  }
}

/**
 * Runs `policy`'s functions in order, each getting the previous one's data. Synchronous functions
 * run without leaving the tick; the outcome is `{data}`, `{dropped, reason}` or `{error, message}`,
 * or a promise of one once a function answers asynchronously.
 */
export function runChain(functions, policy, input) {
  const names = policy.functions;
  for (let i = 0; i < names.length; i++) {
    let out;
    try {
      out = functions.get(names[i])(input);
    } catch (e) {
      return failed(policy, input, names[i], `function failed: ${errorText(e)}`);
    }
    if (out !== null && typeof out === "object" && typeof out.then === "function") {
      return finishChain(functions, policy, input, i, out);
    }
    const outcome = step(policy, input, names[i], out);
    if (outcome !== null) return outcome;
  }
  return { data: input.message.data };
}

// ---- the server ----------------------------------------------------------------------------------

function connectRedis(url) {
  let ready = false;
  const giveUp = 10;
  const client = createClient({
    url,
    socket: {
      // Fail fast at startup, keep retrying afterwards.
      reconnectStrategy: (retries, cause) => {
        if (!ready && retries >= giveUp) return new Error(`could not connect to ${url}: ${errorText(cause)}`);
        return Math.min(50 * (retries + 1), 2000);
      },
    },
  });
  let lastError = "";
  client.on("error", (e) => {
    const text = errorText(e);
    if (ready && text !== lastError) console.error(`baseline: redis: ${text}`);
    lastError = text;
  });
  client.on("ready", () => {
    ready = true;
    lastError = "";
  });
  return client;
}

/**
 * Starts the baseline. Options: `port` (0 picks one), `host`, `redis` (a URL, or null for the
 * in-memory adapter), `associations` (a file) or `associationsText`, `functions` (a Map of name to
 * function; the demo functions by default), `history` (messages kept per channel), `pingInterval`
 * and `pingTimeout` (Engine.IO heartbeat, ms). Resolves to `{port, io, close()}`.
 */
export async function startBaseline(options = {}) {
  const {
    port = 0,
    host = "127.0.0.1",
    redis = DEFAULT_REDIS,
    associations: associationsFile = DEFAULT_ASSOCIATIONS,
    functions = demoFunctions(),
    history = DEFAULT_HISTORY,
    pingInterval = 25_000,
    pingTimeout = 20_000,
  } = options;
  const associationsText = options.associationsText ?? readFileSync(associationsFile, "utf8");
  const associations = parseAssociations(associationsText, (name) => functions.has(name));

  const httpServer = createServer();
  const io = new Server(httpServer, { serveClient: false, pingInterval, pingTimeout, maxHttpBufferSize: 1 << 20 });

  let redisClients = [];
  if (redis) {
    const pub = connectRedis(redis);
    const sub = connectRedis(redis);
    redisClients = [pub, sub];
    try {
      await Promise.all([pub.connect(), sub.connect()]);
    } catch (e) {
      for (const c of redisClients) if (c.isOpen) c.destroy();
      throw e;
    }
    io.adapter(createAdapter(pub, sub));
  }

  const channels = new Map();
  const channelOf = (key) => {
    let ch = channels.get(key);
    if (ch === undefined) {
      ch = new Channel(history);
      channels.set(key, ch);
    }
    return ch;
  };

  io.use((socket, next) => {
    const { app } = socket.handshake.query;
    if (app !== undefined && app !== "" && !validApp(app)) {
      return next(new Error("invalid app: 1 to 64 of letters, digits and _ - ."));
    }
    next();
  });

  io.on("connection", (socket) => {
    const query = socket.handshake.query;
    const app = typeof query.app === "string" && query.app !== "" ? query.app : DEFAULT_APP;
    const from = typeof query.sub === "string" && query.sub !== "" ? query.sub : socket.id;
    // Rooms are `app/channel`, as Echo keys channels: apps never see each other's channels.
    const prefix = `${app}/`;

    socket.on("subscribe", (req, ack) => {
      if (typeof ack !== "function") ack = noop;
      if (!isObject(req)) return ack(refusal("bad_request", "subscribe needs {channel, since?}"));
      const { channel, since } = req;
      const bad = checkChannel(channel);
      if (bad !== null) return ack(bad);
      if (since != null && !isSeq(since)) return ack(refusal("bad_request", `"since" must be a non-negative integer`));
      const key = prefix + channel;
      // socket.rooms also holds the socket's own room.
      if (!socket.rooms.has(key) && socket.rooms.size > MAX_SUBSCRIPTIONS) {
        return ack(refusal("limit_exceeded", `at most ${MAX_SUBSCRIPTIONS} subscriptions per connection`));
      }
      // Joining, replaying and acking happen in one tick: no message can slip in between.
      socket.join(key);
      const ch = channels.get(key);
      if (since != null && ch !== undefined) {
        for (const m of ch.range(since, history)) socket.emit("message", m);
      }
      ack({ seq: ch === undefined ? 0 : ch.seq });
    });

    socket.on("unsubscribe", (req, ack) => {
      if (typeof ack !== "function") ack = noop;
      if (!isObject(req)) return ack(refusal("bad_request", "unsubscribe needs {channel}"));
      const bad = checkChannel(req.channel);
      if (bad !== null) return ack(bad);
      socket.leave(prefix + req.channel);
      ack({});
    });

    socket.on("publish", (req, ack) => {
      if (typeof ack !== "function") ack = noop;
      if (!isObject(req)) return ack(refusal("bad_request", "publish needs {channel, data, id?}"));
      const { channel, data } = req;
      let { id } = req;
      const bad = checkChannel(channel);
      if (bad !== null) return ack(bad);
      if (channel === "$status") return ack(refusal("forbidden", "nobody publishes to $status"));
      if (data === undefined || data === null) return ack(refusal("bad_request", `publish needs "data"`));
      if (id == null) {
        id = randomBytes(8).toString("hex");
      } else if (typeof id !== "string" || id === "" || Buffer.byteLength(id) > MAX_ID_BYTES) {
        return ack(refusal("bad_request", `"id" must be 1 to ${MAX_ID_BYTES} bytes`));
      }
      const ts = Date.now();
      const deliver = (outcome) => {
        if (outcome.data === undefined) return ack(outcome);
        const key = prefix + channel;
        const ch = channelOf(key);
        const message = { channel, seq: ++ch.seq, id, data: outcome.data, from, ts };
        ch.store(message);
        io.to(key).emit("message", message);
        ack({ seq: message.seq });
      };
      const policy = resolve(associations, app, channel);
      if (policy === undefined || policy.functions.length === 0) return deliver({ data });
      const outcome = runChain(functions, policy, { app, channel, message: { id, data, from, ts } });
      if (typeof outcome.then === "function") outcome.then(deliver);
      else deliver(outcome);
    });

    socket.on("history", (req, ack) => {
      if (typeof ack !== "function") return;
      if (!isObject(req)) return ack(refusal("bad_request", "history needs {channel, since?, limit?}"));
      const { channel, since = 0, limit = DEFAULT_HISTORY_LIMIT } = req;
      const bad = checkChannel(channel);
      if (bad !== null) return ack(bad);
      if (!isSeq(since)) return ack(refusal("bad_request", `"since" must be a non-negative integer`));
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
        return ack(refusal("bad_request", `"limit" must be 1 to ${MAX_HISTORY_LIMIT}`));
      }
      const ch = channels.get(prefix + channel);
      ack({ messages: ch === undefined ? [] : ch.range(since, limit) });
    });

    socket.on("ping", (ack) => {
      if (typeof ack === "function") ack({});
    });
  });

  await new Promise((ok, fail) => {
    httpServer.once("error", fail);
    httpServer.listen(port, host, () => {
      httpServer.off("error", fail);
      ok();
    });
  });

  let closing = null;
  const close = () => {
    closing ??= (async () => {
      await io.close();
      await Promise.allSettled(redisClients.map((c) => (c.isOpen ? c.close() : undefined)));
    })();
    return closing;
  };
  return { port: httpServer.address().port, io, close };
}

// ---- command line --------------------------------------------------------------------------------

const USAGE = `usage: node server.js --port P [--host H] [--redis URL|none] [--associations FILE]
                      [--history N] [--ping-interval MS] [--ping-timeout MS]

  --port P            port to listen on (0 picks a free one)
  --host H            address to bind (default 127.0.0.1)
  --redis URL|none    Redis for the Socket.IO Redis adapter (default ${DEFAULT_REDIS});
                      "none" runs with the in-memory adapter
  --associations FILE Echo associations document (default apps/chat/associations.json)
  --history N         messages kept per channel for since/history (default ${DEFAULT_HISTORY})
  --ping-interval MS  Engine.IO ping interval (default 25000)
  --ping-timeout MS   Engine.IO ping timeout (default 20000)`;

export function parseArgs(argv) {
  const opts = { port: 3000 };
  const int = (flag, v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "-h" || flag === "--help") return null;
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case "--port": opts.port = int(flag, value); break;
      case "--host": opts.host = value; break;
      case "--redis": opts.redis = value === "none" ? null : value; break;
      case "--associations": opts.associations = resolvePath(value); break;
      case "--history": opts.history = int(flag, value); break;
      case "--ping-interval": opts.pingInterval = int(flag, value); break;
      case "--ping-timeout": opts.pingTimeout = int(flag, value); break;
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  return opts;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`baseline: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (opts === null) {
    console.log(USAGE);
    return;
  }
  let server;
  try {
    server = await startBaseline(opts);
  } catch (e) {
    console.error(`baseline: ${errorText(e)}`);
    process.exit(1);
  }
  const shutdown = (signal) => {
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    server.close().then(
      () => process.exit(0),
      (e) => {
        console.error(`baseline: shutting down on ${signal}: ${errorText(e)}`);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
  const redis = opts.redis === undefined ? DEFAULT_REDIS : opts.redis;
  console.error(`baseline: ${redis ? `redis adapter at ${redis}` : "in-memory adapter"}, associations ${opts.associations ?? DEFAULT_ASSOCIATIONS}`);
  console.log(`baseline listening on ${server.port}`);
}

if (process.argv[1] && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url) {
  await main();
}
