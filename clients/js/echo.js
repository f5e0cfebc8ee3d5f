// Echo client for browsers and Node.js 20+: one WebSocket to an Echo edge (or API Gateway),
// channel subscriptions that survive reconnects without gaps or repeats, acknowledged publishes,
// history, presence (member lists kept across reconnects, join and leave events), end-to-end
// encrypted channels, keepalive and planned renewal before the connection's maximum age.
//
// No dependencies. The wire protocol is described in the repository's README ("Protocol").
//
// Map of this file:
//   EchoError      errors with a stable `code` (the protocol's codes plus the client's own)
//   E2EKey         a channel key for end-to-end encryption (AES-256-GCM through WebCrypto)
//   EchoClient     the public API: connect, subscribe, unsubscribe, publish, history, presence,
//                  members, ping, close
//   Link           one WebSocket: request/answer matching, timeouts, keepalive
//
// How answers are matched to requests: Echo handles one connection's frames in order and answers
// each request with exactly one frame (`subscribed`, `unsubscribed`, `ack`, `history`, `presence`,
// `pong` or `error`). An `ack` or an `error` with an `id` answers the publish with that id;
// `subscribed`, `unsubscribed`, `history` and `presence` answer the oldest request of that kind on
// their channel; an `error`
// with only a `channel` answers the oldest non-publish request on it; an `error` with neither
// (a frame refused before it was parsed, such as one over the size limit) answers the oldest
// request in flight.

/** Pages of a member list read at most, of up to 500 members each. */
const PRESENCE_PAGES = 1000;
/** Largest `limit` a `history` request may ask for. */
const HISTORY_PAGE = 1000;
/** Channel names Echo accepts: 1–128 of `A-Z a-z 0-9 _ - . : @ =`, or the reserved `$status`. */
const CHANNEL_RE = /^(?:\$status|[A-Za-z0-9_\-.:@=]{1,128})$/;
/** Longest publish id, in bytes. */
const MAX_ID_BYTES = 128;
/** How long `close()` waits for the socket's closing handshake before resolving anyway. */
const CLOSE_WAIT_MS = 1000;

/** The codes of the `error` frames Echo sends. */
export const PROTOCOL_ERROR_CODES = Object.freeze([
  "bad_request",
  "unauthorized",
  "forbidden",
  "too_large",
  "rate_limited",
  "limit_exceeded",
  "function_failed",
  "internal",
  "token_expired",
]);

/**
 * Whether the client reconnects after Echo closes the connection with `code` (unless the app
 * gives `noReconnectCodes`): after every code but 1000 and Echo's terminal range 4500–4999.
 * Echo's 4000–4499 are codes to reconnect after, so a code added there later is understood too.
 */
export function reconnectsAfter(code) {
  return code !== 1000 && !(code >= 4500 && code <= 4999);
}

const DEFAULTS = Object.freeze({
  requestTimeout: 10_000,
  connectTimeout: 10_000,
  backoffBase: 500,
  backoffMax: 30_000,
  maxReconnectAttempts: Infinity,
  retryInitialConnect: false,
  noReconnectCodes: null,
  maxQueuedPublishes: 1000,
  pingInterval: 5 * 60_000,
  maxConnectionAge: 2 * 60 * 60_000,
  renewBefore: 5 * 60_000,
  reorderHold: 250,
});

const OPEN = 1;

// ------------------------------------------------------------------------ end-to-end encryption
//
// The envelope, the same from the Rust client (docs/security.md has the whole scheme):
//   {"e2e": "v1", "kid": KEY_ID, "iv": BASE64(12 bytes), "ct": BASE64(ciphertext and 16-byte tag)}
// AES-256-GCM over the JSON text of the data, a fresh random nonce per message, the UTF-8 of
// "echo-e2e-v1:" and the channel name as additional data. Keys: 32 bytes, or PBKDF2-HMAC-SHA256
// over a passphrase, 600,000 rounds, salt "echo-e2e-v1:" + a salt the app chooses. A key's id is
// the app's, or by default the first 8 bytes of the key's SHA-256 in hex.

/** PBKDF2-HMAC-SHA256 rounds for a key from a passphrase. */
export const PBKDF2_ROUNDS = 600_000;
const E2E_CONTEXT = "echo-e2e-v1:";
const utf8 = new TextEncoder();

function subtle() {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new EchoError(
      "e2e_unavailable",
      "end-to-end encryption needs WebCrypto (crypto.subtle): a secure context (https:// or localhost) in browsers, Node.js 20+",
    );
  }
  return s;
}

function toBase64(bytes) {
  // Built a chunk at a time: a character at a time costs a 1 KB message more than its encryption.
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  return btoa(s);
}

function fromBase64(text) {
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
class DecryptFailure extends Error {
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

// ------------------------------------------------------------------------------------- errors

/**
 * An error with a stable `code`: one of the protocol's error codes (`bad_request`, `unauthorized`,
 * `forbidden`, `too_large`, `rate_limited`, `limit_exceeded`, `function_failed`, `internal`) when
 * Echo refused a frame, or one of the client's own: `timeout`, `disconnected`, `closed`,
 * `queue_full`, `connect_failed`, `unsubscribed`, `handler_failed`, `protocol`.
 */
export class EchoError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{channel?: string, id?: string, cause?: unknown}} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "EchoError";
    this.code = code;
    if (details.channel !== undefined) this.channel = details.channel;
    if (details.id !== undefined) this.id = details.id;
  }

  /** The error an Echo `error` frame describes. */
  static fromFrame(frame) {
    const code = typeof frame.code === "string" ? frame.code : "internal";
    const text = typeof frame.message === "string" ? frame.message : "refused by Echo";
    return new EchoError(code, text, {
      channel: typeof frame.channel === "string" ? frame.channel : undefined,
      id: typeof frame.id === "string" ? frame.id : undefined,
    });
  }
}

// ------------------------------------------------------------------------------------- helpers

function checkChannel(channel) {
  if (typeof channel !== "string" || !CHANNEL_RE.test(channel)) {
    return new EchoError(
      "bad_request",
      `invalid channel name ${JSON.stringify(channel)}: use 1 to 128 of A-Z a-z 0-9 _ - . : @ =`,
    );
  }
  return null;
}

function checkSeq(value, what) {
  if (value === undefined) return null;
  if (!Number.isSafeInteger(value) || value < 0) {
    return new EchoError("bad_request", `${what} must be a non-negative integer`);
  }
  return null;
}

function byteLength(text) {
  return new TextEncoder().encode(text).length;
}

function randomId() {
  const bytes = new Uint8Array(8);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Throws `err` outside the current call stack, as an uncaught error would be. */
function reportLater(err) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(err);
  else
    setTimeout(() => {
      throw err;
    }, 0);
}

function backoffDelay(attempt, base, max) {
  const cap = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.random() * cap);
}

function positive(value, name, { zeroOk = false } = {}) {
  if (typeof value !== "number" || Number.isNaN(value) || value < 0 || (!zeroOk && value === 0)) {
    throw new TypeError(`EchoClient: ${name} must be a ${zeroOk ? "non-negative" : "positive"} number`);
  }
  return value;
}

// ------------------------------------------------------------------------------------- client

/**
 * A connection to Echo that keeps itself alive.
 *
 * Events (`on(type, fn)`): `connecting`, `open` `{reconnected}`, `reconnecting` `{code, reason}`,
 * `closed` `{code, reason, error?}`, `statechange` `{state, previous, ...}`, `retry`
 * `{attempt, delay, error?}`, `renewed`, `error` (an {@link EchoError}).
 */
export class EchoClient {
  /** @param {import("./echo.d.ts").EchoClientOptions} options */
  constructor(options) {
    if (!options || typeof options !== "object") {
      throw new TypeError("EchoClient: options with a url and a token or tokenProvider are required");
    }
    const url = String(options.url ?? "");
    if (!/^(wss?|https?):\/\//i.test(url)) {
      throw new TypeError(`EchoClient: url must start with ws://, wss://, http:// or https:// (got ${JSON.stringify(url)})`);
    }
    if (options.tokenProvider !== undefined && typeof options.tokenProvider !== "function") {
      throw new TypeError("EchoClient: tokenProvider must be a function returning a token");
    }
    if (options.tokenProvider === undefined && (typeof options.token !== "string" || !options.token)) {
      throw new TypeError("EchoClient: a token (string) or a tokenProvider (async function) is required");
    }
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== "function") {
      throw new TypeError(
        "EchoClient: no WebSocket implementation: pass one as the WebSocket option " +
          "(for example the `ws` package's WebSocket), or on Node.js 20 run with --experimental-websocket " +
          "(Node.js 22 and browsers have a global WebSocket)",
      );
    }
    const o = { ...DEFAULTS, ...options };
    this._opts = {
      url: url.replace(/^http/i, "ws"),
      token: options.token,
      tokenProvider: options.tokenProvider,
      WebSocket: WS,
      requestTimeout: positive(o.requestTimeout, "requestTimeout"),
      connectTimeout: positive(o.connectTimeout, "connectTimeout"),
      backoffBase: positive(o.backoffBase, "backoffBase", { zeroOk: true }),
      backoffMax: positive(o.backoffMax, "backoffMax", { zeroOk: true }),
      maxReconnectAttempts: positive(o.maxReconnectAttempts, "maxReconnectAttempts"),
      retryInitialConnect: Boolean(o.retryInitialConnect),
      noReconnectCodes: o.noReconnectCodes == null ? null : new Set(o.noReconnectCodes),
      maxQueuedPublishes: positive(o.maxQueuedPublishes, "maxQueuedPublishes", { zeroOk: true }),
      pingInterval: positive(o.pingInterval, "pingInterval", { zeroOk: true }),
      maxConnectionAge: positive(o.maxConnectionAge, "maxConnectionAge", { zeroOk: true }),
      renewBefore: positive(o.renewBefore, "renewBefore", { zeroOk: true }),
      reorderHold: positive(o.reorderHold, "reorderHold", { zeroOk: true }),
    };

    this._state = "closed";
    this._listeners = new Map();
    /** Desired subscriptions by channel; each survives reconnects until `unsubscribe`. */
    this._subs = new Map();
    /** Publishes waiting for a connection. */
    this._queue = [];
    /** Every live Link, whatever its role. */
    this._links = new Set();
    /** The connection requests go to. */
    this._primary = null;
    /** A connection being opened to replace the primary one (make-before-break). */
    this._next = null;
    /** The connection attempt under way while there is no primary. */
    this._attempting = null;
    this._connectWaiters = [];
    this._closedByUser = true;
    this._openedSinceConnect = false;
    /** Consecutive failed connection attempts. */
    this._failures = 0;
    /** Retries scheduled since the last open (or connect()); numbers them and sets the backoff. */
    this._retries = 0;
    this._renewFailures = 0;
    this._retryTimer = null;
    this._renewTimer = null;
    /** Keys of the channels this client encrypts end to end, by channel; the first encrypts. */
    this._ciphers = new Map();
    /** Encrypted publishes, sealed one after another so that they are sent in call order. */
    this._sealing = Promise.resolve();
  }

  // ------------------------------------------------------------------ public API

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get state() {
    return this._state;
  }

  /** The channels subscribed to (or being subscribed to). */
  get channels() {
    return [...this._subs.keys()];
  }

  /** The highest seq delivered on `channel` (or its subscription's starting point), if any. */
  lastSeq(channel) {
    return this._subs.get(channel)?.lastSeq;
  }

  /** Adds a listener; returns a function that removes it. */
  on(type, fn) {
    if (typeof fn !== "function") throw new TypeError("EchoClient.on: listener must be a function");
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    this._listeners.get(type)?.delete(fn);
  }

  /** Adds a listener called at most once; returns a function that removes it. */
  once(type, fn) {
    const off = this.on(type, (detail) => {
      off();
      fn(detail);
    });
    return off;
  }

  /**
   * Opens the connection. Resolves when it is open (subscriptions made before are then sent).
   * If the first attempt fails, rejects with `connect_failed` and stays closed, unless
   * `retryInitialConnect` is set: then it keeps trying with backoff (`retry` and `error` events)
   * and resolves once connected. While reconnecting, it tries again at once.
   */
  connect() {
    if (this._state === "open") return Promise.resolve();
    const waiter = new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    if (this._state === "closed") {
      this._closedByUser = false;
      this._openedSinceConnect = false;
      this._failures = 0;
      this._retries = 0;
      this._setState("connecting", {});
      this._attempt();
    } else if (this._retryTimer) {
      clearTimeout(this._retryTimer);
      this._retryTimer = null;
      this._attempt();
    }
    return waiter;
  }

  /**
   * Closes the connection for good: no reconnecting. Publishes sent but not acknowledged reject
   * with `disconnected`, queued ones and other pending requests with `closed`. Confirmed
   * subscriptions are kept: a later `connect()` resumes them where they stopped.
   * Resolves when the socket has closed (or after a short wait).
   */
  close(code = 1000, reason = "") {
    if (code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new TypeError("EchoClient.close: code must be 1000 or 3000-4999");
    }
    this._closedByUser = true;
    clearTimeout(this._retryTimer);
    clearTimeout(this._renewTimer);
    this._retryTimer = this._renewTimer = null;
    const links = [...this._links];
    this._primary = this._next = this._attempting = null;
    const shut = links.map((link) => link.shut(code, String(reason)));
    if (this._state !== "closed") {
      this._terminal(code, String(reason), new EchoError("closed", "the client was closed"));
    }
    return Promise.all(shut).then(() => undefined);
  }

  /**
   * Subscribes to `channel`; `handler` gets each message `{channel, seq, id, data, from, ts}`,
   * once, in seq order, across reconnects. Resolves with `{channel, seq}` (the channel's latest
   * seq) when Echo confirms; rejects with the EchoError Echo answered (`forbidden`,
   * `limit_exceeded`, ...). With `since`, messages with a greater seq are replayed first (older
   * than the replay limit are fetched with `history`). With `presence: true` the client also
   * keeps the channel's member list (`members(channel)`), across reconnects, and emits `join` and
   * `leave` events `{channel, sub, ts, seq}` as users come and go. Subscribing again to a channel
   * replaces its handler. May be called before `connect()`.
   */
  subscribe(channel, handler, options = {}) {
    const bad =
      checkChannel(channel) ??
      (typeof handler === "function" ? null : new EchoError("bad_request", "subscribe needs a handler function")) ??
      checkSeq(options.since, "since");
    if (bad) return Promise.reject(bad);
    if (options.presence !== undefined && typeof options.presence !== "boolean") {
      return Promise.reject(new EchoError("bad_request", "presence must be true or false"));
    }
    const existing = this._subs.get(channel);
    if (existing) {
      existing.handler = handler;
      if (Boolean(options.presence) !== Boolean(existing.presence)) {
        existing.presence = options.presence ? newPresence() : null;
        // Echo turns presence on or off with a repeated subscribe.
        const link = this._primary;
        if (existing.confirmed && link?.opened && this._state === "open") {
          return new Promise((resolve, reject) => {
            existing.waiters.push({ resolve, reject });
            this._sendSubscribe(link, existing);
          });
        }
      }
      if (existing.confirmed) return Promise.resolve({ channel, seq: existing.latest });
      return new Promise((resolve, reject) => existing.waiters.push({ resolve, reject }));
    }
    const sub = {
      channel,
      handler,
      /** Highest seq delivered (or the starting point); messages at or below it are repeats. */
      lastSeq: options.since,
      /** Echo has confirmed the subscription at least once. */
      confirmed: false,
      /** The highest seq known to exist (from `subscribed` and from messages). */
      latest: 0,
      waiters: [],
      /** Messages after a gap in seq, by seq, waiting for it to close. */
      waiting: new Map(),
      /** While a gap is waited for, the timer after which history is asked. */
      holdTimer: null,
      /** The connection a history page for the gap was asked on, while it is awaited. */
      filling: null,
      /** With `presence`: the member list kept for it (see `_syncPresence`). */
      presence: options.presence ? newPresence() : null,
    };
    this._subs.set(channel, sub);
    const promise = new Promise((resolve, reject) => sub.waiters.push({ resolve, reject }));
    const link = this._primary;
    if (link?.opened && this._state === "open") this._sendSubscribe(link, sub);
    return promise;
  }

  /**
   * Stops receiving `channel`. The handler gets nothing more at once; resolves when Echo confirms
   * (or at once when not connected: the subscription ends with the connection anyway).
   */
  unsubscribe(channel) {
    const bad = checkChannel(channel);
    if (bad) return Promise.reject(bad);
    const sub = this._subs.get(channel);
    if (sub) {
      this._subs.delete(channel);
      const err = new EchoError("unsubscribed", `unsubscribed from ${channel} before Echo confirmed`, { channel });
      for (const w of sub.waiters.splice(0)) w.reject(err);
    }
    if (sub) clearTimeout(sub.holdTimer);
    if (sub?.presence) clearTimeout(sub.presence.holdTimer);
    const link = this._primary;
    if (!link?.opened || link.done) return Promise.resolve();
    if (!link.subs.has(channel) && !link.pending("subscribe", channel)) return Promise.resolve();
    return new Promise((resolve, reject) => this._sendUnsubscribe(link, channel, resolve, reject));
  }

  /**
   * Encrypts `channel` end to end with `keys` (E2EKey objects): publishes are encrypted with the
   * first, messages delivered or read from history are decrypted with whichever key their
   * envelope names (so a key rotates by putting the new one first). A message that does not
   * decrypt is not handed to the handler: a `decrypt_error` event `{channel, seq, id, reason}`
   * reports it. An empty list ends encryption for the channel.
   */
  encryptChannel(channel, keys) {
    const bad = checkChannel(channel);
    if (bad) throw bad;
    if (!Array.isArray(keys) || keys.some((k) => !(k instanceof E2EKey))) {
      throw new EchoError("bad_request", "encryptChannel needs an array of E2EKey");
    }
    if (keys.length === 0) this._ciphers.delete(channel);
    else this._ciphers.set(channel, [...keys]);
  }

  /**
   * Publishes `data` (any JSON) to `channel`. Resolves with `{channel, id, seq}` once Echo stored
   * it, or `{channel, id, dropped: true, reason}` when a function dropped it. Rejects with the
   * EchoError Echo answered (`forbidden`, `too_large`, `function_failed`, ...), with `timeout`
   * when no answer came in time, with `disconnected` when the connection dropped before the ack
   * (the message may or may not have been published), with `queue_full` or `closed`.
   * While not connected, publishes wait in a bounded queue and are sent after reconnecting.
   */
  publish(channel, data, options = {}) {
    const keys = this._ciphers.get(channel);
    if (keys && checkChannel(channel) === null && data !== undefined) {
      // Sealed at once, alongside earlier ones; sent after them.
      const sealing = sealEnvelope(keys[0], channel, data);
      sealing.catch(() => {}); // handled below, once the publishes before it are sent
      const sealed = this._sealing.then(() => sealing);
      this._sealing = sealed.catch(() => {});
      return sealed.then(
        (envelope) => this._publish(channel, envelope, options),
        (err) => Promise.reject(err instanceof EchoError ? err : new EchoError("bad_request", `could not encrypt: ${err?.message ?? err}`, { channel })),
      );
    }
    return this._publish(channel, data, options);
  }

  _publish(channel, data, options) {
    const id = options.id ?? randomId();
    let bad = checkChannel(channel);
    if (!bad && data === undefined) bad = new EchoError("bad_request", "publish needs data (any JSON value)");
    if (!bad && (typeof id !== "string" || id.length === 0 || byteLength(id) > MAX_ID_BYTES)) {
      bad = new EchoError("bad_request", `publish id must be a string of 1 to ${MAX_ID_BYTES} bytes`);
    }
    let text;
    if (!bad) {
      try {
        text = JSON.stringify({ action: "publish", channel, data, id });
      } catch (err) {
        bad = new EchoError("bad_request", `publish data is not JSON: ${err.message}`, { cause: err });
      }
    }
    if (bad) return Promise.reject(bad);
    if (this._state === "closed") {
      return Promise.reject(new EchoError("closed", "the client is closed: call connect() first", { channel, id }));
    }
    return new Promise((resolve, reject) => {
      const entry = {
        kind: "publish",
        channel,
        id,
        text,
        reply: (f) =>
          resolve(
            f.dropped
              ? { channel, id, dropped: true, reason: typeof f.reason === "string" ? f.reason : "" }
              : { channel, id, seq: f.seq },
          ),
        error: reject,
        lost: () =>
          reject(
            new EchoError(
              "disconnected",
              "the connection dropped before Echo acknowledged the publish: it may or may not have been published",
              { channel, id },
            ),
          ),
        timeout: () =>
          reject(
            new EchoError(
              "timeout",
              `no answer to the publish within ${this._opts.requestTimeout} ms: it may or may not have been published`,
              { channel, id },
            ),
          ),
        cancel: (err) => reject(err),
      };
      const link = this._primary;
      if (link?.opened && this._state === "open") link.request(entry);
      else if (this._queue.length >= this._opts.maxQueuedPublishes) {
        reject(new EchoError("queue_full", `not connected and ${this._queue.length} publishes are already queued`, { channel, id }));
      } else this._queue.push(entry);
    });
  }

  /**
   * A page of `channel`'s stored messages with seq greater than `since` (default 0), oldest
   * first: `{channel, messages, more}`. A page holds at most `limit` messages (1 to 1000, default
   * 100) and fits one frame (128 KB); `more` says messages follow the last one, read on with its
   * seq as `since`. Needs an open connection (rejects with `disconnected`).
   */
  history(channel, options = {}) {
    const since = options.since ?? 0;
    const limit = options.limit ?? 100;
    const bad =
      checkChannel(channel) ??
      checkSeq(since, "since") ??
      (Number.isInteger(limit) && limit >= 1 && limit <= HISTORY_PAGE
        ? null
        : new EchoError("bad_request", `limit must be 1 to ${HISTORY_PAGE}`));
    if (bad) return Promise.reject(bad);
    return new Promise((resolve, reject) =>
      this._request({
        kind: "history",
        channel,
        text: JSON.stringify({ action: "history", channel, since, limit }),
        reply: (f) =>
          this._opened(channel, normalizeMessages(channel, f.messages)).then((messages) =>
            resolve({ channel, messages, more: f.more === true }),
          ),
        error: reject,
        timeoutMessage: `no answer to history within ${this._opts.requestTimeout} ms`,
        reject,
      }),
    );
  }

  /**
   * The members of `channel`, every page read: `{channel, members: [{sub, connections}], seq}`,
   * in `sub` order; `seq` is the channel's last presence event the list includes. Needs
   * permission to subscribe to the channel and an open connection.
   */
  presence(channel) {
    const bad = checkChannel(channel);
    if (bad) return Promise.reject(bad);
    const link = this._primary;
    if (!link?.opened || this._state !== "open") return Promise.reject(this._notConnected("presence", channel));
    return new Promise((resolve, reject) => {
      const done = (list) => resolve({ channel, members: [...list.members].map(([sub, connections]) => ({ sub, connections })), seq: list.seq });
      this._readMembers(link, channel, done, reject);
    });
  }

  /**
   * The member list kept for a subscription made with `presence: true`, as
   * `[{sub, connections}]` in `sub` order; `undefined` for other channels, or before the first
   * list arrived. `connections` is as of the last list read; join and leave events add and remove
   * members between reads.
   */
  members(channel) {
    const p = this._subs.get(channel)?.presence;
    if (!p?.members) return undefined;
    return [...p.members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([sub, connections]) => ({ sub, connections }));
  }

  /** Sends a ping; resolves with the round trip in milliseconds. Needs an open connection. */
  ping() {
    const started = Date.now();
    return new Promise((resolve, reject) =>
      this._request({
        kind: "ping",
        text: '{"action":"ping"}',
        reply: () => resolve(Date.now() - started),
        error: reject,
        timeoutMessage: `no pong within ${this._opts.requestTimeout} ms`,
        reject,
      }),
    );
  }

  /**
   * Replaces the connection without a gap (make-before-break): opens a new one with a fresh
   * token, resubscribes every channel from its last seq, then closes the old one once its
   * pending requests are answered. Done automatically before `maxConnectionAge`; call it after
   * the identity behind `tokenProvider` changed. Resolves when the new connection took over.
   */
  renew() {
    return this._startHandover(true);
  }

  // ------------------------------------------------------------------ requests

  /** Sends a non-publish request on the primary connection, or rejects when there is none. */
  _request({ kind, channel, text, reply, error, timeoutMessage, reject }) {
    const link = this._primary;
    if (!link?.opened || this._state !== "open") {
      reject(this._notConnected(kind, channel));
      return;
    }
    link.request({
      kind,
      channel,
      text,
      reply,
      error,
      lost: () => reject(new EchoError("disconnected", `the connection dropped before Echo answered ${kind}`, { channel })),
      timeout: () => reject(new EchoError("timeout", timeoutMessage, { channel })),
    });
  }

  /** The error of a request that needs an open connection and has none. */
  _notConnected(kind, channel) {
    const why = this._state === "closed" ? "closed" : "disconnected";
    return new EchoError(why, `not connected (state: ${this._state}): ${kind} needs an open connection`, { channel });
  }

  _sendSubscribe(link, sub, after) {
    const since = sub.lastSeq;
    // What waited for a gap is replayed from `since` on this connection.
    this._resetOrder(sub);
    const frame = { action: "subscribe", channel: sub.channel };
    if (since !== undefined) frame.since = since;
    if (sub.presence) frame.presence = true;
    link.request({
      kind: "subscribe",
      channel: sub.channel,
      text: JSON.stringify(frame),
      reply: (f) => {
        this._subscribed(link, sub, since, f);
        after?.();
      },
      error: (err) => {
        this._subscribeFailed(sub, err);
        after?.();
      },
      // Sent again on the next connection.
      lost: () => {},
      timeout: () => {
        const err = new EchoError("timeout", `no answer to subscribe within ${this._opts.requestTimeout} ms`, {
          channel: sub.channel,
        });
        if (sub.confirmed) {
          // A resubscription that goes unanswered: treat the connection as broken.
          this._emit("error", err);
          link.shut(1000, "subscribe timed out", { code: 1006, reason: "subscribe timed out" });
        } else {
          this._subscribeFailed(sub, err);
          after?.();
        }
      },
      // Echo subscribed after all; drop it if nobody wants it any more.
      late: () => {
        link.subs.set(sub.channel, sub);
        if (this._subs.get(sub.channel) !== sub && link === this._primary) this._reconcile(link);
      },
    });
  }

  _sendUnsubscribe(link, channel, resolve = () => {}, reject = () => {}) {
    link.request({
      kind: "unsubscribe",
      channel,
      text: JSON.stringify({ action: "unsubscribe", channel }),
      reply: () => {
        link.subs.delete(channel);
        resolve();
      },
      error: reject,
      // The subscription ended with the connection.
      lost: () => resolve(),
      timeout: () => reject(new EchoError("timeout", `no answer to unsubscribe within ${this._opts.requestTimeout} ms`, { channel })),
      late: () => link.subs.delete(channel),
    });
  }

  /** A `subscribed` answer: the subscription is in place on `link`. */
  _subscribed(link, sub, since, frame) {
    const channel = sub.channel;
    link.subs.set(channel, sub);
    if (this._subs.get(channel) !== sub) return;
    const latest = Number.isSafeInteger(frame.seq) ? frame.seq : 0;
    sub.latest = Math.max(sub.latest, latest);
    if (sub.lastSeq === undefined) sub.lastSeq = latest;
    else if (since !== undefined && Number.isSafeInteger(frame.replayTo) && frame.replayTo < latest) {
      // The replay stops short of the latest seq: page the rest from history. The pages are
      // read from the last seq delivered, so they cover the replay too, whichever comes first.
      this._fill(link, sub);
    }
    sub.confirmed = true;
    if (sub.presence) this._syncPresence(link, sub);
    for (const w of sub.waiters.splice(0)) w.resolve({ channel, seq: latest });
    // A subscription confirmed on a connection being retired must also exist on its successor.
    if (link !== this._primary && this._primary?.opened) this._reconcile(this._primary);
  }

  _subscribeFailed(sub, err) {
    if (this._subs.get(sub.channel) === sub) this._subs.delete(sub.channel);
    const waiters = sub.waiters.splice(0);
    for (const w of waiters) w.reject(err);
    // A resubscription that fails (permissions changed, limits) has nobody waiting: tell the app.
    if (waiters.length === 0) this._emit("error", err);
  }

  // ------------------------------------------------------------------ incoming messages
  //
  // Each subscription's messages are handed over in strictly increasing seq, once. On AWS each
  // message is fanned out by its own invocation, so a channel's messages may arrive in either
  // order: one that comes after a gap is held (`reorderHold`) for the ones before it. If they do
  // not come, history is read from the last seq delivered, page by page; what history no longer
  // has is reported with a `gap` event {channel, from, to} and skipped.

  _message(link, frame) {
    const sub = this._subs.get(frame.channel);
    if (!sub || link.subs.get(frame.channel) !== sub || !Number.isSafeInteger(frame.seq)) return;
    this._accept(link, sub, frame);
  }

  _accept(link, sub, m) {
    if (sub.lastSeq !== undefined && m.seq <= sub.lastSeq) return;
    sub.latest = Math.max(sub.latest, m.seq);
    if (sub.filling || (sub.lastSeq !== undefined && m.seq > sub.lastSeq + 1)) {
      sub.waiting.set(m.seq, m);
      if (!sub.filling && !sub.holdTimer) {
        sub.holdTimer = setTimeout(() => {
          sub.holdTimer = null;
          if (this._subs.get(sub.channel) === sub && !link.done) this._fill(link, sub);
        }, this._opts.reorderHold);
      }
      return;
    }
    this._deliver(sub, m);
    this._drain(sub);
  }

  /** Delivers what waits and now follows the last seq delivered. */
  _drain(sub) {
    for (;;) {
      const next = sub.waiting.get(sub.lastSeq + 1);
      if (!next) break;
      sub.waiting.delete(next.seq);
      this._deliver(sub, next);
    }
    for (const seq of sub.waiting.keys()) if (seq <= sub.lastSeq) sub.waiting.delete(seq);
    if (sub.waiting.size === 0) {
      clearTimeout(sub.holdTimer);
      sub.holdTimer = null;
    }
  }

  _resetOrder(sub) {
    clearTimeout(sub.holdTimer);
    sub.holdTimer = null;
    sub.waiting.clear();
    sub.filling = null;
  }

  /** Reads the next page of history after the last seq delivered, to close a gap. */
  _fill(link, sub) {
    clearTimeout(sub.holdTimer);
    sub.holdTimer = null;
    sub.filling = link;
    const channel = sub.channel;
    const since = sub.lastSeq ?? 0;
    const current = () => this._subs.get(channel) === sub && sub.filling === link;
    const retry = (err) => {
      if (!current()) return;
      this._emit("error", err);
      sub.filling = null;
      // Try again after a hold, unless the gap closes by itself meanwhile.
      if (sub.waiting.size > 0 || sub.lastSeq < sub.latest) {
        sub.holdTimer = setTimeout(() => {
          sub.holdTimer = null;
          if (this._subs.get(channel) === sub && !link.done) this._fill(link, sub);
        }, this._opts.reorderHold);
      }
    };
    link.request({
      kind: "history",
      channel,
      text: JSON.stringify({ action: "history", channel, since, limit: HISTORY_PAGE }),
      reply: (f) => {
        if (current()) this._filled(link, sub, f);
      },
      error: retry,
      // The resubscription on the next connection replays from the last seq delivered.
      lost: () => {
        if (current()) sub.filling = null;
      },
      timeout: () => retry(new EchoError("timeout", `no answer to history within ${this._opts.requestTimeout} ms`, { channel })),
    });
  }

  /** A history page for a gap: deliver what is now contiguous; read on, or report what is gone. */
  _filled(link, sub, f) {
    const page = normalizeMessages(sub.channel, f.messages);
    const more = f.more === true && page.length > 0;
    // The page holds every stored message after the seq asked for up to its last one: what is
    // missing in that range is gone. Without `more`, that is everything.
    const covered = more ? page[page.length - 1].seq : Infinity;
    for (const m of page) {
      if (m.seq > sub.lastSeq) {
        sub.latest = Math.max(sub.latest, m.seq);
        sub.waiting.set(m.seq, m);
      }
    }
    this._drain(sub);
    for (;;) {
      const next = Math.min(...sub.waiting.keys());
      if (!Number.isFinite(next) || next > covered) break;
      this._gap(sub, sub.lastSeq + 1, next - 1);
      sub.lastSeq = next - 1;
      this._drain(sub);
    }
    if (!more && sub.lastSeq < sub.latest) {
      // History ends before the latest seq known to exist: the rest is gone too.
      this._gap(sub, sub.lastSeq + 1, sub.latest);
      sub.lastSeq = sub.latest;
    }
    sub.filling = null;
    if (more && (sub.waiting.size > 0 || sub.lastSeq < sub.latest)) this._fill(link, sub);
  }

  _gap(sub, from, to) {
    this._emit("gap", { channel: sub.channel, from, to });
  }

  /**
   * A history page's messages, decrypted on a channel this client encrypts: one that does not
   * decrypt keeps its place with `data: null` and `decryptError` (and a `decrypt_error` event).
   */
  _opened(channel, messages) {
    const keys = this._ciphers.get(channel);
    if (!keys) return Promise.resolve(messages);
    return Promise.all(
      messages.map((m) =>
        openEnvelope(keys, channel, m.data).then(
          (data) => ({ ...m, data }),
          (err) => {
            this._decryptFailed(channel, m, err);
            return { ...m, data: null, decryptError: err.reason ?? "failed" };
          },
        ),
      ),
    );
  }

  _decryptFailed(channel, m, err) {
    this._emit("decrypt_error", {
      channel,
      seq: m.seq,
      id: m.id,
      from: m.from,
      ts: m.ts,
      reason: err?.reason ?? "failed",
      message: err?.message ?? String(err),
    });
  }

  /**
   * Hands a message to the subscription's handler; its seq becomes the last delivered. On an
   * encrypted channel the message is decrypted first, messages one after another so that they
   * keep their order; one that does not decrypt is reported and skipped.
   */
  _deliver(sub, m) {
    sub.lastSeq = m.seq;
    const keys = this._ciphers.get(sub.channel);
    if (keys) {
      // Opened at once, alongside earlier ones; handed over after them.
      const opening = openEnvelope(keys, sub.channel, m.data);
      opening.catch(() => {}); // handled below, in turn
      const opened = (sub.opening ?? Promise.resolve()).then(() => opening);
      sub.opening = opened.then(
        (data) => {
          if (this._subs.get(sub.channel) === sub) this._hand(sub, { ...m, data });
        },
        (err) => {
          if (this._subs.get(sub.channel) === sub) this._decryptFailed(sub.channel, m, err);
        },
      );
      return;
    }
    this._hand(sub, m);
  }

  _hand(sub, m) {
    try {
      sub.handler({ channel: sub.channel, seq: m.seq, id: m.id, data: m.data, from: m.from, ts: m.ts });
    } catch (err) {
      const wrapped = new EchoError("handler_failed", `the handler of ${sub.channel} threw: ${err?.message ?? err}`, {
        channel: sub.channel,
        cause: err,
      });
      if (this._listeners.get("error")?.size) this._emit("error", wrapped);
      else reportLater(err);
    }
  }

  // ------------------------------------------------------------------ presence
  //
  // A presence subscription keeps its channel's member list: read in full (every page) when the
  // subscription is confirmed, on every connection, then kept by the `join` and `leave` events
  // that follow the list's seq, applied in seq order. Events may arrive out of order on AWS; one
  // after a gap waits `reorderHold` for the ones before it, then the list is read again. A list
  // read again (after a reconnect or a gap) is compared with the one kept: who is no longer there
  // gets a `leave` event, who is new a `join`, both with `resync: true`.

  /** Reads every page of `channel`'s members on `link`: `{members: Map, seq}`. */
  _readMembers(link, channel, done, fail) {
    const members = new Map();
    let seq;
    const page = (after, n) => {
      const frame = { action: "presence", channel };
      if (after !== undefined) frame.after = after;
      link.request({
        kind: "presence",
        channel,
        text: JSON.stringify(frame),
        reply: (f) => {
          const list = Array.isArray(f.members) ? f.members : [];
          for (const m of list) {
            if (m && typeof m.sub === "string") members.set(m.sub, Number.isSafeInteger(m.connections) ? m.connections : 1);
          }
          // Events after the first page's seq are applied on top of the whole list.
          if (seq === undefined) seq = Number.isSafeInteger(f.seq) ? f.seq : 0;
          const last = list[list.length - 1]?.sub;
          if (f.more === true && typeof last === "string" && n < PRESENCE_PAGES) page(last, n + 1);
          else done({ members, seq });
        },
        error: fail,
        lost: () => fail(new EchoError("disconnected", "the connection dropped before Echo answered presence", { channel })),
        timeout: () => fail(new EchoError("timeout", `no answer to presence within ${this._opts.requestTimeout} ms`, { channel })),
      });
    };
    page(undefined, 1);
  }

  /** Reads the member list again and makes the kept one match it. */
  _syncPresence(link, sub) {
    const p = sub.presence;
    clearTimeout(p.holdTimer);
    p.holdTimer = null;
    p.syncing = link;
    const current = () => this._subs.get(sub.channel) === sub && sub.presence === p && p.syncing === link;
    this._readMembers(
      link,
      sub.channel,
      (list) => {
        if (!current()) return;
        p.syncing = null;
        const old = p.members ?? new Map();
        p.members = list.members;
        p.seq = list.seq;
        const ts = Date.now();
        for (const who of old.keys()) if (!list.members.has(who)) this._emit("leave", { channel: sub.channel, sub: who, ts, resync: true });
        for (const who of list.members.keys()) if (!old.has(who)) this._emit("join", { channel: sub.channel, sub: who, ts, resync: true });
        this._drainPresence(link, sub);
      },
      (err) => {
        if (!current()) return;
        p.syncing = null;
        if (err.code !== "disconnected") {
          this._emit("error", err);
          p.holdTimer = setTimeout(() => {
            p.holdTimer = null;
            if (this._subs.get(sub.channel) === sub && sub.presence === p && !link.done) this._syncPresence(link, sub);
          }, this._opts.reorderHold);
        }
      },
    );
  }

  /** A `join` or `leave` frame. */
  _presenceEvent(link, f) {
    const sub = this._subs.get(f.channel);
    const p = sub?.presence;
    if (!p || link.subs.get(f.channel) !== sub || !Number.isSafeInteger(f.seq) || typeof f.sub !== "string") return;
    if (p.seq !== undefined && f.seq <= p.seq) return;
    p.held.set(f.seq, f);
    if (!p.syncing) this._drainPresence(link, sub);
  }

  /** Applies the held events that follow the list's seq; waits for a gap, then reads the list. */
  _drainPresence(link, sub) {
    const p = sub.presence;
    for (;;) {
      const next = p.held.get(p.seq + 1);
      if (!next) break;
      p.held.delete(next.seq);
      p.seq = next.seq;
      const had = p.members.has(next.sub);
      if (next.type === "join" && !had) p.members.set(next.sub, 1);
      else if (next.type === "leave" && had) p.members.delete(next.sub);
      else continue;
      this._emit(next.type, { channel: sub.channel, sub: next.sub, ts: next.ts, seq: next.seq });
    }
    for (const seq of p.held.keys()) if (seq <= p.seq) p.held.delete(seq);
    if (p.held.size === 0) {
      clearTimeout(p.holdTimer);
      p.holdTimer = null;
    } else if (!p.holdTimer) {
      p.holdTimer = setTimeout(() => {
        p.holdTimer = null;
        if (this._subs.get(sub.channel) === sub && sub.presence === p && !link.done) this._syncPresence(link, sub);
      }, this._opts.reorderHold);
    }
  }

  // ------------------------------------------------------------------ connection life cycle

  _attempt() {
    const link = new Link(this, "primary");
    this._attempting = link;
    this._openLink(link);
  }

  async _openLink(link) {
    this._links.add(link);
    let token;
    try {
      token = this._opts.tokenProvider ? await this._opts.tokenProvider() : this._opts.token;
      if (typeof token !== "string" || !token) throw new TypeError("tokenProvider did not return a token (a non-empty string)");
    } catch (err) {
      link.failEarly(new EchoError("connect_failed", `could not get a token: ${err?.message ?? err}`, { cause: err }));
      return;
    }
    if (link.done) return;
    link.tokenExp = tokenExpiry(token);
    const url = new URL(this._opts.url);
    url.searchParams.set("token", token);
    link.start(this._opts.WebSocket, url.toString(), this._opts.url);
  }

  /** Called by a Link when its socket opened. */
  _linkOpened(link) {
    if (link.role === "next") {
      this._handoverOpened(link);
      return;
    }
    if (link.role !== "primary") return;
    this._attempting = null;
    this._primary = link;
    this._failures = 0;
    this._retries = 0;
    const reconnected = this._openedSinceConnect;
    this._openedSinceConnect = true;
    for (const sub of this._subs.values()) this._sendSubscribe(link, sub);
    this._flushQueue(link);
    this._scheduleRenew(link);
    this._setState("open", { reconnected });
    for (const w of this._connectWaiters.splice(0)) w.resolve();
  }

  /** Called by a Link that never opened. */
  _linkFailed(link, err) {
    if (this._closedByUser) return;
    if (link.role === "next") {
      if (this._next === link) this._next = null;
      link.handover?.reject(err);
      this._emit("error", err);
      this._retryRenew(link);
      return;
    }
    if (link.role !== "primary") return;
    this._attempting = null;
    this._emit("error", err);
    this._failures += 1;
    if (!this._openedSinceConnect && !this._opts.retryInitialConnect) {
      this._terminal(1006, err.message, err);
    } else if (this._failures >= this._opts.maxReconnectAttempts) {
      this._terminal(1006, `gave up after ${this._failures} failed attempts: ${err.message}`, err);
    } else {
      this._scheduleRetry(err);
    }
  }

  /** Called by a Link that was open and is now closed. */
  _linkClosed(link, code, reason) {
    if (this._closedByUser || link.role === "retiring") return;
    if (link.role === "next") {
      if (this._next === link) this._next = null;
      link.handover?.reject(new EchoError("disconnected", `the new connection closed (${code}) before it took over`));
      this._retryRenew(link);
      return;
    }
    if (link !== this._primary) return;
    this._primary = null;
    clearTimeout(this._renewTimer);
    this._renewTimer = null;
    const next = this._next;
    if (next) {
      // A replacement is already on its way: let it take over.
      this._next = null;
      next.role = "primary";
      next.handover?.reject(new EchoError("disconnected", "the old connection closed during the renewal"));
      next.handover = null;
      if (next.opened) {
        this._primary = next;
        this._reconcile(next);
        this._flushQueue(next);
        this._scheduleRenew(next);
        this._emit("renewed", {});
      } else {
        this._attempting = next;
        this._setState("reconnecting", { code, reason });
      }
      return;
    }
    const stops = this._opts.noReconnectCodes ? this._opts.noReconnectCodes.has(code) : !reconnectsAfter(code);
    if (stops) {
      this._terminal(code, reason, new EchoError("closed", `closed by Echo (${code}${reason ? `: ${reason}` : ""})`));
      return;
    }
    this._setState("reconnecting", { code, reason });
    this._scheduleRetry(null);
  }

  _scheduleRetry(error) {
    const attempt = ++this._retries;
    const delay = backoffDelay(attempt - 1, this._opts.backoffBase, this._opts.backoffMax);
    this._emit("retry", { attempt, delay, error: error ?? undefined });
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (!this._closedByUser) this._attempt();
    }, delay);
  }

  /** Ends the session: state `closed`, queued and waiting requests rejected. */
  _terminal(code, reason, error) {
    clearTimeout(this._retryTimer);
    clearTimeout(this._renewTimer);
    this._retryTimer = this._renewTimer = null;
    this._closedByUser = true;
    for (const link of [...this._links]) link.shut(1000, "closing");
    this._primary = this._next = this._attempting = null;
    const closedErr = error?.code === "closed" ? error : new EchoError("closed", `the connection closed: ${reason || code}`, { cause: error });
    for (const entry of this._queue.splice(0)) entry.cancel(closedErr);
    // Subscriptions Echo never confirmed are given up; confirmed ones resume on the next connect().
    for (const [channel, sub] of this._subs) {
      if (sub.confirmed) continue;
      this._subs.delete(channel);
      for (const w of sub.waiters.splice(0)) w.reject(closedErr);
    }
    this._setState("closed", { code, reason, error });
    for (const w of this._connectWaiters.splice(0)) w.reject(error ?? closedErr);
  }

  _flushQueue(link) {
    for (const entry of this._queue.splice(0)) link.request(entry);
  }

  /** Makes `link`'s subscriptions match the desired ones. */
  _reconcile(link) {
    for (const sub of this._subs.values()) {
      if (link.subs.get(sub.channel) === sub || link.pending("subscribe", sub.channel)) continue;
      // Not confirmed anywhere yet: its own answer will bring it here with a starting seq.
      if (sub.lastSeq === undefined && [...this._links].some((l) => l !== link && l.pending("subscribe", sub.channel))) continue;
      this._sendSubscribe(link, sub);
    }
    for (const channel of link.subs.keys()) {
      if (!this._subs.has(channel) && !link.pending("unsubscribe", channel)) this._sendUnsubscribe(link, channel);
    }
  }

  // ------------------------------------------------------------------ renewal (make-before-break)

  _scheduleRenew(link) {
    clearTimeout(this._renewTimer);
    this._renewTimer = null;
    this._renewFailures = 0;
    const age = this._opts.maxConnectionAge;
    if (!(age > 0) || !Number.isFinite(age)) return;
    const margin = this._opts.renewBefore * (1 + 0.2 * Math.random());
    const at = Math.max(age - margin, age / 2);
    const delay = Math.max(0, link.openedAt + at - Date.now());
    this._renewTimer = setTimeout(() => {
      this._renewTimer = null;
      if (this._primary === link) this._startHandover().catch(() => {});
    }, delay);
  }

  _retryRenew(failed) {
    const primary = this._primary;
    if (!primary?.opened || this._next || failed.manual) return;
    const delay = backoffDelay(this._renewFailures++, this._opts.backoffBase, this._opts.backoffMax);
    clearTimeout(this._renewTimer);
    this._renewTimer = setTimeout(() => {
      this._renewTimer = null;
      if (this._primary === primary) this._startHandover().catch(() => {});
    }, delay);
  }

  _startHandover(manual = false) {
    if (this._state !== "open" || !this._primary) {
      return Promise.reject(new EchoError("disconnected", `cannot renew while ${this._state}`));
    }
    if (this._next) return this._next.handover.promise;
    const link = new Link(this, "next");
    link.manual = manual;
    let resolve, reject;
    const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
    link.handover = { promise, resolve, reject };
    this._next = link;
    this._openLink(link);
    return promise;
  }

  /** The replacement connection opened: subscribe it everywhere, then switch over. */
  _handoverOpened(link) {
    let pending = 0;
    const done = () => {
      pending -= 1;
      if (pending === 0) this._swap(link);
    };
    for (const sub of this._subs.values()) {
      if (sub.lastSeq === undefined) continue; // still being subscribed; reconciled after the swap
      pending += 1;
      this._sendSubscribe(link, sub, done);
    }
    if (pending === 0) this._swap(link);
  }

  _swap(link) {
    if (link.done || this._next !== link || !this._primary) return;
    const old = this._primary;
    this._next = null;
    this._primary = link;
    link.role = "primary";
    this._reconcile(link);
    this._flushQueue(link);
    this._scheduleRenew(link);
    old.retire(this._opts.requestTimeout);
    link.handover.resolve();
    link.handover = null;
    this._emit("renewed", {});
  }

  // ------------------------------------------------------------------ events

  _setState(state, detail) {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this._emit(state, detail);
    this._emit("statechange", { ...detail, state, previous });
  }

  _emit(type, detail) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(detail);
      } catch (err) {
        reportLater(err);
      }
    }
  }
}

/** How long after a failed refresh it is tried again, while the old token lasts. */
const REFRESH_RETRY_MS = 5000;

/** The `exp` claim of a JWT (seconds), read without checking the signature; undefined otherwise. */
/** The presence state of a subscription made with `presence: true`. */
function newPresence() {
  return {
    /** sub -> connections; `null` until the first list arrived. */
    members: null,
    /** The seq of the last presence event applied (or the list's). */
    seq: undefined,
    /** Events after a gap, or while the list is read, by seq. */
    held: new Map(),
    holdTimer: null,
    /** The connection the list is being read on. */
    syncing: null,
  };
}

function tokenExpiry(token) {
  try {
    const part = token.split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = JSON.parse(json).exp;
    return Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

function normalizeMessages(channel, messages) {
  if (!Array.isArray(messages)) return [];
  return messages.map((m) => ({ channel, seq: m.seq, id: m.id, data: m.data, from: m.from, ts: m.ts }));
}

// ------------------------------------------------------------------------------------- link

/**
 * One WebSocket. Roles: `primary` (requests go here), `next` (replacing the primary),
 * `retiring` (replaced; closes once its requests are answered).
 */
class Link {
  constructor(client, role) {
    this.client = client;
    this.role = role;
    this.ws = null;
    this.opened = false;
    this.done = false;
    this.openedAt = 0;
    this.lastSent = 0;
    /** Requests sent and not answered, oldest first. Timed-out ones stay, marked `expired`. */
    this.inflight = [];
    /** Channels Echo confirmed on this connection, with the subscription they were made for. */
    this.subs = new Map();
    this.timers = { ping: null, connect: null, retire: null, refresh: null };
    /** The `exp` of the token this connection runs on (seconds), when the token says. */
    this.tokenExp = undefined;
    /** The `order` of the last publish sent on each channel on this connection. */
    this.orders = new Map();
    this.handover = null;
    this.manual = false;
    this.onIdle = null;
  }

  get opts() {
    return this.client._opts;
  }

  start(WS, url, shownUrl) {
    let ws;
    try {
      ws = new WS(url);
    } catch (err) {
      this.failEarly(new EchoError("connect_failed", `could not open a WebSocket to ${shownUrl}: ${err?.message ?? err}`, { cause: err }));
      return;
    }
    this.ws = ws;
    this.shownUrl = shownUrl;
    this.timers.connect = setTimeout(() => {
      this.shut(1000, "connect timeout", { error: this._connectError(`no answer within ${this.opts.connectTimeout} ms`) });
    }, this.opts.connectTimeout);
    ws.onopen = () => this._open();
    ws.onmessage = (ev) => this._frame(ev.data);
    // Before the upgrade, some implementations (Node.js 20) report a failure only as `error`.
    ws.onerror = (ev) => {
      if (!this.opened) this._end({ error: this._connectError(ev?.message || ev?.error?.message || "connection failed") });
    };
    ws.onclose = (ev) => {
      if (!this.opened) this._end({ error: this._connectError(`closed with code ${ev.code}`) });
      else this._end({ code: ev.code, reason: ev.reason ?? "" });
    };
  }

  _connectError(detail) {
    return new EchoError(
      "connect_failed",
      `could not connect to ${this.shownUrl}: ${detail} (Echo refuses a missing, invalid or expired token ` +
        "with HTTP 401 before the upgrade, which WebSocket APIs report only as a failed connection)",
    );
  }

  /** Fails before a socket exists (no token, bad URL). */
  failEarly(err) {
    queueMicrotask(() => this._end({ error: err }));
  }

  _open() {
    if (this.done) return;
    clearTimeout(this.timers.connect);
    this.opened = true;
    this.openedAt = this.lastSent = Date.now();
    this._schedulePing();
    this._scheduleRefresh(this.tokenExp);
    this.client._linkOpened(this);
  }

  send(text) {
    if (!this.opened || this.done || this.ws.readyState !== OPEN) return false;
    try {
      this.ws.send(text);
    } catch {
      return false;
    }
    this.lastSent = Date.now();
    return true;
  }

  /** `entry`: {kind, channel?, id?, text, reply, error, lost, timeout, late?}. */
  request(entry) {
    let text = entry.text;
    let order;
    if (entry.kind === "publish") {
      // Numbered per connection and channel, so that Echo commits them in the order sent even
      // where their frames are handled at once (API Gateway).
      order = (this.orders.get(entry.channel) ?? 0) + 1;
      text = `${text.slice(0, -1)},"order":${order}}`;
    }
    if (!this.send(text)) {
      entry.lost();
      return;
    }
    if (order !== undefined) this.orders.set(entry.channel, order);
    entry.expired = false;
    entry.timer = setTimeout(() => {
      entry.expired = true;
      entry.timeout();
    }, this.opts.requestTimeout);
    this.inflight.push(entry);
  }

  pending(kind, channel) {
    return this.inflight.some((e) => !e.expired && e.kind === kind && e.channel === channel);
  }

  _take(pred) {
    const i = this.inflight.findIndex(pred);
    if (i < 0) return null;
    const [entry] = this.inflight.splice(i, 1);
    clearTimeout(entry.timer);
    return entry;
  }

  _frame(data) {
    if (this.done || typeof data !== "string") return;
    let f;
    try {
      f = JSON.parse(data);
    } catch (err) {
      this.client._emit("error", new EchoError("protocol", "Echo sent a frame that is not JSON", { cause: err }));
      return;
    }
    if (!f || typeof f !== "object") return;
    let entry = null;
    switch (f.type) {
      case "message":
        this.client._message(this, f);
        return;
      case "join":
      case "leave":
        this.client._presenceEvent(this, f);
        return;
      case "ack":
        entry = this._take((e) => e.kind === "publish" && e.id === f.id);
        break;
      case "subscribed":
      case "unsubscribed":
      case "history":
      case "presence": {
        const kind = { subscribed: "subscribe", unsubscribed: "unsubscribe" }[f.type] ?? f.type;
        entry = this._take((e) => e.kind === kind && e.channel === f.channel);
        break;
      }
      case "pong":
        entry = this._take((e) => e.kind === "ping");
        break;
      case "refreshed":
        entry = this._take((e) => e.kind === "refresh");
        break;
      case "error":
        this._error(f);
        return;
      default:
        return; // a frame type this client does not know: ignore it
    }
    if (entry) this._settle(entry, f, null);
  }

  _error(f) {
    const err = EchoError.fromFrame(f);
    let entry = null;
    if (typeof f.id === "string") entry = this._take((e) => e.kind === "publish" && e.id === f.id);
    if (!entry && typeof f.channel === "string") {
      entry =
        this._take((e) => e.kind !== "publish" && e.channel === f.channel) ??
        this._take((e) => e.channel === f.channel);
    }
    if (!entry && f.id === undefined && f.channel === undefined) entry = this._take(() => true);
    if (entry) this._settle(entry, null, err);
    else this.client._emit("error", err);
    if (err.code === "token_expired") this._refreshSoon(0);
    if (err.code === "unauthorized") {
      // The connection's record is gone: only a new connection helps.
      this.shut(1000, "unauthorized", { code: 1006, reason: "Echo no longer knows this connection" });
    }
  }

  _settle(entry, frame, err) {
    if (entry.expired) {
      if (frame) entry.late?.(frame);
    } else if (err) entry.error(err);
    else entry.reply(frame);
    if (this.onIdle) this.onIdle();
  }

  /** Non-expired requests in flight. */
  get active() {
    return this.inflight.filter((e) => !e.expired).length;
  }

  _schedulePing() {
    const every = this.opts.pingInterval;
    if (!(every > 0) || !Number.isFinite(every)) return;
    const wait = Math.max(0, this.lastSent + every - Date.now());
    this.timers.ping = setTimeout(() => {
      if (this.done) return;
      if (Date.now() - this.lastSent >= every) {
        this.request({
          kind: "ping",
          text: '{"action":"ping"}',
          reply: () => {},
          error: () => {},
          lost: () => {},
          timeout: () =>
            this.shut(1000, "keepalive timeout", { code: 1006, reason: `no pong within ${this.opts.requestTimeout} ms` }),
        });
      }
      this._schedulePing();
    }, wait);
  }

  /**
   * With a token provider, presents a new token (`refresh`) once four fifths of the current
   * one's remaining life (`exp`, seconds) have passed; not sooner than a second from now unless
   * it is already out, so a provider that hands back the same token is not asked ever more often.
   */
  _scheduleRefresh(exp) {
    if (!this.opts.tokenProvider || !Number.isFinite(exp)) return;
    const left = Math.max(0, exp * 1000 - Date.now());
    this._refreshSoon(Math.max(left * 0.8, Math.min(left, 1000)));
  }

  _refreshSoon(delay) {
    if (!this.opts.tokenProvider || this.done || this.pending("refresh", undefined)) return;
    clearTimeout(this.timers.refresh);
    this.timers.refresh = setTimeout(() => this._refresh(), delay);
  }

  async _refresh() {
    let token;
    try {
      token = await this.opts.tokenProvider();
      if (typeof token !== "string" || !token) throw new TypeError("tokenProvider did not return a token (a non-empty string)");
    } catch (err) {
      this.client._emit("error", new EchoError("refresh_failed", `could not get a token to refresh with: ${err?.message ?? err}`, { cause: err }));
      this._refreshSoon(REFRESH_RETRY_MS);
      return;
    }
    if (this.done) return;
    const retry = (err) => {
      if (err) this.client._emit("error", err);
      this._refreshSoon(REFRESH_RETRY_MS);
    };
    this.request({
      kind: "refresh",
      text: JSON.stringify({ action: "refresh", token }),
      reply: (f) => {
        this.tokenExp = f.exp;
        this._scheduleRefresh(f.exp);
      },
      error: retry,
      lost: () => {},
      timeout: () => retry(new EchoError("timeout", `no answer to refresh within ${this.opts.requestTimeout} ms`)),
    });
  }

  /** Replaced by a newer connection: close once every request here is answered. */
  retire(grace) {
    this.role = "retiring";
    this.onIdle = () => {
      if (this.active === 0) this.shut(1000, "renewed");
    };
    this.timers.retire = setTimeout(() => this.shut(1000, "renewed"), grace);
    this.onIdle();
  }

  /**
   * Closes the socket now and reports the link as ended with `report` ({code, reason} for an open
   * link, {error} for one that never opened). Resolves when the socket has closed.
   */
  shut(code, reason, report) {
    if (this.done) return Promise.resolve();
    const ws = this.ws;
    const info = report ?? { code, reason };
    if (!this.opened && !info.error) info.error = new EchoError("closed", "closed before the connection opened");
    this._end(info);
    if (!ws) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ws.readyState === OPEN ? CLOSE_WAIT_MS : 0);
      ws.onclose = () => {
        clearTimeout(timer);
        resolve();
      };
      try {
        ws.close(code, reason.slice(0, 100));
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** Ends the link once: detaches from the socket, fails what is in flight, tells the client. */
  _end(info) {
    if (this.done) return;
    this.done = true;
    for (const t of Object.values(this.timers)) clearTimeout(t);
    if (this.ws) this.ws.onopen = this.ws.onmessage = this.ws.onerror = this.ws.onclose = null;
    this.client._links.delete(this);
    for (const entry of this.inflight.splice(0)) {
      clearTimeout(entry.timer);
      if (!entry.expired) entry.lost();
    }
    if (this.opened) this.client._linkClosed(this, info.code ?? 1006, info.reason ?? "");
    else this.client._linkFailed(this, info.error ?? new EchoError("connect_failed", "connection failed"));
  }
}
