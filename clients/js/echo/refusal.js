// Why a connect was refused. Echo refuses a connect before the upgrade (401 for a bad token, 403
// when the app's onConnect hook denies, 503 when the app is full), with the reason in the body,
// but WebSocket APIs report any refused upgrade as a bare failure. So each attempt is named
// (`&attempt=ID` in the connect URL); Echo keeps a refusal for a minute, and the HTTP API's
// `GET /v1/connect-attempts/ID` hands it back.

import { EchoError } from "./errors.js";

/** How long to wait for the refusal before failing with what the socket said. */
const EXPLAIN_TIMEOUT_MS = 3000;

/** A new attempt id: 128 random bits, base64url (22 characters); none without a secure random source. */
export function attemptId() {
  if (!globalThis.crypto?.getRandomValues) return undefined;
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** The HTTP API's base URL for the WebSocket `url`: its origin, over http(s). */
export function defaultHttpUrl(url) {
  try {
    return new URL(url.replace(/^ws/i, "http")).origin;
  } catch {
    return undefined;
  }
}

/**
 * The refusal of `attempt` as an `EchoError` (the refusal's code and message, with `status`), or
 * `undefined` when none can be read (no HTTP API there, no `fetch`, the attempt was not refused).
 */
export async function explainRefusal(httpUrl, attempt) {
  if (!httpUrl || !attempt || typeof globalThis.fetch !== "function") return undefined;
  try {
    const res = await globalThis.fetch(`${httpUrl}/v1/connect-attempts/${attempt}`, {
      signal: AbortSignal.timeout(EXPLAIN_TIMEOUT_MS),
    });
    if (!res.ok) return undefined;
    const body = await res.json();
    if (typeof body?.code !== "string" || typeof body?.message !== "string") return undefined;
    const err = new EchoError(body.code, body.message);
    if (Number.isInteger(body.status)) err.status = body.status;
    return err;
  } catch {
    return undefined;
  }
}
