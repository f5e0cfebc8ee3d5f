// The codes of Echo's `error` frames and close frames, and `EchoError`, the error every
// failure of the client is.

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
  "session_ended",
]);

/**
 * Whether the client reconnects after Echo closes the connection with `code` (unless the app
 * gives `noReconnectCodes`): after every code but 1000 and Echo's terminal range 4500–4999.
 * Echo's 4000–4499 are codes to reconnect after, so a code added there later is understood too.
 */
export function reconnectsAfter(code) {
  return code !== 1000 && !(code >= 4500 && code <= 4999);
}

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
