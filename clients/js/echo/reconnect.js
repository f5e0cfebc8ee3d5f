// The connection's life cycle: opening, reconnecting with backoff and full jitter, resubscribing
// from the last seq each subscription handed over, and the close codes that end it.

import { EchoError, reconnectsAfter } from "./errors.js";
import { Link } from "./link.js";
import { attemptId } from "./refusal.js";
import { tokenExpiry } from "./token.js";
import { backoffDelay } from "./util.js";

/** Methods of `EchoClient` (see client.js). */
export const reconnectMethods = {
  _attempt() {
    const link = new Link(this, "primary");
    this._attempting = link;
    this._openLink(link);
  },

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
    link.attempt = this._opts.httpUrl ? attemptId() : undefined;
    if (link.attempt) url.searchParams.set("attempt", link.attempt);
    link.start(this._opts.WebSocket, url.toString(), this._opts.url);
  },

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
  },

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
  },

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
  },

  _scheduleRetry(error) {
    const attempt = ++this._retries;
    const delay = backoffDelay(attempt - 1, this._opts.backoffBase, this._opts.backoffMax);
    this._emit("retry", { attempt, delay, error: error ?? undefined });
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (!this._closedByUser) this._attempt();
    }, delay);
  },

  /** Ends the session: state `closed`, queued and waiting requests rejected. */
  _terminal(code, reason, error) {
    clearTimeout(this._retryTimer);
    clearTimeout(this._renewTimer);
    this._retryTimer = this._renewTimer = null;
    this._closedByUser = true;
    for (const link of [...this._links]) link.shut(1000, "closing");
    this._primary = this._next = this._attempting = null;
    const closedErr = error?.code === "closed" ? error : new EchoError("closed", `the connection closed: ${reason || code}`, { cause: error });
    for (const entry of this._resending.splice(0)) entry.cancel(closedErr);
    for (const entry of this._queue.splice(0)) entry.cancel(closedErr);
    // Subscriptions Echo never confirmed are given up; confirmed ones resume on the next connect().
    for (const [channel, sub] of this._subs) {
      if (sub.confirmed) continue;
      this._subs.delete(channel);
      for (const w of sub.waiters.splice(0)) w.reject(closedErr);
    }
    this._setState("closed", { code, reason, error });
    for (const w of this._connectWaiters.splice(0)) w.reject(error ?? closedErr);
  },

  _flushQueue(link) {
    for (const entry of this._resending.splice(0)) link.request(entry);
    for (const entry of this._queue.splice(0)) link.request(entry);
  },

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
  },
};
