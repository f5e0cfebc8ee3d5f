// Incoming messages: each subscription's messages handed over in seq order, once, with gaps filled
// from history (a message that comes early is held up to `reorderHold`), and encrypted channels'
// messages opened on the way.

import { HISTORY_PAGE } from "./checks.js";
import { openEnvelope } from "./e2e.js";
import { EchoError } from "./errors.js";
import { normalizeMessages } from "./messages.js";
import { reportLater } from "./util.js";

/** Methods of `EchoClient` (see client.js). */
export const orderingMethods = {
  // Each subscription's messages are handed over in strictly increasing seq, once. On AWS each
  // message is fanned out by its own invocation, so a channel's messages may arrive in either
  // order: one that comes after a gap is held (`reorderHold`) for the ones before it. If they do
  // not come, history is read from the last seq delivered, page by page; what history no longer
  // has is reported with a `gap` event {channel, from, to} and skipped.
  _message(link, frame) {
    const sub = this._subs.get(frame.channel);
    if (!sub || link.subs.get(frame.channel) !== sub || !Number.isSafeInteger(frame.seq)) return;
    this._accept(link, sub, frame);
  },

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
  },

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
  },

  _resetOrder(sub) {
    clearTimeout(sub.holdTimer);
    sub.holdTimer = null;
    sub.waiting.clear();
    sub.filling = null;
  },

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
  },

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
  },

  _gap(sub, from, to) {
    this._emit("gap", { channel: sub.channel, from, to });
  },

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
  },

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
  },

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
  },

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
  },
};
