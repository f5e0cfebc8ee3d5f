// Tokens as the client handles them: when one expires, and when a failed refresh is tried again.

/** How long after a failed refresh it is tried again, while the old token lasts. */
export const REFRESH_RETRY_MS = 5000;

/** The `exp` claim of a JWT (seconds), read without checking the signature; undefined otherwise. */
export function tokenExpiry(token) {
  try {
    const part = token.split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = JSON.parse(json).exp;
    return Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}
