// End-to-end encrypted channels: keys, and sealing and opening envelopes through WebCrypto.

import { byteLength } from "./checks.js";
import { EchoError } from "./errors.js";

// The envelope, the same from the Rust client (docs/security.md has the whole scheme):
//   {"e2e": "v1", "kid": KEY_ID, "iv": BASE64(12 bytes), "ct": BASE64(ciphertext and 16-byte tag)}
// AES-256-GCM over the JSON text of the data, a fresh random nonce per message, the UTF-8 of
// "echo-e2e-v1:" and the channel name as additional data. Keys: 32 bytes, or PBKDF2-HMAC-SHA256
// over a passphrase, 600,000 rounds, salt "echo-e2e-v1:" + a salt the app chooses. A key's id is
// the app's, or by default the first 8 bytes of the key's SHA-256 in hex.

/** PBKDF2-HMAC-SHA256 rounds for a key from a passphrase. */
export const PBKDF2_ROUNDS = 600_000;
export const E2E_CONTEXT = "echo-e2e-v1:";
export const utf8 = new TextEncoder();

export function subtle() {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new EchoError(
      "e2e_unavailable",
      "end-to-end encryption needs WebCrypto (crypto.subtle): a secure context (https:// or localhost) in browsers, Node.js 20+",
    );
  }
  return s;
}

export function toBase64(bytes) {
  // Built a chunk at a time: a character at a time costs a 1 KB message more than its encryption.
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  return btoa(s);
}

export function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** A channel key: 32 bytes and their id. Make one with `fromRaw` or `fromPassphrase`. */
export class E2EKey {
  /** @private */
  constructor(id, cryptoKey, raw) {
    this.id = id;
    this._key = cryptoKey;
    this._raw = raw;
  }

  /** A key of 32 bytes; `id` (1 to 64 bytes) defaults to the first 8 bytes of its SHA-256, in hex. */
  static async fromRaw(bytes, { id } = {}) {
    const raw = bytes instanceof Uint8Array ? new Uint8Array(bytes) : new Uint8Array(bytes ?? []);
    if (raw.length !== 32) throw new EchoError("bad_request", "an end-to-end key is 32 bytes");
    if (id !== undefined && (typeof id !== "string" || !id || byteLength(id) > 64)) {
      throw new EchoError("bad_request", "a key id must be 1 to 64 bytes");
    }
    const s = subtle();
    const digest = new Uint8Array(await s.digest("SHA-256", raw));
    const kid = id ?? Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
    const key = await s.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
    return new E2EKey(kid, key, raw);
  }

  /**
   * The key a passphrase and a salt derive (PBKDF2-HMAC-SHA256, 600,000 rounds, salt
   * "echo-e2e-v1:" + `salt`): everyone with the same passphrase and salt gets the same key.
   */
  static async fromPassphrase(passphrase, salt, { id } = {}) {
    if (typeof passphrase !== "string" || !passphrase) throw new EchoError("bad_request", "a passphrase is needed");
    if (typeof salt !== "string") throw new EchoError("bad_request", "a salt (a string, such as the app and channel) is needed");
    const s = subtle();
    const base = await s.importKey("raw", utf8.encode(passphrase), "PBKDF2", false, ["deriveBits"]);
    const bits = await s.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: utf8.encode(E2E_CONTEXT + salt), iterations: PBKDF2_ROUNDS },
      base,
      256,
    );
    return E2EKey.fromRaw(new Uint8Array(bits), { id });
  }

  /** The key's 32 bytes. */
  get bytes() {
    return new Uint8Array(this._raw);
  }
}

/** `data` as an envelope for `channel` (`iv`: for test vectors only; never reuse a nonce). */
export async function sealEnvelope(key, channel, data, iv) {
  const nonce = iv ?? globalThis.crypto.getRandomValues(new Uint8Array(12));
  const ct = await subtle().encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: utf8.encode(E2E_CONTEXT + channel) },
    key._key,
    utf8.encode(JSON.stringify(data)),
  );
  return { e2e: "v1", kid: key.id, iv: toBase64(nonce), ct: toBase64(new Uint8Array(ct)) };
}

/** Why a message did not decrypt: `not_envelope`, `unknown_key`, `failed` (wrong key, tampered) or `not_json`. */
export class DecryptFailure extends Error {
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

/** The data an envelope holds, with whichever of `keys` its `kid` names. */
export async function openEnvelope(keys, channel, envelope) {
  const e = envelope;
  if (!e || typeof e !== "object" || e.e2e !== "v1" || typeof e.kid !== "string" || typeof e.iv !== "string" || typeof e.ct !== "string") {
    throw new DecryptFailure("not_envelope", "the data is not an encrypted envelope");
  }
  const key = keys.find((k) => k.id === e.kid);
  if (!key) throw new DecryptFailure("unknown_key", `no key with id ${JSON.stringify(e.kid)} for this channel`);
  let iv;
  let ct;
  try {
    iv = fromBase64(e.iv);
    ct = fromBase64(e.ct);
  } catch {
    throw new DecryptFailure("not_envelope", "the envelope's iv or ct is not base64");
  }
  if (iv.length !== 12) throw new DecryptFailure("not_envelope", "the envelope's iv is not 12 bytes");
  let plain;
  try {
    plain = await subtle().decrypt({ name: "AES-GCM", iv, additionalData: utf8.encode(E2E_CONTEXT + channel) }, key._key, ct);
  } catch {
    throw new DecryptFailure("failed", "the message does not decrypt: wrong key, or tampered with");
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  } catch {
    throw new DecryptFailure("not_json", "the decrypted data is not JSON");
  }
}
