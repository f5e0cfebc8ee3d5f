// App keys: a client connects with an RS256 token (signed by the app's server, which holds the
// private key) and keeps its connection across a key rotation by refreshing with tokens of the
// new ES256 key, while the old key is revoked.

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { EchoClient } from "../echo.js";
import { ECHOCTL, sleep, startEdge, unique, waitFor } from "../test-support/edge.mjs";

const keys = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "tests", "fixtures", "keys");
const edges = [];
const clients = [];

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(edges.map((e) => e.stop()));
});

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** A token as an app server signs one: RS256 or ES256 with its private key, naming `kid`. */
function jwt(alg, kid, pem, claims) {
  const head = `${b64({ alg, typ: "JWT", kid })}.${b64(claims)}`;
  const key = createPrivateKey(readFileSync(path.join(keys, pem)));
  const signature =
    alg === "RS256"
      ? sign("sha256", Buffer.from(head), key)
      : sign("sha256", Buffer.from(head), { key, dsaEncoding: "ieee-p1363" });
  return `${head}.${signature.toString("base64url")}`;
}

function echoctl(edge, ...args) {
  return execFileSync(ECHOCTL, ["keys", ...args, "--data-dir", edge.dataDir], { encoding: "utf8" });
}

describe("app keys", { timeout: 60_000 }, () => {
  test("an RS256 token connects and refresh carries the connection across a rotation", async () => {
    const edge = await startEdge([]);
    edges.push(edge);
    const app = unique("app");
    echoctl(edge, "create", app, "--kid", "rs-1", "--alg", "RS256", "--public-key", path.join(keys, "rsa-public.pem"));
    echoctl(edge, "create", app, "--kid", "es-2", "--alg", "ES256", "--public-key", path.join(keys, "ec-public.pem"));
    let current = ["RS256", "rs-1", "rsa-private.pem"];
    const signed = [];
    const claims = (ttl) => ({ app, sub: "alice", exp: Math.floor(Date.now() / 1000) + ttl });
    const c = new EchoClient({
      url: edge.wsUrl,
      // Tokens of two seconds: refreshed on the same connection well before they expire.
      tokenProvider: () => {
        signed.push(current[1]);
        return jwt(...current, claims(2));
      },
      requestTimeout: 5000,
      backoffBase: 50,
    });
    clients.push(c);
    const states = [];
    c.on("statechange", (e) => states.push(e.state));
    await c.connect();
    const got = [];
    await c.subscribe("room", (m) => got.push(m.data));
    await c.publish("room", "signed with RS256");

    // The app's servers move to the new key; the old one is revoked.
    current = ["ES256", "es-2", "ec-private.pem"];
    echoctl(edge, "revoke", "rs-1");
    await sleep(7000);
    await c.publish("room", "after the rotation");
    await waitFor(() => got.length === 2, "both messages");
    assert.deepEqual(got, ["signed with RS256", "after the rotation"]);
    assert.deepEqual(states, ["connecting", "open"], "no reconnect: refreshed in place");
    assert.ok(signed.includes("es-2"), `refreshed with the new key (${signed})`);

    // A new connection with the revoked key is refused at the door.
    const late = new EchoClient({ url: edge.wsUrl, token: jwt("RS256", "rs-1", "rsa-private.pem", claims(60)), requestTimeout: 5000 });
    clients.push(late);
    await assert.rejects(late.connect(), (err) => err.code === "unauthorized" && err.status === 401 && /revoked/.test(err.message));
  });
});
