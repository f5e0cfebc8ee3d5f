// Small things several parts of the client share: ids, backoff, reporting an error later.

export function randomId() {
  const bytes = new Uint8Array(8);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function backoffDelay(attempt, base, max) {
  const cap = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.random() * cap);
}

/** Throws `err` outside the current call stack, as an uncaught error would be. */
export function reportLater(err) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(err);
  else
    setTimeout(() => {
      throw err;
    }, 0);
}
