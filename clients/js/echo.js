// Echo client for browsers and Node.js 20+: one WebSocket to an Echo edge (or API Gateway),
// channel subscriptions that survive reconnects without gaps or repeats, acknowledged publishes,
// history, presence (member lists kept across reconnects, join and leave events), end-to-end
// encrypted channels, keepalive and planned renewal before the connection's maximum age.
//
// No dependencies. The wire protocol is described in the repository's README ("Protocol").
//
// This file is the client's public face; each part lives in a file of its own under echo/:
//   client.js     EchoClient, the public API: connect, subscribe, unsubscribe, publish, history,
//                 ping, close, events (and the requests behind them)
//   ordering.js   incoming messages in seq order, once, gaps filled from history
//   presence.js   member lists and join/leave events
//   reconnect.js  the connection's life cycle: reconnects with backoff, resubscribing from the last seq
//   renewal.js    token refresh, and new connections before the maximum age
//   link.js       one WebSocket: request/answer matching, timeouts, keepalive
//   e2e.js        end-to-end encryption keys and envelopes (AES-256-GCM through WebCrypto)
//   errors.js     EchoError and the protocol's codes
//   refusal.js    why a connect was refused, read from the HTTP API
//   token.js      a token's expiry, and when a failed refresh is tried again
//   checks.js, options.js, messages.js, util.js, mixin.js: what those share
// Browsers load it from the edge (`/echo.js`, which imports `/echo/*.js`); Node.js 20+ imports it.

export { EchoClient } from "./echo/client.js";
export { E2EKey, PBKDF2_ROUNDS, openEnvelope, sealEnvelope } from "./echo/e2e.js";
export { EchoError, PROTOCOL_ERROR_CODES, reconnectsAfter } from "./echo/errors.js";
