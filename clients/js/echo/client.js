// The public API, `EchoClient`: connect, subscribe, unsubscribe, publish, history, ping, close,
// events. Its other parts live in files of their own and are mixed in below: ordering.js
// (incoming messages), presence.js, reconnect.js (the connection's life cycle), renewal.js.
//
// How answers are matched to requests: Echo handles one connection's frames in order and answers
// each request with exactly one frame (`subscribed`, `unsubscribed`, `ack`, `history`, `presence`,
// `pong` or `error`). An `ack` or an `error` with an `id` answers the publish with that id;
// `subscribed`, `unsubscribed`, `history` and `presence` answer the oldest request of that kind on
// their channel; an `error` with only a `channel` answers the oldest non-publish request on it; an
// `error` with neither (a frame refused before it was parsed, such as one over the size limit)
// answers the oldest request in flight.

import { HISTORY_PAGE, MAX_ID_BYTES, byteLength, checkChannel, checkSeq, positive } from "./checks.js";
import { E2EKey, sealEnvelope } from "./e2e.js";
import { EchoError } from "./errors.js";
import { normalizeMessages } from "./messages.js";
import { OPEN } from "./link.js";
import { mixIn } from "./mixin.js";
import { DEFAULTS } from "./options.js";
import { orderingMethods } from "./ordering.js";
import { newPresence, presenceMethods } from "./presence.js";
import { reconnectMethods } from "./reconnect.js";
import { renewalMethods } from "./renewal.js";
import { defaultHttpUrl } from "./refusal.js";
import { randomId, reportLater } from "./util.js";

/**
 * A connection to Echo that keeps itself alive.
 *
 * Events (`on(type, fn)`): `connecting`, `open` `{reconnected}`, `reconnecting` `{code, reason}`,
 * `closed` `{code, reason, error?}`, `statechange` `{state, previous, ...}`, `retry`
 * `{attempt, delay, error?}`, `renewed`, `error` (an {@link EchoError}).
 */
export class EchoClient {
  /** @param {import("../echo.d.ts").EchoClientOptions} options */
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
    if (options.httpUrl !== undefined && options.httpUrl !== false && !/^https?:\/\//i.test(String(options.httpUrl))) {
      throw new TypeError(`EchoClient: httpUrl must start with http:// or https://, or be false (got ${JSON.stringify(options.httpUrl)})`);
    }
    const o = { ...DEFAULTS, ...options };
    this._opts = {
      url: url.replace(/^http/i, "ws"),
      httpUrl: options.httpUrl === false ? undefined : String(options.httpUrl ?? defaultHttpUrl(url) ?? "").replace(/\/+$/, "") || undefined,
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
      resendWithin: positive(o.resendWithin, "resendWithin", { zeroOk: true }),
    };

    this._state = "closed";
    this._listeners = new Map();
    /** Desired subscriptions by channel; each survives reconnects until `unsubscribe`. */
    this._subs = new Map();
    /** Publishes waiting for a connection. */
    this._queue = [];
    /** Publishes whose connection dropped before their ack, to send again (before `_queue`). */
    this._resending = [];
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
   * it (with `duplicate: true` when Echo had already stored that id on the channel), or
   * `{channel, id, dropped: true, reason}` when a function dropped it. Rejects with the
   * EchoError Echo answered (`forbidden`, `too_large`, `function_failed`, ...), with `timeout`
   * when no answer came in time, with `queue_full` or `closed`.
   * While not connected, publishes wait in a bounded queue and are sent after reconnecting. A
   * publish whose connection dropped before its ack is sent again, with the same id, once
   * reconnected: Echo stores an id once per channel within its dedup window, so it is published
   * exactly once. One first sent `resendWithin` ago or more rejects with `disconnected` instead
   * (it may or may not have been published).
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
              : f.duplicate === true
                ? { channel, id, seq: f.seq, duplicate: true }
                : { channel, id, seq: f.seq },
          ),
        error: reject,
        lost: () => this._resend(entry),
        gone: () =>
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
   * Sends again, with its id, a publish whose connection dropped before its ack: at once on the
   * open connection, else first thing once reconnected. Rejected instead when the client is
   * closed, or when it was first sent `resendWithin` ago or more.
   */
  _resend(entry) {
    if (this._closedByUser) {
      entry.cancel(new EchoError("closed", "the client closed before Echo acknowledged the publish: it may or may not have been published", { channel: entry.channel, id: entry.id }));
      return;
    }
    if (Date.now() - entry.firstSent >= this._opts.resendWithin) {
      entry.gone();
      return;
    }
    const link = this._primary;
    if (this._state === "open" && link?.opened && !link.done && link.ws?.readyState === OPEN) link.request(entry);
    else this._resending.push(entry);
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

mixIn(EchoClient, orderingMethods, presenceMethods, reconnectMethods, renewalMethods);
