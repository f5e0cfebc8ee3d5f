// One WebSocket: request and answer matching, timeouts, keepalive.

import { EchoError } from "./errors.js";
import { explainRefusal } from "./refusal.js";
import { REFRESH_RETRY_MS } from "./token.js";

export const OPEN = 1;
/** How long `close()` waits for the socket's closing handshake before resolving anyway. */
export const CLOSE_WAIT_MS = 1000;


/**
 * One WebSocket. Roles: `primary` (requests go here), `next` (replacing the primary),
 * `retiring` (replaced; closes once its requests are answered).
 */
export class Link {
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
      if (!this.opened) this._refused(ev?.message || ev?.error?.message || "connection failed");
    };
    ws.onclose = (ev) => {
      if (!this.opened) this._refused(`closed with code ${ev.code}`);
      else this._end({ code: ev.code, reason: ev.reason ?? "" });
    };
  }

  /** The socket failed before it opened: ends with the refusal Echo kept, if it kept one. */
  _refused(detail) {
    if (this.explaining || this.done) return;
    this.explaining = true;
    const fallback = this._connectError(detail);
    explainRefusal(this.opts.httpUrl, this.attempt).then((err) => this._end({ error: err ?? fallback }));
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

  /** `entry`: {kind, channel?, id?, text, reply, error, lost, timeout, late?, firstSent?}. */
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
    entry.firstSent ??= Date.now();
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
    if (err.code === "session_ended") {
      // The app ended this user's sessions: the session is over whatever close follows (API
      // Gateway's carries no code), so it ends here as a 4501 close would end it.
      this.client._emit("error", err);
      this.shut(1000, "session ended", { code: 4501, reason: err.message });
      return;
    }
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
