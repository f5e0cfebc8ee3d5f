// Renewal: a new token on the same connection (`refresh`), and a new connection opened before the
// old one reaches its maximum age (make-before-break).

import { EchoError } from "./errors.js";
import { Link } from "./link.js";
import { backoffDelay } from "./util.js";

/** Methods of `EchoClient` (see client.js). */
export const renewalMethods = {
  /**
   * Replaces the connection without a gap (make-before-break): opens a new one with a fresh
   * token, resubscribes every channel from its last seq, then closes the old one once its
   * pending requests are answered. Done automatically before `maxConnectionAge`; call it after
   * the identity behind `tokenProvider` changed. Resolves when the new connection took over.
   */
  renew() {
    return this._startHandover(true);
  },

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
  },

  _retryRenew(failed) {
    const primary = this._primary;
    if (!primary?.opened || this._next || failed.manual) return;
    const delay = backoffDelay(this._renewFailures++, this._opts.backoffBase, this._opts.backoffMax);
    clearTimeout(this._renewTimer);
    this._renewTimer = setTimeout(() => {
      this._renewTimer = null;
      if (this._primary === primary) this._startHandover().catch(() => {});
    }, delay);
  },

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
  },

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
  },

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
  },
};
