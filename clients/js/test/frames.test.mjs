// The client against a scripted WebSocket: answer matching, de-duplication by seq, handler
// failures and make-before-break renewal, with the server's frames chosen by the test.

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { EchoClient } from "../echo.js";
import { waitFor } from "../test-support/edge.mjs";
import { ScriptedSocket } from "../test-support/scripted-socket.mjs";

const clients = [];
after(() => Promise.all(clients.map((c) => c.close())));

function scripted(options = {}) {
  const before = ScriptedSocket.all.length;
  const c = new EchoClient({ url: "ws://scripted.invalid/", token: "t", WebSocket: ScriptedSocket, pingInterval: 0, ...options });
  clients.push(c);
  const socket = (i = 0) => ScriptedSocket.all[before + i];
  return { c, socket };
}

const msg = (channel, seq, data = seq) => ({ type: "message", channel, seq, id: `m${seq}`, data, from: "u", ts: 1 });

describe("frames", { timeout: 20_000 }, () => {
  test("messages at or below the last seq seen are dropped", async () => {
    const { c, socket } = scripted();
    await c.connect();
    const got = [];
    const subscribed = c.subscribe("a", (m) => got.push(m.seq));
    socket().serve({ type: "subscribed", channel: "a", seq: 0 });
    await subscribed;
    socket().serve(msg("a", 1), msg("a", 2), msg("a", 2), msg("a", 1), msg("a", 3), msg("b", 4));
    assert.deepEqual(got, [1, 2, 3]);
    assert.equal(c.lastSeq("a"), 3);
    await c.close();
  });

  test("answers go to the request they answer", async () => {
    const { c, socket } = scripted();
    await c.connect();
    const subA = c.subscribe("a", () => {});
    const histA = c.history("a", { since: 0, limit: 5 });
    const subB = c.subscribe("b", () => {});
    const pub1 = c.publish("a", 1, { id: "p1" });
    const pub2 = c.publish("a", 2, { id: "p2" });
    assert.deepEqual(
      socket().sent.map((f) => f.action),
      ["subscribe", "history", "subscribe", "publish", "publish"],
    );
    // Refusals name the channel (subscribe) or the id (publish); an ack names its id.
    socket().serve(
      { type: "error", code: "forbidden", message: "no", channel: "b" },
      { type: "ack", id: "p2", channel: "a", seq: 8 },
      { type: "error", code: "function_failed", message: "boom", id: "p1", channel: "a" },
      { type: "subscribed", channel: "a", seq: 7 },
      { type: "history", channel: "a", messages: [{ channel: "a", seq: 1, id: "x", data: "d", from: "u", ts: 2 }] },
    );
    await assert.rejects(subB, { code: "forbidden", channel: "b" });
    assert.deepEqual(await pub2, { channel: "a", id: "p2", seq: 8 });
    await assert.rejects(pub1, { code: "function_failed", id: "p1" });
    assert.deepEqual(await subA, { channel: "a", seq: 7 });
    assert.deepEqual(await histA, {
      channel: "a",
      messages: [{ channel: "a", seq: 1, id: "x", data: "d", from: "u", ts: 2 }],
      more: false,
    });

    // A drop by a function resolves; an error naming neither id nor channel answers the oldest request.
    const dropped = c.publish("a", 3, { id: "p3" });
    const ping = c.ping();
    socket().serve({ type: "ack", id: "p3", channel: "a", dropped: true, reason: "spam" });
    assert.deepEqual(await dropped, { channel: "a", id: "p3", dropped: true, reason: "spam" });
    socket().serve({ type: "error", code: "too_large", message: "frame is too big" });
    await assert.rejects(ping, { code: "too_large" });
    await c.close();
  });

  test("a throwing handler is reported as an error event and later messages still arrive", async () => {
    const { c, socket } = scripted();
    const errors = [];
    c.on("error", (e) => errors.push(e));
    await c.connect();
    const got = [];
    const subscribed = c.subscribe("a", (m) => {
      if (m.seq === 1) throw new Error("bad handler");
      got.push(m.seq);
    });
    socket().serve({ type: "subscribed", channel: "a", seq: 0 });
    await subscribed;
    socket().serve(msg("a", 1), msg("a", 2));
    assert.deepEqual(got, [2]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, "handler_failed");
    assert.equal(errors[0].cause.message, "bad handler");
    await c.close();
  });

  test("renew() opens the new connection and resubscribes with since before closing the old one", async () => {
    const { c, socket } = scripted();
    await c.connect();
    const got = [];
    const subscribed = c.subscribe("a", (m) => got.push(m.seq));
    socket(0).serve({ type: "subscribed", channel: "a", seq: 3 });
    await subscribed;
    socket(0).serve(msg("a", 4));

    const renewed = c.renew();
    await waitFor(() => socket(1)?.last("subscribe"), "the new connection's subscribe");
    assert.deepEqual(socket(1).last("subscribe"), { action: "subscribe", channel: "a", since: 4 });
    // Until the new connection is subscribed, requests still use the old one, which still delivers.
    const pub = c.publish("a", "x", { id: "p" });
    assert.equal(socket(0).last("publish").id, "p");
    socket(0).serve(msg("a", 5));
    // The new connection replays from 4 (5 again) and continues.
    socket(1).serve({ type: "subscribed", channel: "a", seq: 5 }, msg("a", 5), msg("a", 6));
    await renewed;
    assert.equal(socket(0).closedWith, null, "the old connection waits for its pending publish");
    socket(0).serve(msg("a", 6), { type: "ack", id: "p", channel: "a", seq: 7 }, msg("a", 7));
    assert.deepEqual(await pub, { channel: "a", id: "p", seq: 7 });
    await waitFor(() => socket(0).closedWith, "the old connection to close");
    assert.equal(socket(0).closedWith.code, 1000);
    socket(1).serve(msg("a", 7), msg("a", 8));
    assert.deepEqual(got, [4, 5, 6, 7, 8]);
    assert.equal(c.state, "open");

    c.publish("a", "y", { id: "q" }).catch(() => {});
    assert.equal(socket(1).last("publish").id, "q");
    await c.close();
  });
});
