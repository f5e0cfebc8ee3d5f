// Refused frames reject the right promise with the right code; timeouts; bad tokens.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { EchoClient, EchoError } from "../echo.js";
import { sleep, startEdge, unique } from "../test-support/edge.mjs";
import { ScriptedSocket as SilentSocket } from "../test-support/scripted-socket.mjs";

const MAX_SUBSCRIPTIONS = 3;
let edge;
const clients = [];

before(async () => {
  edge = await startEdge(["--max-subscriptions", String(MAX_SUBSCRIPTIONS)]);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await edge?.stop();
});

function client(options = {}) {
  const app = options.app ?? unique("app");
  const c = new EchoClient({
    url: edge.wsUrl,
    tokenProvider: () => edge.token(app, "alice"),
    requestTimeout: 5000,
    ...options,
  });
  clients.push(c);
  return c;
}

describe("errors", { timeout: 30_000 }, () => {
  test("publishing to $status is forbidden; the error carries the publish's id", async () => {
    const c = client();
    await c.connect();
    const [refused, accepted] = await Promise.allSettled([
      c.publish("$status", { x: 1 }, { id: "p-status" }),
      c.publish("fine", { x: 2 }, { id: "p-fine" }),
    ]);
    assert.equal(refused.status, "rejected");
    assert.ok(refused.reason instanceof EchoError);
    assert.equal(refused.reason.code, "forbidden");
    assert.equal(refused.reason.id, "p-status");
    assert.equal(refused.reason.channel, "$status");
    assert.equal(accepted.status, "fulfilled");
    assert.deepEqual(accepted.value, { channel: "fine", id: "p-fine", seq: 1 });
  });

  test("subscribing to $status without an admin token is forbidden and leaves no subscription", async () => {
    const c = client();
    await c.connect();
    const results = await Promise.allSettled([c.subscribe("$status", () => {}), c.subscribe("ok", () => {})]);
    assert.equal(results[0].status, "rejected");
    assert.equal(results[0].reason.code, "forbidden");
    assert.equal(results[0].reason.channel, "$status");
    assert.deepEqual(results[1], { status: "fulfilled", value: { channel: "ok", seq: 0 } });
    assert.deepEqual(c.channels, ["ok"]);
  });

  test("a subscription the channel's onSubscribe hook denies rejects with forbidden and its reason", async () => {
    // The demo's members-only room: its `members` function lets ada, grace and linus in.
    const c = client({ app: "chat-demo" });
    await c.connect();
    await assert.rejects(
      c.subscribe("members", () => {}),
      (err) =>
        err instanceof EchoError &&
        err.code === "forbidden" &&
        err.channel === "members" &&
        err.message === "members is for members only (ada, grace, linus); alice is not one",
    );
    assert.deepEqual(c.channels, []);
  });

  test("invalid channel names and arguments are refused with bad_request before sending", async () => {
    const c = client();
    await c.connect();
    for (const p of [
      c.subscribe("bad name!", () => {}),
      c.subscribe("ok", "not a function"),
      c.publish("bad name!", 1),
      c.publish("ok", undefined),
      c.publish("ok", 1, { id: "" }),
      c.history("bad name!"),
      c.history("ok", { limit: 2000 }),
      c.subscribe("$foo", () => {}),
    ]) {
      await assert.rejects(p, (err) => err instanceof EchoError && err.code === "bad_request");
    }
    // The connection is still fine.
    assert.equal((await c.publish("ok", 1)).seq, 1);
  });

  test("a frame over the size limit is refused with too_large; the next publish still succeeds", async () => {
    const c = client();
    await c.connect();
    const [big, small] = await Promise.allSettled([c.publish("ch", "x".repeat(140_000)), c.publish("ch", "small")]);
    assert.equal(big.status, "rejected");
    assert.equal(big.reason.code, "too_large");
    assert.equal(small.status, "fulfilled");
    assert.equal(small.value.seq, 1);
  });

  test("subscribing beyond the connection's limit is refused with limit_exceeded", async () => {
    const c = client();
    await c.connect();
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) await c.subscribe(`c${i}`, () => {});
    await assert.rejects(c.subscribe("one-too-many", () => {}), { code: "limit_exceeded", channel: "one-too-many" });
    await c.unsubscribe("c0");
    assert.deepEqual(await c.subscribe("one-too-many", () => {}), { channel: "one-too-many", seq: 0 });
  });

  test("requests without an answer time out", async () => {
    const c = new EchoClient({ url: "ws://silent.invalid/", token: "t", WebSocket: SilentSocket, requestTimeout: 200 });
    clients.push(c);
    await c.connect();
    const socket = SilentSocket.all.at(-1);
    assert.match(socket.url, /^ws:\/\/silent\.invalid\/\?token=t&attempt=[\w-]{22}$/);
    const started = Date.now();
    await assert.rejects(c.publish("ch", 1), (err) => err.code === "timeout" && /may or may not/.test(err.message));
    assert.ok(Date.now() - started >= 150);
    await assert.rejects(c.ping(), { code: "timeout" });
    await assert.rejects(c.history("ch"), { code: "timeout" });
    assert.deepEqual(
      socket.sent.map((f) => f.action),
      ["publish", "ping", "history"],
    );
  });

  test("a bad token rejects connect() with unauthorized and Echo's reason, and does not retry", async () => {
    let calls = 0;
    const c = client({
      tokenProvider: async () => {
        calls += 1;
        return "not-a-jwt";
      },
      backoffBase: 10,
    });
    const states = [];
    c.on("statechange", (e) => states.push(e.state));
    await assert.rejects(
      c.connect(),
      (err) => err instanceof EchoError && err.code === "unauthorized" && err.status === 401 && /token/.test(err.message),
    );
    assert.equal(c.state, "closed");
    await sleep(200);
    assert.equal(calls, 1);
    assert.deepEqual(states, ["connecting", "closed"]);
    await assert.rejects(c.publish("ch", 1), { code: "closed" });
  });

  test("a connect the app's onConnect hook denies rejects with forbidden and the hook's reason", async () => {
    // `ticker` answers schedules only: as an onConnect hook it fails, which denies (onError
    // reject). The demo's members room stays as it was for the other tests.
    const res = await fetch(`http://127.0.0.1:${edge.managePort}/associations`, {
      method: "PUT",
      headers: { authorization: `Bearer ${await edge.manageToken()}` },
      body: JSON.stringify({
        apps: {
          "chat-demo": { channels: { members: { onSubscribe: ["members"] } } },
          gated: { onConnect: ["ticker"] },
        },
      }),
    });
    assert.equal(res.status, 200, await res.text());
    const c = client({ app: "gated" });
    await assert.rejects(
      c.connect(),
      (err) => err.code === "forbidden" && err.status === 403 && /ticker runs on a schedule/.test(err.message),
    );
    // Without the HTTP API to ask, the failure is all there is.
    const blind = client({ app: "gated", httpUrl: false });
    await assert.rejects(blind.connect(), (err) => err.code === "connect_failed" && err.status === undefined);
  });

  test("with retryInitialConnect, failed attempts back off with a fresh token each time", async () => {
    const app = unique("app");
    let calls = 0;
    const c = client({
      app,
      retryInitialConnect: true,
      backoffBase: 20,
      backoffMax: 100,
      tokenProvider: async () => {
        calls += 1;
        return calls <= 2 ? "expired-or-wrong" : edge.token(app, "alice");
      },
    });
    const retries = [];
    const errors = [];
    c.on("retry", (e) => retries.push(e));
    c.on("error", (e) => errors.push(e.code));
    await c.connect();
    assert.equal(c.state, "open");
    assert.equal(calls, 3);
    assert.deepEqual(errors, ["unauthorized", "unauthorized"]);
    assert.deepEqual(
      retries.map((r) => r.attempt),
      [1, 2],
    );
    assert.ok(retries.every((r) => r.delay >= 0 && r.delay <= 100));
  });

  test("without any WebSocket implementation the constructor explains what to do", () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, "WebSocket");
    Object.defineProperty(globalThis, "WebSocket", { value: undefined, configurable: true, writable: true });
    try {
      assert.throws(() => new EchoClient({ url: "ws://127.0.0.1:1/", token: "t" }), /no WebSocket implementation.*--experimental-websocket/);
    } finally {
      if (saved) Object.defineProperty(globalThis, "WebSocket", saved);
      else delete globalThis.WebSocket;
    }
    assert.throws(() => new EchoClient({ url: "127.0.0.1:8080", token: "t" }), /url must start with/);
    assert.throws(() => new EchoClient({ url: "ws://127.0.0.1:1/" }), /token/);
  });
});

describe("sessions", { timeout: 30_000 }, () => {
  test("a session the app ended is not reconnected", async () => {
    const app = unique("app");
    let asked = 0;
    const c = client({
      app,
      tokenProvider: () => {
        asked += 1;
        return edge.token(app, "banned");
      },
      backoffBase: 50,
    });
    const errors = [];
    const closed = new Promise((resolve) => c.on("closed", resolve));
    c.on("error", (e) => errors.push(e.code));
    await c.connect();
    const admin = await edge.token(app, "admin", { role: "admin" });
    const res = await fetch(`${edge.base}/v1/apps/${app}/users/banned/connections`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal((await res.json()).ended, 1);
    await closed;
    await sleep(500);
    assert.deepEqual(errors, ["session_ended"]);
    assert.equal(c.state, "closed");
    assert.equal(asked, 1, "no reconnect");
    await assert.rejects(c.publish("room", "still here?"), { code: "closed" });
  });
});
