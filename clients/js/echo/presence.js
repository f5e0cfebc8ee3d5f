// Presence: member lists read and kept across reconnects, and join and leave events applied in
// seq order.

import { checkChannel } from "./checks.js";
import { EchoError } from "./errors.js";

/** Pages of a member list read at most, of up to 500 members each. */
export const PRESENCE_PAGES = 1000;

/** The presence state of a subscription made with `presence: true`. */
export function newPresence() {
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

/** Methods of `EchoClient` (see client.js). */
export const presenceMethods = {
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
  },

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
  },

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
  },

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
  },

  /** A `join` or `leave` frame. */
  _presenceEvent(link, f) {
    const sub = this._subs.get(f.channel);
    const p = sub?.presence;
    if (!p || link.subs.get(f.channel) !== sub || !Number.isSafeInteger(f.seq) || typeof f.sub !== "string") return;
    if (p.seq !== undefined && f.seq <= p.seq) return;
    p.held.set(f.seq, f);
    if (!p.syncing) this._drainPresence(link, sub);
  },

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
  },
};
