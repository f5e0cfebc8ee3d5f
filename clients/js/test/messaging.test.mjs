// Publish, subscribe, history and ping against a real edge.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { EchoClient } from "../echo.js";
import { startEdge, unique, waitFor } from "../test-support/edge.mjs";

let edge;
const clients = [];

before(async () => {
  edge = await startEdge();
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await edge?.stop();
});

function client(app, sub, options = {}) {
  const c = new EchoClient({
    url: edge.wsUrl,
    tokenProvider: () => edge.token(app, sub),
    requestTimeout: 5000,
    ...options,
  });
  clients.push(c);
  return c;
}

/** Subscribes and collects what the handler gets. */
async function collect(c, channel, options) {
  const got = [];
  const info = await c.subscribe(channel, (m) => got.push(m), options);
  return { got, info };
}

describe("messaging", { timeout: 30_000 }, () => {
  test("a publish reaches every subscriber and resolves with its seq", async () => {
    const app = unique("app");
    const alice = client(app, "alice");
    const bob = client(app, "bob");
    const states = [];
    alice.on("statechange", (e) => states.push(e.state));
    await Promise.all([alice.connect(), bob.connect()]);
    assert.equal(alice.state, "open");
    assert.deepEqual(states, ["connecting", "open"]);

    const a = await collect(alice, "room");
    const b = await collect(bob, "room");
    assert.deepEqual(a.info, { channel: "room", seq: 0 });

    const ack = await alice.publish("room", { text: "hi" }, { id: "m1" });
    assert.deepEqual(ack, { channel: "room", id: "m1", seq: 1 });
    await waitFor(() => a.got.length === 1 && b.got.length === 1, "both subscribers to get the message");
    const m = b.got[0];
    assert.equal(typeof m.ts, "number");
    assert.deepEqual({ ...m, ts: 0 }, { channel: "room", seq: 1, id: "m1", data: { text: "hi" }, from: "alice", ts: 0 });
    assert.deepEqual(a.got, b.got);

    // Without an id, the client makes one up and the ack carries it.
    const ack2 = await bob.publish("room", [1, 2, 3]);
    assert.match(ack2.id, /^[0-9a-f]{16}$/);
    assert.equal(ack2.seq, 2);
    await waitFor(() => a.got.length === 2, "the second message");
    assert.deepEqual(a.got[1].data, [1, 2, 3]);
    assert.equal(a.got[1].id, ack2.id);
    assert.equal(alice.lastSeq("room"), 2);
  });

  test("the angry channel delivers the transformed text", async () => {
    const alice = client("chat-demo", "alice");
    const bob = client("chat-demo", "bob");
    await Promise.all([alice.connect(), bob.connect()]);
    const b = await collect(bob, "angry");
    const ack = await alice.publish("angry", { text: "hello" });
    await waitFor(() => b.got.some((m) => m.seq === ack.seq), "the angry message");
    assert.equal(b.got.find((m) => m.seq === ack.seq).data.text, "😡 HELLO!!! 😡");
  });

  test("subscribe with since replays stored messages, then live ones, in order", async () => {
    const app = unique("app");
    const alice = client(app, "alice");
    await alice.connect();
    for (let i = 1; i <= 5; i++) await alice.publish("log", { i });

    const bob = client(app, "bob");
    await bob.connect();
    const b = await collect(bob, "log", { since: 2 });
    assert.deepEqual(b.info, { channel: "log", seq: 5 });
    await alice.publish("log", { i: 6 });
    await waitFor(() => b.got.length === 4, "4 messages");
    assert.deepEqual(
      b.got.map((m) => [m.seq, m.data.i]),
      [
        [3, 3],
        [4, 4],
        [5, 5],
        [6, 6],
      ],
    );
  });

  test("subscribe with since pages past the replay limit without gaps or repeats", async () => {
    const app = unique("app");
    const alice = client(app, "alice");
    await alice.connect();
    const stored = 1250;
    const acks = await Promise.all(Array.from({ length: stored }, (_, i) => alice.publish("big", i)));
    assert.deepEqual(
      acks.map((a) => a.seq),
      Array.from({ length: stored }, (_, i) => i + 1),
    );

    const bob = client(app, "bob");
    await bob.connect();
    const got = [];
    const subscribed = bob.subscribe("big", (m) => got.push(m), { since: 0 });
    // Live messages published while the catch-up is under way.
    const live = await Promise.all([alice.publish("big", "live-1"), alice.publish("big", "live-2")]);
    await subscribed;
    const total = live[1].seq;
    await waitFor(() => got.length >= total, `${total} messages`, 15_000);
    assert.equal(got.length, total);
    assert.deepEqual(
      got.map((m) => m.seq),
      Array.from({ length: total }, (_, i) => i + 1),
    );
    assert.equal(got[0].data, 0);
    assert.equal(got[stored - 1].data, stored - 1);
    assert.deepEqual(got.slice(stored).map((m) => m.data).sort(), ["live-1", "live-2"]);
  });

  test("history returns stored messages; ping answers", async () => {
    const app = unique("app");
    const alice = client(app, "alice");
    await alice.connect();
    for (let i = 1; i <= 4; i++) await alice.publish("h", `m${i}`, { id: `id${i}` });
    const page = await alice.history("h", { since: 1, limit: 2 });
    assert.deepEqual(
      page.messages.map((m) => [m.channel, m.seq, m.id, m.data, m.from]),
      [
        ["h", 2, "id2", "m2", "alice"],
        ["h", 3, "id3", "m3", "alice"],
      ],
    );
    assert.equal(page.more, true);
    assert.deepEqual(await alice.history("h", { since: 4 }), { channel: "h", messages: [], more: false });
    const rtt = await alice.ping();
    assert.equal(typeof rtt, "number");
    assert.ok(rtt >= 0);
  });

  test("after unsubscribe the handler gets nothing more", async () => {
    const app = unique("app");
    const alice = client(app, "alice");
    const bob = client(app, "bob");
    await Promise.all([alice.connect(), bob.connect()]);
    const b = await collect(bob, "room");
    await alice.publish("room", 1);
    await waitFor(() => b.got.length === 1, "the first message");
    await bob.unsubscribe("room");
    assert.deepEqual(bob.channels, []);
    await alice.publish("room", 2);
    // Frames are answered in order: once the pong is back, a message sent before it would be too.
    await bob.ping();
    await alice.ping();
    await bob.ping();
    assert.deepEqual(
      b.got.map((m) => m.data),
      [1],
    );
  });

  test("subscriptions made before connect() are sent once open", async () => {
    const app = unique("app");
    const alice = client(app, "alice");
    const got = [];
    const subscribed = alice.subscribe("early", (m) => got.push(m.data));
    assert.equal(alice.state, "closed");
    await alice.connect();
    assert.deepEqual(await subscribed, { channel: "early", seq: 0 });
    await alice.publish("early", "x");
    await waitFor(() => got.length === 1, "the message");
    assert.deepEqual(got, ["x"]);
  });
});
