// Delivery order against a scripted server that reorders, withholds and repeats messages: early
// arrivals are held for the ones before them, what does not come is read from history page by
// page, what history no longer has is a `gap` event, and nothing is handed over twice.

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { EchoClient } from "../echo.js";
import { sleep, waitFor } from "../test-support/edge.mjs";
import { ScriptedSocket } from "../test-support/scripted-socket.mjs";

const clients = [];
after(() => Promise.all(clients.map((c) => c.close())));

const msg = (seq) => ({ type: "message", channel: "room", seq, id: `m${seq}`, data: seq, from: "u", ts: 1 });
const page = (seqs, more) => ({ type: "history", channel: "room", messages: seqs.map(msg), more });

async function subscribed(options) {
  const before = ScriptedSocket.all.length;
  const c = new EchoClient({ url: "ws://scripted.invalid/", token: "t", WebSocket: ScriptedSocket, pingInterval: 0, ...options });
  clients.push(c);
  await c.connect();
  const socket = ScriptedSocket.all[before];
  const got = [];
  const gaps = [];
  c.on("gap", (g) => gaps.push(g));
  const subscribing = c.subscribe("room", (m) => got.push(m.seq));
  socket.serve({ type: "subscribed", channel: "room", seq: 0 });
  await subscribing;
  return { c, socket, got, gaps };
}

describe("delivery order", { timeout: 20_000 }, () => {
  test("reordered, withheld and repeated messages come out in order, once, gaps reported", async () => {
    const { socket, got, gaps } = await subscribed({ reorderHold: 150 });

    // 2 and 3 before 1, within the hold: no history needed.
    socket.serve(msg(2), msg(3));
    assert.deepEqual(got, []);
    await sleep(50);
    socket.serve(msg(1));
    assert.deepEqual(got, [1, 2, 3]);
    await sleep(250);
    assert.equal(socket.frames("history").length, 0, "nothing was asked of history");

    // 5 without 4: once the hold runs out, history fills it.
    socket.serve(msg(5));
    await waitFor(() => socket.frames("history").length === 1, "a history request");
    assert.equal(socket.frames("history")[0].since, 3);
    socket.serve(page([4, 5], false));
    assert.deepEqual(got, [1, 2, 3, 4, 5]);

    // 8 without 6 and 7; history has 7 but no longer 6.
    socket.serve(msg(8));
    await waitFor(() => socket.frames("history").length === 2, "a second history request");
    assert.equal(socket.frames("history")[1].since, 5);
    socket.serve(page([7, 8], false));
    // A repeat (a retried fan-out) is dropped.
    socket.serve(msg(8), msg(9));
    assert.deepEqual(got, [1, 2, 3, 4, 5, 7, 8, 9]);
    assert.deepEqual(gaps, [{ channel: "room", from: 6, to: 6 }]);
  });

  test("a gap is filled page by page, following more", async () => {
    const { socket, got, gaps } = await subscribed({ reorderHold: 20 });
    socket.serve(msg(4));
    await waitFor(() => socket.frames("history").length === 1, "a history request");
    assert.equal(socket.frames("history")[0].since, 0);
    socket.serve(page([1, 2], true));
    await waitFor(() => socket.frames("history").length === 2, "the next page");
    assert.equal(socket.frames("history")[1].since, 2);
    // Live messages that come meanwhile wait their turn.
    socket.serve(msg(5));
    socket.serve(page([3, 4], false));
    assert.deepEqual(got, [1, 2, 3, 4, 5]);
    assert.deepEqual(gaps, []);
  });

  test("a replay that stops short of the latest seq is continued from history", async () => {
    const before = ScriptedSocket.all.length;
    const c = new EchoClient({ url: "ws://scripted.invalid/", token: "t", WebSocket: ScriptedSocket, pingInterval: 0 });
    clients.push(c);
    await c.connect();
    const socket = ScriptedSocket.all[before];
    const got = [];
    const subscribing = c.subscribe("room", (m) => got.push(m.seq), { since: 0 });
    socket.serve({ type: "subscribed", channel: "room", seq: 4, replayTo: 2 }, msg(1), msg(2));
    await subscribing;
    await waitFor(() => socket.frames("history").length === 1, "a history request");
    socket.serve(page([1, 2, 3, 4], false));
    assert.deepEqual(got, [1, 2, 3, 4]);
  });

  test("publishes are numbered per connection and channel with order", async () => {
    const { c, socket } = await subscribed({});
    const acks = [c.publish("room", 1, { id: "a" }), c.publish("room", 2, { id: "b" }), c.publish("other", 3, { id: "c" })];
    const sent = socket.sent.filter((f) => f.action === "publish").map((f) => [f.channel, f.order]);
    assert.deepEqual(sent, [
      ["room", 1],
      ["room", 2],
      ["other", 1],
    ]);
    socket.serve(
      { type: "ack", id: "a", channel: "room", seq: 1 },
      { type: "ack", id: "b", channel: "room", seq: 2 },
      { type: "ack", id: "c", channel: "other", seq: 1 },
    );
    await Promise.all(acks);
  });
});
