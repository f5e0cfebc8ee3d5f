// Network drops, reconnecting with `since`, queued and interrupted publishes (sent again with
// their ids), and closes that must not be followed by a reconnect.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { EchoClient } from "../echo.js";
import { sleep, startEdge, startProxy, unique, waitFor } from "../test-support/edge.mjs";

let edge;
const clients = [];
const proxies = [];

before(async () => {
  edge = await startEdge();
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(proxies.map((p) => p.stop()));
  await edge?.stop();
});

function client(app, sub, options = {}) {
  const c = new EchoClient({
    url: edge.wsUrl,
    tokenProvider: () => edge.token(app, sub),
    requestTimeout: 5000,
    backoffBase: 50,
    backoffMax: 300,
    ...options,
  });
  clients.push(c);
  return c;
}

async function proxy() {
  const p = await startProxy(edge.port);
  proxies.push(p);
  return p;
}

function recordStates(c) {
  const states = [];
  c.on("statechange", (e) => states.push(e.state));
  return states;
}

describe("reconnecting", { timeout: 30_000 }, () => {
  test("after a network drop the client resubscribes with since: every message once, in order", async () => {
    const app = unique("app");
    const p = await proxy();
    let tokens = 0;
    const alice = client(app, "alice", {
      url: p.url,
      tokenProvider: () => {
        tokens += 1;
        return edge.token(app, "alice");
      },
    });
    const bob = client(app, "bob");
    const states = recordStates(alice);
    const retries = [];
    const reconnecting = [];
    alice.on("retry", (r) => retries.push(r));
    alice.on("reconnecting", (e) => reconnecting.push(e));
    await Promise.all([alice.connect(), bob.connect()]);

    const got = [];
    await alice.subscribe("feed", (m) => got.push(m));
    for (let i = 0; i < 3; i++) await bob.publish("feed", `before-${i}`);
    await waitFor(() => got.length === 3, "the messages before the drop");

    // Sever the network and refuse new connections until the client has failed a few attempts.
    await p.sever();
    await waitFor(() => alice.state === "reconnecting", "the client to notice the drop");
    const N = 25;
    for (let i = 0; i < N; i++) await bob.publish("feed", `away-${i}`);
    await waitFor(() => retries.length >= 3, "three reconnect attempts while the proxy refuses connections");
    assert.equal(got.length, 3, "nothing can arrive while the network is down");
    await p.restore();

    await waitFor(() => alice.state === "open", "the client to reconnect");
    await bob.publish("feed", "after");
    await waitFor(() => got.length >= 3 + N + 1, "every message", 10_000);
    await alice.ping();

    const expected = [
      ...Array.from({ length: 3 }, (_, i) => `before-${i}`),
      ...Array.from({ length: N }, (_, i) => `away-${i}`),
      "after",
    ];
    assert.deepEqual(
      got.map((m) => m.data),
      expected,
    );
    assert.deepEqual(
      got.map((m) => m.seq),
      expected.map((_, i) => i + 1),
    );
    assert.deepEqual(states, ["connecting", "open", "reconnecting", "open"]);
    assert.equal(reconnecting[0].code, 1006);
    assert.ok(retries.every((r) => r.delay <= 300), "backoff stays under backoffMax");
    assert.ok(tokens >= retries.length, `a fresh token per attempt (${tokens} tokens, ${retries.length} retries)`);
  });

  test("a publish in flight when the connection drops is sent again and stored once; one made while away is sent after", async () => {
    const app = unique("app");
    const p = await proxy();
    const alice = client(app, "alice", { url: p.url });
    const bob = client(app, "bob");
    await Promise.all([alice.connect(), bob.connect()]);
    const seen = [];
    await bob.subscribe("q", (m) => seen.push(m.data));

    // Whether or not it reached Echo before the drop, it is stored once.
    const inFlight = alice.publish("q", "in-flight");
    await p.sever();
    await waitFor(() => alice.state === "reconnecting", "the drop to be noticed");
    const queued = alice.publish("q", "queued");
    await sleep(100);
    await p.restore();
    const [first, ack] = await Promise.all([inFlight, queued]);
    assert.equal(first.seq, 1);
    assert.equal(ack.seq, 2);
    await waitFor(() => seen.includes("queued"), "the queued message to be delivered");
    await sleep(200);
    assert.deepEqual(seen, ["in-flight", "queued"]);
  });

  test("a publish whose ack was lost is sent again with its id and settles once, with the first seq", async () => {
    const app = unique("app");
    const p = await proxy();
    const alice = client(app, "alice", { url: p.url });
    const bob = client(app, "bob");
    await Promise.all([alice.connect(), bob.connect()]);
    const seen = [];
    await bob.subscribe("q", (m) => seen.push(m.data));
    await alice.publish("q", "warm");

    p.mute();
    let settled = 0;
    const once = alice.publish("q", "once", { id: "order-7" }).finally(() => (settled += 1));
    await waitFor(() => seen.includes("once"), "the publish to be stored and delivered");
    await p.sever();
    await waitFor(() => alice.state === "reconnecting", "the drop to be noticed");
    await p.restore();
    assert.deepEqual(await once, { channel: "q", id: "order-7", seq: 2, duplicate: true });
    await sleep(300);
    assert.deepEqual(seen, ["warm", "once"], "delivered once");
    assert.equal(settled, 1);
    const page = await bob.history("q");
    assert.deepEqual(page.messages.map((m) => m.id).slice(1), ["order-7"], "stored once");
  });

  test("with resendWithin 0 a publish in flight when the connection drops rejects with disconnected", async () => {
    const app = unique("app");
    const p = await proxy();
    const alice = client(app, "alice", { url: p.url, resendWithin: 0 });
    await alice.connect();
    p.mute();
    const inFlight = alice.publish("q", "in-flight");
    await sleep(100);
    await p.sever();
    await assert.rejects(inFlight, (err) => err.code === "disconnected" && /may or may not/.test(err.message));
  });

  test("the publish queue is bounded", async () => {
    const app = unique("app");
    const p = await proxy();
    const alice = client(app, "alice", { url: p.url, maxQueuedPublishes: 2 });
    await alice.connect();
    await p.sever();
    await waitFor(() => alice.state === "reconnecting", "the drop to be noticed");
    const first = alice.publish("q", 1);
    const second = alice.publish("q", 2);
    await assert.rejects(alice.publish("q", 3), { code: "queue_full" });
    await p.restore();
    assert.deepEqual(
      (await Promise.all([first, second])).map((a) => a.seq),
      [1, 2],
    );
  });

  test("close() stops reconnecting", async () => {
    const app = unique("app");
    const p = await proxy();
    const alice = client(app, "alice", { url: p.url });
    const states = recordStates(alice);
    await alice.connect();
    await p.sever();
    await waitFor(() => alice.state === "reconnecting", "the drop to be noticed");
    await alice.close();
    await p.restore();
    const accepted = p.accepted;
    await sleep(600);
    assert.equal(p.accepted, accepted, "no connection attempt after close()");
    assert.equal(alice.state, "closed");
    assert.deepEqual(states, ["connecting", "open", "reconnecting", "closed"]);
    await assert.rejects(alice.publish("q", 1), { code: "closed" });

    // An open client closed by its user does not come back either.
    const bob = client(app, "bob", { url: p.url });
    await bob.connect();
    const before = p.accepted;
    await bob.close();
    await sleep(300);
    assert.equal(bob.state, "closed");
    assert.equal(p.accepted, before);
  });

  test("a connection closed through the management API (4500) is not reopened", async () => {
    const app = unique("app");
    const admin = client(app, "admin", { tokenProvider: () => edge.token(app, "admin", { role: "admin" }) });
    await admin.connect();
    const presence = [];
    await admin.subscribe("$status", (m) => presence.push(m.data));

    async function connectionIdOf(user) {
      await waitFor(() => presence.some((e) => e.event === "connected" && e.user === user), `${user}'s presence event`);
      return presence.findLast((e) => e.event === "connected" && e.user === user).connectionId;
    }

    const victim = client(app, "victim");
    const closed = new Promise((resolve) => victim.once("closed", resolve));
    await victim.connect();
    const res = await edge.manage("DELETE", `/@connections/${encodeURIComponent(await connectionIdOf("victim"))}`);
    assert.equal(res.status, 204);
    const detail = await closed;
    assert.equal(detail.code, 4500);
    await sleep(300);
    assert.equal(victim.state, "closed");

    // Unless the app asks for it.
    const stubborn = client(app, "stubborn", { noReconnectCodes: [] });
    const states = recordStates(stubborn);
    await stubborn.connect();
    const res2 = await edge.manage("DELETE", `/@connections/${encodeURIComponent(await connectionIdOf("stubborn"))}`);
    assert.equal(res2.status, 204);
    await waitFor(() => states.length === 4, "a reconnect");
    assert.deepEqual(states, ["connecting", "open", "reconnecting", "open"]);
  });
});
