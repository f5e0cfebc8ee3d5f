// Tests of the baseline: `node --experimental-websocket --test test.mjs` (or `npm test`).
//
// Starts a throwaway redis-server when one is installed, runs the server as a process with the
// Redis adapter and with `--redis none`, and checks Echo's channel semantics through
// socket.io-client and through raw Engine.IO frames over a plain WebSocket, exactly as README.md
// documents them.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { io as connectClient } from "socket.io-client";

import { parseAssociations, resolve } from "./associations.js";
import { demoFunctions, mask, reverse, robotize } from "./functions.js";
import { runChain, startBaseline } from "./server.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVER = join(HERE, "server.js");
const PING_INTERVAL = 400;
const PING_TIMEOUT = 400;

// A plain WebSocket: Node's own (global with --experimental-websocket on Node 20), else `ws`.
const RawWebSocket = globalThis.WebSocket ?? (await import("ws")).WebSocket;

const hasRedis = spawnSync("redis-server", ["--version"]).status === 0;
if (!hasRedis) {
  console.log("# redis-server is not installed: skipping the Redis adapter variant (apt-get install redis-server)");
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

// Spawns a process and resolves once a line of its output matches `ready`, with the match.
function spawnUntil(cmd, args, ready, stream = "stdout") {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let seen = "";
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${cmd} did not start: ${seen}`)), 10_000);
    const onData = (chunk) => {
      seen += chunk;
      const m = seen.match(ready);
      if (m) {
        clearTimeout(timer);
        child[stream].off("data", onData);
        ok({ child, match: m });
      }
    };
    child[stream].setEncoding("utf8").on("data", onData);
    (stream === "stdout" ? child.stderr : child.stdout).setEncoding("utf8").on("data", (c) => (seen += c));
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`${cmd} exited with ${code}: ${seen}`));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const { child } = await spawnUntil(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    /Ready to accept connections/,
  );
  return { url: `redis://127.0.0.1:${port}`, child };
}

async function startServerProcess(redis, extra = []) {
  const { child, match } = await spawnUntil(
    process.execPath,
    [SERVER, "--port", "0", "--redis", redis ?? "none", "--ping-interval", String(PING_INTERVAL), "--ping-timeout", String(PING_TIMEOUT), ...extra],
    /baseline listening on (\d+)\n/,
  );
  child.stderr.resume();
  return { child, port: Number(match[1]) };
}

async function stop(child) {
  if (child.exitCode !== null) return child.exitCode;
  child.kill("SIGTERM");
  const [code] = await once(child, "exit");
  return code;
}

// A socket.io-client connection that records the `message` events it receives.
async function client(port, { app, sub } = {}) {
  const query = {};
  if (app) query.app = app;
  if (sub) query.sub = sub;
  const socket = connectClient(`http://127.0.0.1:${port}`, { transports: ["websocket"], query, forceNew: true, reconnection: false });
  const messages = [];
  const waiters = [];
  socket.on("message", (m) => {
    messages.push(m);
    for (const w of [...waiters]) w();
  });
  await new Promise((ok, fail) => {
    socket.once("connect", ok);
    socket.once("connect_error", fail);
  });
  const call = (event, payload) => socket.timeout(3000).emitWithAck(event, payload);
  return {
    socket,
    messages,
    subscribe: (channel, since) => call("subscribe", since === undefined ? { channel } : { channel, since }),
    unsubscribe: (channel) => call("unsubscribe", { channel }),
    publish: (channel, data, id) => call("publish", id === undefined ? { channel, data } : { channel, data, id }),
    history: (req) => call("history", req),
    // Resolves with the messages once `n` arrived.
    waitFor(n, ms = 3000) {
      return new Promise((ok, fail) => {
        const check = () => {
          if (messages.length >= n) {
            waiters.splice(waiters.indexOf(check), 1);
            clearTimeout(timer);
            ok(messages.slice(0, n));
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          fail(new Error(`expected ${n} messages, got ${JSON.stringify(messages)}`));
        }, ms);
        waiters.push(check);
        check();
      });
    },
    close: () => socket.disconnect(),
  };
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// A raw Engine.IO v4 / Socket.IO v5 connection over a plain WebSocket: every text frame received
// is queued, and `next()` takes the next one.
function raw(port, query) {
  const ws = new RawWebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket&${query}`);
  const frames = [];
  const waiting = [];
  let closed = false;
  ws.addEventListener("message", (e) => {
    const text = String(e.data);
    if (waiting.length > 0) waiting.shift()(text);
    else frames.push(text);
  });
  ws.addEventListener("close", () => {
    closed = true;
    while (waiting.length > 0) waiting.shift()(null);
  });
  return {
    ws,
    frames,
    get closed() {
      return closed;
    },
    opened: new Promise((ok, fail) => {
      ws.addEventListener("open", ok);
      ws.addEventListener("error", fail);
    }),
    send: (text) => ws.send(text),
    next(ms = 3000) {
      if (frames.length > 0) return Promise.resolve(frames.shift());
      if (closed) return Promise.resolve(null);
      return new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error("no frame")), ms);
        waiting.push((f) => {
          clearTimeout(timer);
          ok(f);
        });
      });
    },
  };
}

// ---- the functions and associations, against Echo's own unit tests ---------------------------------

describe("functions", () => {
  const fns = demoFunctions();
  const chain = (names, data) => runChain(fns, { functions: names, onError: "reject", timeoutMs: 1000 }, { message: { data } });

  test("angry then emojify", () => {
    assert.deepEqual(chain(["angry", "emojify"], { text: "hello" }), { data: { text: "😡 HELLO!!! 😡" } });
    assert.deepEqual(chain(["angry"], { text: "hello", name: "al" }), { data: { text: "HELLO!!!", name: "al" } });
    assert.deepEqual(chain(["angry"], 7), { data: 7 });
    assert.deepEqual(chain(["emojify"], { text: "HI" }), { data: { text: "😡 HI 😡" } });
    assert.deepEqual(chain(["angry"], { text: 3 }), { data: { text: 3 } });
    assert.deepEqual(chain(["angry"], [{ text: "a" }]), { data: [{ text: "a" }] });
  });

  test("backwards reverses graphemes", () => {
    assert.equal(reverse("abc"), "cba");
    assert.equal(reverse("noe\u0301l"), "le\u0301on");
    assert.equal(reverse("hi 👍🏽🇫🇷"), "🇫🇷👍🏽 ih");
    assert.equal(reverse(""), "");
  });

  test("robot", () => {
    assert.equal(robotize("Hello, world!"), "🤖 BEEP BOOP. HELLO · WORLD. END OF LINE. 🤖");
    assert.equal(robotize("  ?! "), "🤖 BEEP BOOP. 🤖");
    assert.equal(robotize("don't\u0085stop straße"), "🤖 BEEP BOOP. DON'T · STOP · STRASSE. END OF LINE. 🤖");
  });

  test("profanity masks whole listed words only", () => {
    assert.equal(mask("Darn it, what the heck!"), "D*** it, what the h***!");
    assert.equal(mask("class assignment"), "class assignment");
    assert.equal(mask("ass"), "a**");
    assert.equal(mask(""), "");
    assert.equal(mask("DAMN_darn3 darné"), "D***_darn3 darné");
  });

  test("associations: exact beats patterns, longest pattern wins, no accidental prefixes", () => {
    const a = parseAssociations(
      JSON.stringify({ apps: { t: { channels: { "room*": { functions: ["backwards"] }, "room-v*": { functions: ["robot"] }, room1: { functions: ["angry"] }, "*": { functions: ["emojify"] } } } } }),
      (n) => fns.has(n),
    );
    assert.deepEqual(resolve(a, "t", "room1").functions, ["angry"]);
    assert.deepEqual(resolve(a, "t", "room10").functions, ["backwards"]);
    assert.deepEqual(resolve(a, "t", "room-vip").functions, ["robot"]);
    assert.deepEqual(resolve(a, "t", "lobby").functions, ["emojify"]);
    assert.equal(resolve(a, "other", "room1"), undefined);
  });

  test("associations are validated with the place named", () => {
    const parse = (doc) => () => parseAssociations(JSON.stringify(doc), (n) => fns.has(n));
    assert.throws(parse({ apps: { "chat-demo": { channels: { angry: { functions: ["angry", "angri"] } } } } }), {
      message: 'apps.chat-demo.channels.angry.functions[1]: unknown function "angri"',
    });
    assert.throws(parse({ apps: { a: { channels: { x: { functions: [], onError: "ignore" } } } } }), /apps\.a\.channels\.x\.onError/);
    assert.throws(parse({ apps: { a: { channels: { x: { functions: [], timeoutMs: 0 } } } } }), /timeoutMs/);
    assert.throws(parse({ apps: { a: { channels: { "$status": { functions: [] } } } } }), /reserved/);
  });
});

// ---- the server as a process, with the Redis adapter and in memory ---------------------------------

const variants = [
  { name: "with the Redis adapter", redis: true },
  { name: "in memory (--redis none)", redis: false },
];

let redis = null;
before(async () => {
  if (hasRedis) redis = await startRedis();
});
after(async () => {
  if (redis) await stop(redis.child);
});

for (const variant of variants) {
  describe(`server ${variant.name}`, { skip: variant.redis && !hasRedis ? "redis-server is not installed" : false }, () => {
    let server;
    before(async () => {
      server = await startServerProcess(variant.redis ? redis.url : null);
    });
    after(async () => {
      if (server) assert.equal(await stop(server.child), 0, "SIGTERM shuts down cleanly");
    });

    test("two clients on angry both get the shouted message with seq 1", async () => {
      const a = await client(server.port, { sub: "alice" });
      const b = await client(server.port, { sub: "bob" });
      assert.deepEqual(await a.subscribe("angry"), { seq: 0 });
      assert.deepEqual(await b.subscribe("angry"), { seq: 0 });
      assert.deepEqual(await a.publish("angry", { text: "hello" }, "m1"), { seq: 1 });
      for (const c of [a, b]) {
        const [m] = await c.waitFor(1);
        assert.equal(typeof m.ts, "number");
        assert.deepEqual({ ...m, ts: 0 }, { channel: "angry", seq: 1, id: "m1", data: { text: "😡 HELLO!!! 😡" }, from: "alice", ts: 0 });
      }
      a.close();
      b.close();
    });

    test("seq increases over several publishes, ids are made up when absent, from defaults to the socket id", async () => {
      const a = await client(server.port);
      await a.subscribe("boring");
      const acks = [];
      for (let i = 0; i < 5; i++) acks.push(await a.publish("boring", { text: `n${i}` }));
      assert.deepEqual(acks.map((x) => x.seq), [1, 2, 3, 4, 5]);
      const got = await a.waitFor(5);
      assert.deepEqual(got.map((m) => m.seq), [1, 2, 3, 4, 5]);
      assert.deepEqual(got.map((m) => m.data.text), ["n0", "n1", "n2", "n3", "n4"], "no functions on boring");
      assert.match(got[0].id, /^[0-9a-f]{16}$/);
      assert.equal(got[0].from, a.socket.id);
      a.close();
    });

    test("since replays stored messages before the ack, then live ones follow", async () => {
      const a = await client(server.port, { sub: "p" });
      for (const t of ["one", "two", "three"]) await a.publish("robot", { text: t });
      const b = await client(server.port);
      const ack = await b.subscribe("robot", 1);
      assert.deepEqual(ack, { seq: 3 });
      assert.deepEqual(b.messages.map((m) => [m.seq, m.data.text]), [
        [2, "🤖 BEEP BOOP. TWO. END OF LINE. 🤖"],
        [3, "🤖 BEEP BOOP. THREE. END OF LINE. 🤖"],
      ], "replayed before the ack arrived");
      await a.publish("robot", { text: "four" });
      const got = await b.waitFor(3);
      assert.equal(got[2].seq, 4);
      const c = await client(server.port);
      assert.deepEqual(await c.subscribe("robot", 4), { seq: 4 });
      assert.deepEqual(await c.history({ channel: "robot", since: 1, limit: 2 }), { messages: got.slice(0, 2) });
      await sleep(50);
      assert.deepEqual(c.messages, [], "nothing after since");
      for (const x of [a, b, c]) x.close();
    });

    test("unsubscribe stops delivery; apps do not see each other's channels", async () => {
      const a = await client(server.port);
      const other = await client(server.port, { app: "other-app" });
      await a.subscribe("backwards");
      assert.deepEqual(await other.subscribe("backwards"), { seq: 0 });
      assert.deepEqual(await a.publish("backwards", { text: "abc" }), { seq: 1 });
      assert.deepEqual((await a.waitFor(1))[0].data, { text: "cba" });
      assert.deepEqual(await other.publish("backwards", { text: "abc" }), { seq: 1 }, "own sequence");
      assert.deepEqual((await other.waitFor(1))[0].data, { text: "abc" }, "no associations for other-app");
      assert.deepEqual(await a.unsubscribe("backwards"), {});
      await a.publish("backwards", { text: "x" });
      await sleep(50);
      assert.equal(a.messages.length, 1, "nothing after unsubscribe");
      assert.equal(other.messages.length, 1);
      a.close();
      other.close();
    });

    test("refusals are acked with Echo's error codes", async () => {
      const a = await client(server.port);
      assert.equal((await a.subscribe("no spaces")).error, "bad_request");
      assert.equal((await a.publish("angry", null)).error, "bad_request");
      assert.equal((await a.publish("angry", {}, "x".repeat(129))).error, "bad_request");
      assert.equal((await a.publish("$status", {})).error, "forbidden");
      assert.equal((await a.history({ channel: "angry", limit: 0 })).error, "bad_request");
      a.close();
    });

    test("raw Engine.IO frames, exactly as documented", async () => {
      // A fresh server, so that the session is the one README.md shows.
      const fresh = await startServerProcess(variant.redis ? redis.url : null);
      try {
        const c = raw(fresh.port, "app=chat-demo&sub=alice");
        await c.opened;
        // Engine.IO open packet, unasked.
        const open = await c.next();
        assert.match(open, /^0\{/);
        const handshake = JSON.parse(open.slice(1));
        assert.deepEqual(Object.keys(handshake), ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]);
        assert.equal(typeof handshake.sid, "string");
        assert.deepEqual(handshake.upgrades, []);
        assert.equal(handshake.pingInterval, PING_INTERVAL);
        assert.equal(handshake.pingTimeout, PING_TIMEOUT);
        assert.equal(handshake.maxPayload, 1048576);
        // Socket.IO connect to the main namespace.
        c.send("40");
        assert.match(await c.next(), /^40\{"sid":"[^"]+"\}$/);
        c.send('420["subscribe",{"channel":"angry","since":0}]');
        assert.equal(await c.next(), '430[{"seq":0}]');
        c.send('421["publish",{"channel":"angry","data":{"text":"hello"},"id":"m1"}]');
        const message = await c.next();
        const m = message.match(/^42\["message",(\{"channel":"angry","seq":1,"id":"m1","data":\{"text":"😡 HELLO!!! 😡"\},"from":"alice","ts":\d+\})\]$/);
        assert.ok(m, message);
        assert.equal(await c.next(), '431[{"seq":1}]');
        c.send('422["unsubscribe",{"channel":"angry"}]');
        assert.equal(await c.next(), '432[{}]');
        c.send('423["history",{"channel":"angry","since":0,"limit":10}]');
        assert.equal(await c.next(), `433[{"messages":[${m[1]}]}]`);
        c.send('424["publish",{"channel":"angry"}]');
        assert.equal(await c.next(), '434[{"error":"bad_request","message":"publish needs \\"data\\""}]');
        c.send('425["ping"]');
        assert.equal(await c.next(), '435[{}]');
        // Heartbeat: the server pings with "2", the client answers "3"; answered pings keep it open.
        for (let i = 0; i < 3; i++) {
          assert.equal(await c.next(PING_INTERVAL + 1000), "2");
          c.send("3");
        }
        // Still connected; unsubscribed, so only the ack comes back.
        c.send('426["publish",{"channel":"angry","data":{"text":"again"}}]');
        assert.equal(await c.next(), '436[{"seq":2}]');
        // An event without an ack id is answered by nothing but its broadcast.
        c.send('42["subscribe",{"channel":"angry","since":1}]');
        assert.match(await c.next(), /^42\["message",\{"channel":"angry","seq":2,"id":"[0-9a-f]{16}","data":\{"text":"😡 AGAIN!!! 😡"\},"from":"alice","ts":\d+\}\]$/);
        c.send("41");
        c.ws.close();
        await sleep(50);
        assert.deepEqual(c.frames.filter((f) => f !== "2"), [], "nothing else was sent");
      } finally {
        assert.equal(await stop(fresh.child), 0);
      }

      // An invalid app is refused at the Socket.IO connect.
      const refused = raw(server.port, "app=no%20spaces");
      await refused.opened;
      assert.match(await refused.next(), /^0\{/);
      refused.send("40");
      assert.equal(await refused.next(), '44{"message":"invalid app: 1 to 64 of letters, digits and _ - ."}');
      refused.ws.close();

      // A client that never answers pings is dropped after pingInterval + pingTimeout.
      const silent = raw(server.port, "");
      await silent.opened;
      await silent.next();
      silent.send("40");
      await silent.next();
      assert.equal(await silent.next(PING_INTERVAL + 1000), "2");
      const end = await silent.next(PING_TIMEOUT + 1000);
      assert.equal(end, null, "closed");
      assert.ok(silent.closed);
    });
  });
}

describe("Redis adapter across two nodes", { skip: hasRedis ? false : "redis-server is not installed" }, () => {
  test("a message published on one node reaches subscribers of the other", async () => {
    const n1 = await startServerProcess(redis.url);
    const n2 = await startServerProcess(redis.url);
    try {
      const a = await client(n1.port, { sub: "a" });
      const b = await client(n2.port, { sub: "b" });
      await a.subscribe("angry");
      await b.subscribe("angry");
      assert.deepEqual(await a.publish("angry", { text: "hello" }, "x1"), { seq: 1 });
      const [m] = await b.waitFor(1);
      assert.deepEqual({ ...m, ts: 0 }, { channel: "angry", seq: 1, id: "x1", data: { text: "😡 HELLO!!! 😡" }, from: "a", ts: 0 });
      await a.waitFor(1);
      a.close();
      b.close();
    } finally {
      assert.equal(await stop(n1.child), 0);
      assert.equal(await stop(n2.child), 0);
    }
  });
});

describe("startup", () => {
  test("an unreachable Redis fails the start with a message", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [SERVER, "--port", "0", "--redis", `redis://127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (c) => (err += c));
    const [code] = await once(child, "exit");
    assert.equal(code, 1);
    assert.match(err, /could not connect/);
  });

  test("an invalid associations file fails the start", async () => {
    const r = spawnSync(process.execPath, [SERVER, "--port", "0", "--redis", "none", "--associations", SERVER], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not valid JSON/);
  });
});

// ---- drops, failures and onError, with extra functions in-process ------------------------------------

const TEST_ASSOCIATIONS = JSON.stringify({
  apps: {
    t: {
      channels: {
        dropped: { functions: ["angry", "drop-all"] },
        silent: { functions: ["quiet-drop"] },
        "fail-reject": { functions: ["angry", "fail"] },
        "fail-pass": { functions: ["angry", "fail", "emojify"], onError: "pass" },
        "hang-reject": { functions: ["hang"], timeoutMs: 200 },
        "hang-pass": { functions: ["angry", "hang"], onError: "pass", timeoutMs: 200 },
        "slow": { functions: ["later", "emojify"] },
        "room-*": { functions: ["profanity"], onError: "pass" },
        "room-1": { functions: ["angry"] },
      },
    },
  },
});

function testFunctions() {
  const f = demoFunctions();
  f.set("drop-all", () => ({ action: "drop", reason: "not today" }));
  f.set("quiet-drop", () => ({ action: "drop" }));
  f.set("fail", () => {
    throw new Error("boom");
  });
  f.set("hang", () => new Promise(() => {}));
  f.set("later", async (input) => {
    await sleep(10);
    return { action: "continue", data: { text: `${input.message.data.text}?` } };
  });
  return f;
}

for (const variant of variants) {
  describe(`middleware ${variant.name}`, { skip: variant.redis && !hasRedis ? "redis-server is not installed" : false }, () => {
    let server;
    before(async () => {
      server = await startBaseline({ redis: variant.redis ? redis.url : null, associationsText: TEST_ASSOCIATIONS, functions: testFunctions() });
    });
    after(async () => {
      await server?.close();
    });

    test("a dropping function acks dropped and nothing is delivered or stored", async () => {
      const a = await client(server.port, { app: "t" });
      const b = await client(server.port, { app: "t" });
      await a.subscribe("dropped");
      await b.subscribe("dropped");
      assert.deepEqual(await a.publish("dropped", { text: "x" }, "d1"), { dropped: true, reason: "not today" });
      assert.deepEqual(await a.publish("silent", { text: "x" }), { dropped: true, reason: "dropped by quiet-drop" });
      await sleep(100);
      assert.deepEqual([a.messages, b.messages], [[], []]);
      assert.deepEqual(await a.history({ channel: "dropped" }), { messages: [] });
      assert.deepEqual(await a.subscribe("dropped"), { seq: 0 }, "a drop takes no seq");
      a.close();
      b.close();
    });

    test("failures follow onError", async () => {
      const a = await client(server.port, { app: "t" });
      for (const ch of ["fail-reject", "fail-pass", "hang-reject", "hang-pass", "slow"]) await a.subscribe(ch);
      assert.deepEqual(await a.publish("fail-reject", { text: "x" }), {
        error: "function_failed",
        message: "function fail failed: function failed: boom; nothing was delivered",
      });
      assert.deepEqual(await a.publish("fail-pass", { text: "x" }), { seq: 1 });
      assert.deepEqual(await a.publish("hang-reject", { text: "x" }), {
        error: "function_failed",
        message: "function hang failed: function did not answer within 200ms; nothing was delivered",
      });
      assert.deepEqual(await a.publish("hang-pass", { text: "x" }), { seq: 1 });
      assert.deepEqual(await a.publish("slow", { text: "x" }), { seq: 1 });
      const got = await a.waitFor(3);
      assert.deepEqual(got.map((m) => [m.channel, m.data]), [
        ["fail-pass", { text: "X!!!" }],
        ["hang-pass", { text: "X!!!" }],
        ["slow", { text: "😡 x? 😡" }],
      ]);
      a.close();
    });

    test("exact names beat patterns; profanity masks", async () => {
      const a = await client(server.port, { app: "t" });
      await a.subscribe("room-1");
      await a.subscribe("room-2");
      await a.publish("room-1", { text: "darn" });
      await a.publish("room-2", { text: "Darn it, what the heck!" });
      const got = await a.waitFor(2);
      assert.deepEqual(got.map((m) => m.data.text), ["DARN!!!", "D*** it, what the h***!"]);
      a.close();
    });
  });
}
