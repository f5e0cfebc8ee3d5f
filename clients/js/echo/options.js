// The client's options, as given and with their defaults.

export const DEFAULTS = Object.freeze({
  requestTimeout: 10_000,
  connectTimeout: 10_000,
  backoffBase: 500,
  backoffMax: 30_000,
  maxReconnectAttempts: Infinity,
  retryInitialConnect: false,
  noReconnectCodes: null,
  maxQueuedPublishes: 1000,
  pingInterval: 5 * 60_000,
  maxConnectionAge: 2 * 60 * 60_000,
  renewBefore: 5 * 60_000,
  reorderHold: 250,
  resendWithin: 120_000,
});
