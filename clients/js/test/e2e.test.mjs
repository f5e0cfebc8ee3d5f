// End-to-end encryption: the committed vectors (tests/fixtures/e2e-vectors.json, which the Rust
// client's tests check too), wrong keys, tampering and truncation, and encrypted channels through
// a real edge: readers with the key, without it, with a wrong one, and a key rotation.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { E2EKey, openEnvelope, sealEnvelope } from "../echo.js";
import { unique, waitFor } from "../test-support/edge.mjs";
import { sharedEdge } from "../test-support/shared-edge.mjs";

const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const vectors = JSON.parse(await readFile(new URL("../../../tests/fixtures/e2e-vectors.json", import.meta.url), "utf8")).vectors;

async function keyOf(v) {
  const id = v.passphrase === undefined && v.name.includes("default id") ? undefined : v.kid;
  return v.passphrase !== undefined
    ? E2EKey.fromPassphrase(v.passphrase, v.salt, { id })
    : E2EKey.fromRaw(fromB64(v.key), { id });
}

const rejectsWith = (promise, reason) => assert.rejects(promise, (e) => e.reason === reason);

describe("e2e vectors", { timeout: 30_000 }, () => {
  test("every committed vector derives, seals and opens as the Rust client does", async () => {
    assert.ok(vectors.length >= 3);
    for (const v of vectors) {
      const key = await keyOf(v);
      assert.deepEqual(key.bytes, fromB64(v.derivedKey), v.name);
      assert.equal(key.id, v.kid, v.name);
      assert.deepEqual(await sealEnvelope(key, v.channel, v.data, fromB64(v.nonce)), v.envelope, v.name);
      assert.deepEqual(await openEnvelope([key], v.channel, v.envelope), v.data, v.name);
    }
  });

  test("wrong keys, tampering, truncation and plaintext are refused, with a reason", async () => {
    const v = vectors[0];
    const key = await keyOf(v);
    const other = await E2EKey.fromRaw(new Uint8Array(32).fill(9), { id: key.id });
    await rejectsWith(openEnvelope([other], v.channel, v.envelope), "failed");
    await rejectsWith(openEnvelope([await E2EKey.fromRaw(new Uint8Array(32))], v.channel, v.envelope), "unknown_key");
    await rejectsWith(openEnvelope([key], "another-channel", v.envelope), "failed");
    const ct = fromB64(v.envelope.ct);
    const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
    const flipped = ct.slice();
    flipped[3] ^= 0x40;
    await rejectsWith(openEnvelope([key], v.channel, { ...v.envelope, ct: b64(flipped) }), "failed");
    await rejectsWith(openEnvelope([key], v.channel, { ...v.envelope, ct: b64(ct.slice(0, ct.length - 4)) }), "failed");
    await rejectsWith(openEnvelope([key], v.channel, { text: "plain" }), "not_envelope");
    const a = await sealEnvelope(key, "c", { x: 1 });
    const b = await sealEnvelope(key, "c", { x: 1 });
    assert.notEqual(a.iv, b.iv, "a fresh nonce each time");
  });
});

describe("encrypted channels", { timeout: 60_000 }, () => {
  const shared = sharedEdge();
  const client = (app, sub) => shared.client(app, sub);

  test("readers with the key read, others see ciphertext or a decrypt error, in order", async () => {
    const app = unique("app");
    const salt = `${app}:room`;
    const key = await E2EKey.fromPassphrase("open sesame", salt);
    const [alice, bob, eve, mallory] = [client(app, "alice"), client(app, "bob"), client(app, "eve"), client(app, "mallory")];
    await Promise.all([alice, bob, eve, mallory].map((c) => c.connect()));
    alice.encryptChannel("room", [key]);
    bob.encryptChannel("room", [key]);
    mallory.encryptChannel("room", [await E2EKey.fromPassphrase("wrong guess", salt)]);
    const got = { bob: [], eve: [], mallory: [] };
    const errors = [];
    mallory.on("decrypt_error", (e) => errors.push(e));
    await bob.subscribe("room", (m) => got.bob.push(m));
    await eve.subscribe("room", (m) => got.eve.push(m));
    await mallory.subscribe("room", (m) => got.mallory.push(m));
    const texts = Array.from({ length: 20 }, (_, i) => `secret ${i}`);
    const acks = await Promise.all(texts.map((text) => alice.publish("room", { text })));
    assert.deepEqual(acks.map((a) => a.seq), texts.map((_, i) => i + 1), "sent and stored in call order");
    await waitFor(() => got.bob.length === 20 && got.eve.length === 20 && errors.length === 20, "every delivery");
    assert.deepEqual(got.bob.map((m) => m.data.text), texts);
    assert.deepEqual(got.bob.map((m) => m.seq), texts.map((_, i) => i + 1));
    for (const m of got.eve) {
      assert.equal(m.data.e2e, "v1");
      assert.ok(!JSON.stringify(m.data).includes("secret"), JSON.stringify(m.data));
    }
    assert.deepEqual(got.mallory, [], "nothing shown as plaintext");
    // A wrong passphrase makes another key, with another id.
    assert.deepEqual(errors.map((e) => [e.channel, e.seq, e.reason]), texts.map((_, i) => ["room", i + 1, "unknown_key"]));

    const page = await bob.history("room", { since: 18 });
    assert.deepEqual(page.messages.map((m) => m.data.text), ["secret 18", "secret 19"]);
    const wrong = await mallory.history("room", { since: 19 });
    assert.deepEqual(wrong.messages.map((m) => [m.seq, m.data, m.decryptError]), [[20, null, "unknown_key"]]);
  });

  test("a key rotates: the new one encrypts, the old one still reads", async () => {
    const app = unique("app");
    const [k1, k2] = [await E2EKey.fromRaw(new Uint8Array(32).fill(1)), await E2EKey.fromRaw(new Uint8Array(32).fill(2))];
    const [alice, bob, carol] = [client(app, "alice"), client(app, "bob"), client(app, "carol")];
    await Promise.all([alice, bob, carol].map((c) => c.connect()));
    alice.encryptChannel("room", [k1]);
    bob.encryptChannel("room", [k2, k1]);
    carol.encryptChannel("room", [k1]);
    const got = [];
    const missing = [];
    carol.on("decrypt_error", (e) => missing.push(e));
    await bob.subscribe("room", (m) => got.push(m.data.text));
    await carol.subscribe("room", () => {});
    await alice.publish("room", { text: "under k1" });
    alice.encryptChannel("room", [k2, k1]);
    await alice.publish("room", { text: "under k2" });
    await waitFor(() => got.length === 2 && missing.length === 1, "both messages");
    assert.deepEqual(got, ["under k1", "under k2"]);
    assert.deepEqual([missing[0].seq, missing[0].reason], [2, "unknown_key"]);
  });

  test("Echo refuses plaintext on a channel its associations mark encrypted", async () => {
    const c = client("chat-demo", unique("user"));
    await c.connect();
    await assert.rejects(c.publish("secret", { text: "oops" }), (e) => e.code === "bad_request" && /encrypted/.test(e.message));
    c.encryptChannel("secret", [await E2EKey.fromRaw(new Uint8Array(32).fill(5))]);
    const ack = await c.publish("secret", { text: "fine" });
    assert.ok(ack.seq >= 1);
  });
});
