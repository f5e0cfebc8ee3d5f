// Types of the Echo JavaScript client (echo.js).

/** Codes of the `error` frames Echo sends (see the protocol in the repository's README). */
export type ProtocolErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "too_large"
  | "rate_limited"
  | "limit_exceeded"
  | "function_failed"
  | "internal"
  | "token_expired"
  | "session_ended";

/**
 * Codes of errors the client raises itself:
 * - `timeout`: no answer within `requestTimeout` (a publish may or may not have been published).
 * - `disconnected`: the connection dropped before the answer (likewise), or a request that needs
 *   an open connection was made without one.
 * - `closed`: the client is closed (by `close()`, or by a close code it does not reconnect after).
 * - `queue_full`: `maxQueuedPublishes` publishes are already waiting for a connection.
 * - `connect_failed`: a connection attempt failed (refused token, unreachable edge, tokenProvider threw).
 * - `refresh_failed`: tokenProvider threw when the token was due for a refresh (tried again in 5 s).
 * - `unsubscribed`: `unsubscribe()` was called before the subscription was confirmed.
 * - `handler_failed`: a subscription's handler threw (reported as an `error` event).
 * - `protocol`: Echo sent a frame that is not JSON.
 * - `e2e_unavailable`: end-to-end encryption needs WebCrypto (a secure context in browsers).
 */
export type ClientErrorCode =
  | "timeout"
  | "disconnected"
  | "closed"
  | "queue_full"
  | "connect_failed"
  | "unsubscribed"
  | "handler_failed"
  | "protocol"
  | "refresh_failed"
  | "e2e_unavailable";

export type EchoErrorCode = ProtocolErrorCode | ClientErrorCode;

/** Every `ProtocolErrorCode`. */
export const PROTOCOL_ERROR_CODES: readonly ProtocolErrorCode[];

/**
 * Whether the client reconnects after Echo closes the connection with `code` (unless
 * `noReconnectCodes` is given): after every code but 1000 and Echo's terminal range 4500–4999.
 */
export function reconnectsAfter(code: number): boolean;

export class EchoError extends Error {
  constructor(code: EchoErrorCode | string, message: string, details?: { channel?: string; id?: string; cause?: unknown });
  readonly name: "EchoError";
  /** A protocol or client error code; codes added by newer Echo versions come through as they are. */
  readonly code: EchoErrorCode | (string & {});
  /** The channel the refused frame named, when known. */
  readonly channel?: string;
  /** The id of the refused publish, when known. */
  readonly id?: string;
  /** A refused connect's HTTP status (401, 403, 503), when Echo's refusal could be read. */
  status?: number;
  readonly cause?: unknown;
  /** The error an Echo `error` frame describes. */
  static fromFrame(frame: { code?: string; message?: string; channel?: string; id?: string }): EchoError;
}

/** JSON values: what `data` may be. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A delivered message. */
export interface HistoryPage<T = Json> {
  channel: string;
  /** Oldest first. */
  messages: EchoMessage<T>[];
  /** Messages follow the last one: ask again with its seq as `since`. */
  more: boolean;
}

export interface EchoMessage<T = Json> {
  /** In a `history` page of an encrypted channel: why this message did not decrypt (`data` is then null). */
  decryptError?: DecryptReason;
  channel: string;
  /** Increases strictly per channel. */
  seq: number;
  /** The publisher's id for the message (or the one Echo made up). */
  id: string;
  /** The data after the channel's functions. */
  data: T;
  /** The publisher's `sub`. */
  from: string;
  /** Milliseconds since the epoch. */
  ts: number;
}

/** The minimum of the WebSocket API the client uses (browsers, Node.js, the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface EchoClientOptions {
  /** The edge's WebSocket URL, such as `ws://127.0.0.1:8080/` (`http(s)://` is turned into `ws(s)://`). The token is added as `?token=`. */
  url: string;
  /** A JWT, used for every connection. Give this or `tokenProvider`. */
  token?: string;
  /** Called before every connection attempt (first connect, reconnects, renewals) for a fresh token. */
  /** Called before every connection attempt, and ahead of the token's expiry to `refresh` it. */
  tokenProvider?: () => string | Promise<string>;
  /**
   * Where Echo's HTTP API answers, to read why a connect was refused (`GET /v1/connect-attempts/ID`):
   * default the WebSocket URL's origin over http(s), as the local edge serves it; on AWS the
   * stack's `HttpApiUrl`. `false`: never ask (refused connects then fail with `connect_failed`).
   */
  httpUrl?: string | false;
  /** WebSocket implementation; default `globalThis.WebSocket` (browsers, Node.js 22, Node.js 20 with `--experimental-websocket`). */
  WebSocket?: WebSocketConstructor;
  /** Milliseconds to wait for the answer to a request once sent. Default 10 000. */
  requestTimeout?: number;
  /** Milliseconds a connection attempt may take. Default 10 000. */
  connectTimeout?: number;
  /** Backoff between reconnect attempts: a random delay in [0, min(backoffMax, backoffBase × 2^(n−1))) before attempt n. Default 500. */
  backoffBase?: number;
  /** Default 30 000. */
  backoffMax?: number;
  /** Consecutive failed attempts before giving up (state `closed`). Default Infinity. */
  maxReconnectAttempts?: number;
  /** Keep retrying when the first connection attempt of `connect()` fails, instead of rejecting. Default false. */
  retryInitialConnect?: boolean;
  /** Close codes after which the client does not reconnect, in place of `reconnectsAfter`. Default null. */
  noReconnectCodes?: number[] | null;
  /** Publishes kept while not connected. Default 1000. */
  maxQueuedPublishes?: number;
  /** Send a ping after this many milliseconds without sending anything; 0 disables. Default 300 000 (5 min). */
  pingInterval?: number;
  /** The server's maximum connection age in milliseconds; 0 disables renewal. Default 7 200 000 (2 h). */
  maxConnectionAge?: number;
  /** Renew the connection this long (plus up to 20 % jitter) before `maxConnectionAge`. Default 300 000 (5 min). */
  renewBefore?: number;
  /** How long (ms) a message that came after a gap in seq waits for the earlier ones before they are read from history (default 250). */
  reorderHold?: number;
  /** A publish whose connection dropped before its ack is sent again, with its id, if first sent less than this many ms ago (default 120 000, Echo's dedup window); older ones reject with `disconnected`. 0: never. */
  resendWithin?: number;
}

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface CloseDetail {
  code: number;
  reason: string;
  error?: EchoError;
}

export interface EchoClientEvents {
  connecting: {};
  open: { reconnected: boolean };
  reconnecting: { code: number; reason: string };
  closed: CloseDetail;
  statechange: { state: ConnectionState; previous: ConnectionState } & Partial<CloseDetail> & { reconnected?: boolean };
  /** A reconnect attempt is scheduled after `delay` ms; `attempt` counts from 1 since the last open. */
  retry: { attempt: number; delay: number; error?: EchoError };
  /** The connection was replaced (make-before-break) without a gap. */
  renewed: {};
  /** Messages `from`..`to` of `channel` could not be recovered (history no longer has them). */
  gap: { channel: string; from: number; to: number };
  /** A message on an encrypted channel did not decrypt; it was not handed to the handler. */
  decrypt_error: DecryptErrorEvent;
  /** A user joined a channel subscribed with `presence: true`. */
  join: PresenceEvent;
  /** A user left a channel subscribed with `presence: true`. */
  leave: PresenceEvent;
  error: EchoError;
}

/**
 * A user's first subscription to a channel began (`join`) or its last ended (`leave`). `seq`
 * numbers the channel's presence events. With `resync`, the event comes from comparing a member
 * list read again (the first one, after a reconnect, or after events went missing) with the one
 * kept: it has no `seq`, and `ts` is when the list arrived.
 */
export interface PresenceEvent {
  channel: string;
  /** The user: its token's `sub`. */
  sub: string;
  /** Milliseconds since the epoch. */
  ts: number;
  seq?: number;
  resync?: true;
}

/** A user on a channel, with how many of its connections are subscribed. */
export interface Member {
  sub: string;
  connections: number;
}

/** A channel's member list, every page read, in `sub` order. */
export interface PresenceList {
  channel: string;
  members: Member[];
  /** The channel's last presence event the list includes. */
  seq: number;
}

export interface SubscribeOptions {
  /** Replay stored messages with a greater seq first. */
  since?: number;
  /** Keep the channel's member list (`members()`) and emit `join` and `leave` events. */
  presence?: boolean;
}

/**
 * Why a message did not decrypt: `unknown_key` (no key with its `kid`), `failed` (a wrong key
 * under the same id, or a tampered or truncated envelope), `not_envelope` (plaintext, or
 * something else), `not_json`.
 */
export type DecryptReason = "unknown_key" | "failed" | "not_envelope" | "not_json";

export interface DecryptErrorEvent {
  channel: string;
  seq: number;
  id: string;
  /** The publisher's `sub` and the time Echo accepted it: not encrypted. */
  from: string;
  ts: number;
  reason: DecryptReason;
  message: string;
}

/** PBKDF2-HMAC-SHA256 rounds of `E2EKey.fromPassphrase`: 600 000. */
export const PBKDF2_ROUNDS: number;

/** A channel key for end-to-end encryption (AES-256-GCM through WebCrypto). */
export class E2EKey {
  private constructor();
  /** The key id carried in each envelope (`kid`). */
  readonly id: string;
  /** The key's 32 bytes (a copy). */
  readonly bytes: Uint8Array;
  /** 32 bytes; `id` (1 to 64 bytes) defaults to the first 8 bytes of the key's SHA-256, in hex. */
  static fromRaw(bytes: Uint8Array | ArrayLike<number>, options?: { id?: string }): Promise<E2EKey>;
  /** PBKDF2-HMAC-SHA256, 600 000 rounds, over the salt "echo-e2e-v1:" + `salt`. */
  static fromPassphrase(passphrase: string, salt: string, options?: { id?: string }): Promise<E2EKey>;
}

/** The encrypted `data` of a message on an end-to-end encrypted channel. */
export interface Envelope {
  e2e: "v1";
  kid: string;
  /** The 12-byte nonce, base64. */
  iv: string;
  /** The ciphertext and its 16-byte tag, base64. */
  ct: string;
}

/** `data` sealed for `channel` under `key` (`iv` for test vectors only: never reuse a nonce). */
export function sealEnvelope(key: E2EKey, channel: string, data: Json | unknown, iv?: Uint8Array): Promise<Envelope>;
/** The data an envelope holds; rejects with an error whose `reason` is a `DecryptReason`. */
export function openEnvelope<T = Json>(keys: E2EKey[], channel: string, envelope: unknown): Promise<T>;

export interface Subscribed {
  channel: string;
  /** The channel's latest seq when the subscription was made. */
  seq: number;
}

export type PublishResult =
  /** `duplicate`: the id was already stored on the channel within Echo's dedup window, as `seq`. */
  | { channel: string; id: string; seq: number; duplicate?: true; dropped?: undefined }
  | { channel: string; id: string; dropped: true; reason: string };

export class EchoClient {
  constructor(options: EchoClientOptions);

  readonly state: ConnectionState;
  /** The channels subscribed to (or being subscribed to). */
  readonly channels: string[];
  /** The highest seq delivered on the channel (or its subscription's starting point). */
  lastSeq(channel: string): number | undefined;

  on<K extends keyof EchoClientEvents>(type: K, listener: (detail: EchoClientEvents[K]) => void): () => void;
  once<K extends keyof EchoClientEvents>(type: K, listener: (detail: EchoClientEvents[K]) => void): () => void;
  off<K extends keyof EchoClientEvents>(type: K, listener: (detail: EchoClientEvents[K]) => void): void;

  /**
   * Opens the connection. A refused handshake rejects with Echo's refusal, read from the HTTP API
   * (see `httpUrl`), its HTTP status in `status`: `unauthorized` (401: a bad, expired or revoked
   * token), `forbidden` (403: the app's `onConnect` hook denied; `message` is its reason) or
   * `limit_exceeded` (503: the app is full). When the refusal cannot be read (no HTTP API there,
   * or a failure that was no refusal), it rejects with `connect_failed`.
   */
  connect(): Promise<void>;
  close(code?: number, reason?: string): Promise<void>;
  /**
   * Subscribes. Rejects with `EchoError` `forbidden` when the token's permissions exclude the
   * channel or the channel's `onSubscribe` hook denies (`message` is then the hook's reason);
   * nothing of the channel is delivered.
   */
  subscribe<T = Json>(channel: string, handler: (message: EchoMessage<T>) => void, options?: SubscribeOptions): Promise<Subscribed>;
  unsubscribe(channel: string): Promise<void>;
  publish(channel: string, data: Json | unknown, options?: { id?: string }): Promise<PublishResult>;
  /**
   * Encrypts `channel` end to end: publishes with the first key, delivery and history decrypted
   * with the key each envelope names. An empty list ends it.
   */
  encryptChannel(channel: string, keys: E2EKey[]): void;
  /** A page of stored messages, cut by `limit` and to fit one frame; `more` when messages follow. */
  history<T = Json>(channel: string, options?: { since?: number; limit?: number }): Promise<HistoryPage<T>>;
  /** The channel's members, every page read. Needs permission to subscribe to the channel. */
  presence(channel: string): Promise<PresenceList>;
  /** The member list kept for a subscription made with `presence: true`; `undefined` otherwise or before the first list. */
  members(channel: string): Member[] | undefined;
  /** Resolves with the round trip in milliseconds. */
  ping(): Promise<number>;
  renew(): Promise<void>;
}
