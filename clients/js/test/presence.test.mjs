// Presence: the member list a presence subscription keeps, join and leave events, the list kept
// across a reconnect (against a real edge), and events that arrive out of order (against a
// scripted server).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EchoClient } from "../echo.js";
import { sleep, startProxy, unique, waitFor } from "../test-support/edge.mjs";
import { ScriptedSocket } from "../test-support/scripted-socket.mjs";
import { sharedEdge } from "../test-support/shared-edge.mjs";

const shared = sharedEdge();
const client = (app, sub, options) => shared.client(app, sub, options);

/** Records the join and leave events of `c`. */
function events(c) {
  const seen = [];
  c.on("join", (e) => seen.push(`join ${e.sub}${e.resync ? " (resync)" : ""}`));
  c.on("leave", (e) => seen.push(`leave ${e.sub}${e.resync ? " (resync)" : ""}`));
  return seen;
}

const subs = (members) => members?.map((m) => `${m.sub}:${m.connections}`);

describe("presence", { timeout: 30_000 }, () => {
  test("the member list follows joins and leaves of users, not connections", async () => {
    const app = unique("app");
    const watcher = client(app, "watcher");
    const seen = events(watcher);
    await watcher.connect();
    await watcher.subscribe("room", () => {}, { presence: true });
    await waitFor(() => watcher.members("room")?.length === 1, "the first list");
    assert.deepEqual(subs(watcher.members("room")), ["watcher:1"]);
    assert.deepEqual(seen, ["join watcher (resync)"], "the first list tells who is there");
    assert.equal(watcher.members("elsewhere"), undefined);
    seen.length = 0;

    const alice = client(app, "alice");
    const phone = client(app, "alice");
    await Promise.all([alice.connect(), phone.connect()]);
    await alice.subscribe("room", () => {});
    await waitFor(() => seen.includes("join alice"), "alice's join");
    await phone.subscribe("room", () => {});
    await sleep(200);
    assert.deepEqual(seen, ["join alice"], "a second connection is no second join");
    const list = await watcher.presence("room");
    assert.deepEqual(subs(list.members), ["alice:2", "watcher:1"]);
    assert.ok(Number.isInteger(list.seq) && list.seq >= 2, `${list.seq}`);

    await alice.close();
    await sleep(200);
    assert.deepEqual(seen, ["join alice"]);
    await phone.unsubscribe("room");
    await waitFor(() => seen.includes("leave alice"), "alice's leave");
    assert.deepEqual(subs(watcher.members("room")), ["watcher:1"]);

    // A plain subscriber hears nothing of it.
    const plain = client(app, "plain");
    const quiet = events(plain);
    await plain.connect();
    await plain.subscribe("room", () => {});
    await phone.subscribe("room", () => {});
    await waitFor(() => seen.filter((e) => e === "join alice").length === 2, "alice again");
    assert.deepEqual(quiet, []);
    assert.equal(plain.members("room"), undefined);
  });

  test("presence needs permission to subscribe", async () => {
    const app = unique("app");
    const c = client(app, "c");
    await c.connect();
    await assert.rejects(c.presence("$status"), (e) => e.code === "forbidden");
    await assert.rejects(c.presence("no spaces"), (e) => e.code === "bad_request");
    await assert.rejects(c.subscribe("room", () => {}, { presence: "yes" }), (e) => e.code === "bad_request");
    const idle = client(app, "idle");
    await assert.rejects(idle.presence("room"), (e) => e.code === "closed", "a client never connected");
  });

  test("the list is kept across a reconnect: who came and went meanwhile is told", async () => {
    const app = unique("app");
    const proxy = await startProxy(shared.edge.port);
    try {
      const watcher = client(app, "watcher", { url: proxy.url });
      const seen = events(watcher);
      const bob = client(app, "bob");
      await Promise.all([watcher.connect(), bob.connect()]);
      await bob.subscribe("room", () => {});
      await watcher.subscribe("room", () => {}, { presence: true });
      await waitFor(() => subs(watcher.members("room"))?.join() === "bob:1,watcher:1", "the list");

      await proxy.sever();
      await bob.close();
      const carol = client(app, "carol");
      await carol.connect();
      await carol.subscribe("room", () => {});
      await proxy.restore();
      await waitFor(() => seen.includes("join carol (resync)"), "carol, after the reconnect");
      assert.ok(seen.includes("leave bob (resync)"), seen.join());
      await waitFor(() => subs(watcher.members("room"))?.join() === "carol:1,watcher:1", "the list");
    } finally {
      await proxy.stop();
    }
  });
});

describe("presence order", { timeout: 20_000 }, () => {
  const ev = (type, seq, sub) => ({ type, channel: "room", sub, ts: 1, seq });
  const list = (seq, members, more = false) => ({ type: "presence", channel: "room", members, seq, more });

  test("events are applied in seq order; a gap is closed by reading the list again", async () => {
    const before = ScriptedSocket.all.length;
    const c = shared.track(
      new EchoClient({ url: "ws://scripted.invalid/", token: "t", WebSocket: ScriptedSocket, pingInterval: 0, reorderHold: 100 }),
    );
    const seen = events(c);
    await c.connect();
    const socket = ScriptedSocket.all[before];
    const subscribing = c.subscribe("room", () => {}, { presence: true });
    assert.equal(socket.last("subscribe").presence, true);
    socket.serve({ type: "subscribed", channel: "room", seq: 0 });
    await subscribing;
    // The list comes in two pages; an event that comes meanwhile waits for it.
    await waitFor(() => socket.frames("presence").length === 1, "the list's first page");
    socket.serve(list(4, [{ sub: "a", connections: 1 }], true));
    await waitFor(() => socket.frames("presence").length === 2, "the second page");
    assert.equal(socket.last("presence").after, "a");
    socket.serve(ev("join", 5, "c"));
    socket.serve(list(4, [{ sub: "b", connections: 2 }]));
    assert.deepEqual(subs(c.members("room")), ["a:1", "b:2", "c:1"]);
    assert.deepEqual(seen, ["join a (resync)", "join b (resync)", "join c"]);

    // 7 before 6: held, then both in order. A repeat is dropped.
    socket.serve(ev("leave", 7, "a"));
    assert.equal(seen.length, 3);
    socket.serve(ev("join", 6, "d"), ev("join", 6, "d"));
    assert.deepEqual(seen.slice(3), ["join d", "leave a"]);

    // 9 without 8: after the hold, the list is read again and compared.
    socket.serve(ev("join", 9, "e"));
    await waitFor(() => socket.frames("presence").length === 3, "the list read again");
    socket.serve(list(9, [{ sub: "b", connections: 1 }, { sub: "e", connections: 1 }]));
    assert.deepEqual(subs(c.members("room")), ["b:1", "e:1"]);
    assert.deepEqual(seen.slice(5).sort(), ["join e (resync)", "leave c (resync)", "leave d (resync)"]);
  });
});
