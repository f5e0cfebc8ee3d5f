// Checks of what the application passes in: channel names, seqs, sizes, option values.

import { EchoError } from "./errors.js";

/** Channel names Echo accepts: 1–128 of `A-Z a-z 0-9 _ - . : @ =`, or the reserved `$status`. */
export const CHANNEL_RE = /^(?:\$status|[A-Za-z0-9_\-.:@=]{1,128})$/;
/** Longest publish id, in bytes. */
export const MAX_ID_BYTES = 128;
/** Largest `limit` a `history` request may ask for. */
export const HISTORY_PAGE = 1000;

export function checkChannel(channel) {
  if (typeof channel !== "string" || !CHANNEL_RE.test(channel)) {
    return new EchoError(
      "bad_request",
      `invalid channel name ${JSON.stringify(channel)}: use 1 to 128 of A-Z a-z 0-9 _ - . : @ =`,
    );
  }
  return null;
}

export function checkSeq(value, what) {
  if (value === undefined) return null;
  if (!Number.isSafeInteger(value) || value < 0) {
    return new EchoError("bad_request", `${what} must be a non-negative integer`);
  }
  return null;
}

export function byteLength(text) {
  return new TextEncoder().encode(text).length;
}

export function positive(value, name, { zeroOk = false } = {}) {
  if (typeof value !== "number" || Number.isNaN(value) || value < 0 || (!zeroOk && value === 0)) {
    throw new TypeError(`EchoClient: ${name} must be a ${zeroOk ? "non-negative" : "positive"} number`);
  }
  return value;
}
