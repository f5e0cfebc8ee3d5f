// Connection lifetime: the maximum connection age (renewed make-before-break, or reconnected
// after the edge closes with 1001) and the idle timeout (kept off by pings).

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { EchoClient } from "../echo.js";
import { sleep, startEdge, unique, waitFor } from "../test-support/edge.mjs";

const edges = [];
const clients = [];

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(edges.map((e) => e.stop()));
});

async function edgeWith(args) {
  const e = await startEdge(args);
  edges.push(e);
  return e;
}

function client(edge, app, sub, options = {}) {
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

function record(c) {
  const log = { states: [], reconnecting: [], renewed: 0 };
  c.on("statechange", (e) => log.states.push(e.state));
  c.on("reconnecting", (e) => log.reconnecting.push(e));
  c.on("renewed", () => (log.renewed += 1));
  return log;
}

/** Every stored message of `channel`, paging history. */
async function stored(c, channel) {
  const all = [];
  for (;;) {
    const page = await c.history(channel, { since: all.at(-1)?.seq ?? 0, limit: 1000 });
    all.push(...page.messages);
    if (!page.more) return all;
  }
}

describe("connection lifetime", { timeout: 40_000 }, () => {
  test("at the maximum connection age nothing is lost: renewed ahead of time, or reconnected after 1001", async () => {
    const edge = await edgeWith(["--max-connection-age", "3s"]);
    const app = unique("app");
    const renewing = { maxConnectionAge: 3000, renewBefore: 1000 };
    // Knows the maximum age: replaces its connection before the edge closes it.
    const alice = client(edge, app, "alice", renewing);
    // Assumes the default 2 h: the edge closes it with 1001 and it reconnects.
    const carol = client(edge, app, "carol");
    const bob = client(edge, app, "bob", renewing);
    const aliceLog = record(alice);
    const carolLog = record(carol);
    const bobLog = record(bob);
    await Promise.all([alice.connect(), carol.connect(), bob.connect()]);
    const gotAlice = [];
    const gotCarol = [];
    await alice.subscribe("ticks", (m) => gotAlice.push(m.seq));
    await carol.subscribe("ticks", (m) => gotCarol.push(m.seq));

    // Publish steadily across two renewals (~2 s and ~4 s) and the edge's 3 s and 6 s cut-offs.
    let failed = 0;
    const until = Date.now() + 6500;
    for (let i = 0; Date.now() < until; i++) {
      await bob.publish("ticks", i).catch(() => (failed += 1));
      await sleep(2);
    }
    await waitFor(() => alice.state === "open" && carol.state === "open", "both to be connected");
    const all = (await stored(bob, "ticks")).map((m) => m.seq);
    await waitFor(() => gotAlice.length >= all.length && gotCarol.length >= all.length, "every stored message");
    await bob.ping();

    assert.ok(all.length > 50, `only ${all.length} messages were published`);
    assert.deepEqual(gotAlice, all, "alice got every stored message once, in order");
    assert.deepEqual(gotCarol, all, "carol got every stored message once, in order");

    assert.ok(aliceLog.renewed >= 2, `alice renewed ${aliceLog.renewed} times`);
    assert.deepEqual(aliceLog.states, ["connecting", "open"], "renewals are invisible: no reconnecting");
    assert.ok(bobLog.renewed >= 2);
    assert.equal(failed, 0, "no publish failed across the renewals");

    assert.ok(carolLog.reconnecting.length >= 2, `carol reconnected ${carolLog.reconnecting.length} times`);
    assert.equal(carolLog.reconnecting[0].code, 1001);
    assert.match(carolLog.reconnecting[0].reason, /maximum age/);
    assert.equal(carolLog.renewed, 0);
  });

  test("pings keep an idle connection open past the idle timeout", async () => {
    const edge = await edgeWith(["--idle-timeout", "1s"]);
    const app = unique("app");
    const alice = client(edge, app, "alice", { pingInterval: 300 });
    const quiet = client(edge, app, "quiet", { pingInterval: 0 });
    const aliceLog = record(alice);
    const quietLog = record(quiet);
    await Promise.all([alice.connect(), quiet.connect()]);
    const got = [];
    await alice.subscribe("room", (m) => got.push(m.data));

    await sleep(2800);
    assert.deepEqual(aliceLog.states, ["connecting", "open"], "alice stayed connected");
    // Without pings the edge closes the connection (1001, idle timeout) and the client reconnects.
    assert.ok(quietLog.reconnecting.length >= 1, "the client without pings was closed for idling");
    assert.equal(quietLog.reconnecting[0].code, 1001);
    assert.match(quietLog.reconnecting[0].reason, /idle/);

    const bob = client(edge, app, "bob");
    await bob.connect();
    await bob.publish("room", "still here?");
    await waitFor(() => got.length === 1, "the message");
    assert.deepEqual(got, ["still here?"]);
  });

  test("tokens shorter than the session are refreshed on the same connection", async () => {
    const edge = await edgeWith([]);
    const app = unique("app");
    let asked = 0;
    // Each token lives one second; Echo refuses a connection's frames 5 s after its token's exp.
    const alice = client(edge, app, "alice", {
      tokenProvider: () => {
        asked += 1;
        return edge.token(app, "alice", { ttl: 1 });
      },
    });
    const fixed = client(edge, app, "fixed", { tokenProvider: undefined, token: await edge.token(app, "fixed", { ttl: 1 }) });
    const aliceLog = record(alice);
    const errors = [];
    fixed.on("error", (e) => errors.push(e.code));
    await Promise.all([alice.connect(), fixed.connect()]);
    const got = [];
    await alice.subscribe("room", (m) => got.push(m.data));
    await sleep(6500);

    const ack = await alice.publish("room", "past the first token");
    assert.equal(typeof ack.seq, "number");
    await waitFor(() => got.length === 1, "the message");
    assert.deepEqual(aliceLog.states, ["connecting", "open"], "no reconnect: refreshed in place");
    assert.ok(asked >= 4, `the provider was asked for each refresh (${asked} times)`);
    // A fixed token cannot be refreshed: its connection's frames are refused once it expired.
    await assert.rejects(fixed.publish("room", "too late"), { code: "token_expired" });
  });
});
