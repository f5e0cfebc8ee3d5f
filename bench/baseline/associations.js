// Associations in Echo's format: which functions run, in which order, on which channels.
//
//   {"apps": {"chat-demo": {"channels": {
//       "angry":  {"functions": ["angry", "emojify"], "onError": "reject", "timeoutMs": 1000},
//       "room-*": {"functions": ["profanity"], "onError": "pass"}
//   }}}}
//
// A key is an exact channel name or a pattern ending in `*`; an exact name beats every pattern and
// among patterns the longest prefix wins. Documents are validated as Echo validates them, with
// errors naming the place (`apps.chat-demo.channels.angry.functions[1]: unknown function "angri"`).
// An `encrypted` channel runs its `metadataFunctions` in place of `functions`, as Echo does; the
// baseline, like the system it stands for, does not check that its data is an encrypted envelope.
// Echo's hooks (`onConnect`, `onSubscribe`, `afterPresence`, `schedules`) are accepted, so that
// the demo's associations load, and run nowhere: the system the baseline stands for has none.

export const DEFAULT_TIMEOUT_MS = 1000;
export const MAX_TIMEOUT_MS = 25_000;
export const MAX_FUNCTIONS = 10;

const APP_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const CHANNEL = /^[A-Za-z0-9_.:@=-]{1,128}$/;
const PATTERN_PREFIX = /^[A-Za-z0-9_.:@=-]{1,127}$/;
const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function validApp(app) {
  return typeof app === "string" && APP_ID.test(app);
}

export function validChannel(channel) {
  return typeof channel === "string" && CHANNEL.test(channel);
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function unknownKeys(obj, allowed, path) {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new Error(`${path}: unknown field ${JSON.stringify(k)}`);
  }
}

// Parses and validates an associations document; `known(name)` says whether a function exists.
// Returns `Map<app, {exact: Map<channel, policy>, patterns: [prefix, policy][]}>` where a policy
// is `{functions, onError, timeoutMs}`.
export function parseAssociations(text, known) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`associations are not valid JSON: ${e.message}`);
  }
  if (!isObject(doc) || !isObject(doc.apps)) throw new Error(`associations need an "apps" object`);
  unknownKeys(doc, ["apps"], "associations");
  const apps = new Map();
  for (const [app, appDoc] of Object.entries(doc.apps)) {
    const appPath = `apps.${app}`;
    if (!APP_ID.test(app)) throw new Error(`${appPath}: invalid app id (1 to 64 of A-Z a-z 0-9 _ - .)`);
    if (!isObject(appDoc) || !isObject(appDoc.channels)) throw new Error(`${appPath}: needs a "channels" object`);
    unknownKeys(appDoc, ["channels", "onConnect", "onError", "timeoutMs", "schedules"], appPath);
    const exact = new Map();
    const patterns = [];
    for (const [key, ch] of Object.entries(appDoc.channels)) {
      const path = `${appPath}.channels.${key}`;
      if (key.startsWith("$")) throw new Error(`${path}: reserved channels cannot have functions`);
      const wildcard = key.endsWith("*");
      const prefix = wildcard ? key.slice(0, -1) : key;
      if (wildcard ? prefix !== "" && !PATTERN_PREFIX.test(prefix) : !CHANNEL.test(key)) {
        throw new Error(`${path}: invalid channel name or pattern`);
      }
      if (!isObject(ch)) throw new Error(`${path}: must be an object`);
      unknownKeys(ch, ["functions", "onError", "timeoutMs", "encrypted", "metadataFunctions", "onSubscribe", "afterPresence"], path);
      if (ch.encrypted !== undefined && typeof ch.encrypted !== "boolean") throw new Error(`${path}.encrypted: must be true or false`);
      const field = ch.encrypted ? "metadataFunctions" : "functions";
      const other = ch.encrypted ? "functions" : "metadataFunctions";
      if (ch[other] !== undefined && ch[other].length > 0) {
        throw new Error(`${path}.${other}: ${ch.encrypted ? "an encrypted channel takes metadataFunctions" : "metadataFunctions are for encrypted channels"}`);
      }
      const chain = ch[field] ?? [];
      if (!Array.isArray(chain)) throw new Error(`${path}.${field}: must be an array`);
      if (chain.length > MAX_FUNCTIONS) {
        throw new Error(`${path}.${field}: at most ${MAX_FUNCTIONS} functions per channel`);
      }
      chain.forEach((f, i) => {
        if (typeof f !== "string" || !FUNCTION_NAME.test(f)) {
          throw new Error(`${path}.${field}[${i}]: ${JSON.stringify(f)} is not a valid function name (1 to 64 of a-z A-Z 0-9 _ -)`);
        }
        if (!known(f)) throw new Error(`${path}.${field}[${i}]: unknown function ${JSON.stringify(f)}`);
      });
      const onError = ch.onError ?? "reject";
      if (onError !== "reject" && onError !== "pass") throw new Error(`${path}.onError: must be "reject" or "pass"`);
      const timeoutMs = ch.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
        throw new Error(`${path}.timeoutMs: must be 1 to ${MAX_TIMEOUT_MS}`);
      }
      const policy = { functions: [...chain], onError, timeoutMs };
      if (wildcard) patterns.push([prefix, policy]);
      else exact.set(key, policy);
    }
    patterns.sort((a, b) => b[0].length - a[0].length || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    apps.set(app, { exact, patterns });
  }
  return apps;
}

// The policy for `channel` of `app`, or undefined when no functions run there.
export function resolve(associations, app, channel) {
  const a = associations.get(app);
  if (a === undefined) return undefined;
  const p = a.exact.get(channel);
  if (p !== undefined) return p;
  for (const [prefix, policy] of a.patterns) {
    if (channel.startsWith(prefix)) return policy;
  }
  return undefined;
}
