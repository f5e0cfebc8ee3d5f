// Echo chat demo: one page on the Echo JavaScript client (clients/js/echo.js, served by the edge
// at /echo.js). The client keeps the connection alive, resubscribes after a reconnect from the
// last seq seen, and de-duplicates by seq; this file is the chat UI around it.

import { E2EKey, EchoClient } from "/echo.js";

const APP_ID = "chat-demo";
const HISTORY_LIMIT = 50;
const MAX_RENDERED = 500;
const DISCONNECTED_AFTER_ATTEMPTS = 5;
const NOTICE_MS = 8000;
const NAME_KEY = "echo-chat-name";

const CHANNELS = [
  { name: "boring", desc: "Plain delivery: no functions touch your text." },
  { name: "angry", desc: "Shouts your text, adds some fury." },
  { name: "backwards", desc: "Reverses your text." },
  { name: "robot", desc: "Rewrites your text the way a robot would say it." },
  {
    name: "secret",
    desc: "End-to-end encrypted: only those with the room's passphrase read it.",
    encrypted: true,
  },
  {
    name: "members",
    desc: "Members only: a function decides who may enter (ada, grace and linus).",
  },
];

/** What the room's key is derived with besides the passphrase (see docs/security.md). */
const SECRET_SALT = "chat-demo:secret";

const $ = (id) => document.getElementById(id);
const els = {
  name: $("name"),
  channels: $("channels"),
  status: $("status"),
  statusDot: $("status-dot"),
  title: $("channel-title"),
  desc: $("channel-desc"),
  wrap: $("messages-wrap"),
  empty: $("empty"),
  denied: $("denied"),
  messages: $("messages"),
  notices: $("notices"),
  people: $("people"),
  unlock: $("unlock"),
  passphrase: $("passphrase"),
  lockState: $("lock-state"),
  peopleCount: $("people-count"),
  composer: $("composer"),
  input: $("message-input"),
  send: $("send-button"),
};

const state = {
  /** The name behind the token of the current connection (the `from` of our messages). */
  sub: "",
  channel: channelFromHash() ?? "boring",
  status: "connecting",
  /** Reconnect attempts since the connection was lost. */
  attempt: 0,
  /** Counts channel joins, so a slow answer for a channel left meanwhile is ignored. */
  join: 0,
  /** Rendered messages of the current channel, by seq. */
  bySeq: new Map(),
  /** Encrypted channels this page holds a key for. */
  unlocked: new Set(),
  /** Encrypted channels where a message opened with the key: the passphrase is right. */
  opened: new Set(),
  /** Encrypted channels where messages fail to open and none opened: a wrong passphrase. */
  wrongKey: new Set(),
};

function isEncrypted(channel) {
  return CHANNELS.some((c) => c.name === channel && c.encrypted);
}

// ---------------------------------------------------------------- helpers

function randomId() {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function defaultName() {
  const n = new Uint16Array(1);
  crypto.getRandomValues(n);
  return `guest-${1000 + (n[0] % 9000)}`;
}

function cleanName(raw) {
  const name = String(raw ?? "").trim().replace(/\s+/g, " ").slice(0, 40);
  return name || defaultName();
}

// The name is kept per window (sessionStorage): a reload keeps it, and a second window of the same
// browser is a second person unless its user picks the same name.
function loadName() {
  try {
    const saved = sessionStorage.getItem(NAME_KEY);
    if (saved) return cleanName(saved);
  } catch {
    // Storage can be unavailable (privacy modes); a fresh name will do.
  }
  return defaultName();
}

function saveName(name) {
  try {
    sessionStorage.setItem(NAME_KEY, name);
  } catch {
    // Not fatal.
  }
}

function channelFromHash() {
  const name = decodeURIComponent(location.hash.replace(/^#/, ""));
  return CHANNELS.some((c) => c.name === name) ? name : null;
}

function formatTime(ts) {
  const d = new Date(typeof ts === "number" ? ts : Date.now());
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- UI: status, notices

function setStatus(status) {
  state.status = status;
  els.status.textContent = status;
  els.status.dataset.state = status;
  els.statusDot.dataset.state = status;
  document.body.dataset.status = status;
  const open = status === "connected";
  els.send.disabled = !open;
}

function notice(text, kind = "error") {
  const item = el("div", `notice notice-${kind}`, text);
  item.dataset.testid = "notice";
  item.setAttribute("role", kind === "error" ? "alert" : "status");
  els.notices.append(item);
  while (els.notices.children.length > 4) els.notices.firstElementChild.remove();
  setTimeout(() => {
    item.classList.add("notice-leaving");
    setTimeout(() => item.remove(), 400);
  }, NOTICE_MS);
}

// ---------------------------------------------------------------- UI: channels

function renderChannels() {
  els.channels.replaceChildren();
  for (const ch of CHANNELS) {
    const li = el("li");
    const btn = el("button", "channel");
    btn.type = "button";
    btn.dataset.testid = `channel-${ch.name}`;
    btn.dataset.channel = ch.name;
    btn.append(el("span", "channel-hash", "#"), el("span", "channel-name", ch.name));
    btn.title = ch.desc;
    btn.addEventListener("click", () => switchChannel(ch.name));
    li.append(btn);
    els.channels.append(li);
  }
  highlightChannel();
}

function highlightChannel() {
  for (const btn of els.channels.querySelectorAll("button.channel")) {
    const active = btn.dataset.channel === state.channel;
    btn.classList.toggle("active", active);
    if (active) btn.setAttribute("aria-current", "true");
    else btn.removeAttribute("aria-current");
  }
  const info = CHANNELS.find((c) => c.name === state.channel);
  els.unlock.hidden = !info?.encrypted;
  const lock = state.wrongKey.has(state.channel)
    ? ["wrong", "wrong passphrase"]
    : state.unlocked.has(state.channel)
      ? ["unlocked", "unlocked"]
      : ["locked", "locked"];
  els.lockState.dataset.state = lock[0];
  els.lockState.textContent = lock[1];
  els.lockState.title = lock[0] === "wrong" ? "Nothing in this room opens with that passphrase" : "";
  els.title.textContent = `${info?.encrypted ? "🔒 " : ""}#${state.channel}`;
  els.desc.textContent = info ? info.desc : "";
  els.input.placeholder = `Message #${state.channel}`;
  els.messages.dataset.channel = state.channel;
}

// ---------------------------------------------------------------- UI: messages

function clearMessages() {
  els.denied.hidden = true;
  state.bySeq.clear();
  els.messages.replaceChildren();
  els.messages.dataset.loaded = "false";
  updateEmpty();
}

function updateEmpty() {
  els.empty.hidden = state.bySeq.size > 0 || els.messages.dataset.loaded !== "true";
}

function nearBottom() {
  const w = els.wrap;
  return w.scrollHeight - w.scrollTop - w.clientHeight < 80;
}

function scrollToBottom() {
  els.wrap.scrollTop = els.wrap.scrollHeight;
}

/** An envelope this page cannot open: it holds no key for the channel. */
function isEnvelope(data) {
  return Boolean(data && typeof data === "object" && data.e2e === "v1" && typeof data.ct === "string");
}

function messageText(data) {
  if (isEnvelope(data)) return "🔒 Encrypted message: enter the room's passphrase to read it";
  if (data && typeof data === "object" && !Array.isArray(data) && typeof data.text === "string") {
    return data.text;
  }
  if (typeof data === "string") return data;
  try {
    return JSON.stringify(data);
  } catch {
    return String(data);
  }
}

function displayName(msg) {
  const data = msg.data;
  if (data && typeof data === "object" && typeof data.name === "string" && data.name.trim()) {
    return data.name.trim().slice(0, 40);
  }
  return typeof msg.from === "string" && msg.from ? msg.from : "someone";
}

/** Adds a message of the current channel, in seq order, once per seq. */
function addMessage(msg) {
  if (!msg || msg.channel !== state.channel || typeof msg.seq !== "number") return false;
  if (state.bySeq.has(msg.seq)) return false;
  // A message of an encrypted room that opened: the passphrase is the room's.
  if (state.unlocked.has(msg.channel) && !msg.locked && !isEnvelope(msg.data) && !state.opened.has(msg.channel)) {
    state.opened.add(msg.channel);
    state.wrongKey.delete(msg.channel);
    highlightChannel();
  }

  const mine = msg.from === state.sub;
  const li = el("li", mine ? "message mine" : "message");
  if (msg.locked || isEnvelope(msg.data)) li.classList.add("locked");
  li.dataset.testid = "message";
  li.dataset.seq = String(msg.seq);
  if (typeof msg.id === "string") li.dataset.id = msg.id;

  const name = displayName(msg);
  const avatar = el("span", "avatar", name.slice(0, 1).toUpperCase());
  avatar.style.setProperty("--hue", String(hue(name)));
  avatar.setAttribute("aria-hidden", "true");

  const body = el("div", "bubble");
  const meta = el("div", "meta");
  const who = el("span", "who", name);
  if (msg.from && msg.from !== name) who.title = `from ${msg.from}`;
  const time = el("time", "time", formatTime(msg.ts));
  if (typeof msg.ts === "number") time.dateTime = new Date(msg.ts).toISOString();
  meta.append(who, time);
  body.append(meta, el("div", "text", messageText(msg.data)));
  li.append(avatar, body);

  // Insert by seq; live messages almost always go last.
  let before = null;
  for (let node = els.messages.lastElementChild; node; node = node.previousElementSibling) {
    if (Number(node.dataset.seq) < msg.seq) break;
    before = node;
  }
  els.messages.insertBefore(li, before);
  state.bySeq.set(msg.seq, li);

  while (state.bySeq.size > MAX_RENDERED) {
    const first = els.messages.firstElementChild;
    state.bySeq.delete(Number(first.dataset.seq));
    first.remove();
  }
  updateEmpty();
  return true;
}

function hue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

// ---------------------------------------------------------------- UI: who is in the room

/** Shows the member list the client keeps for the current channel (its presence subscription). */
function renderPeople() {
  const members = client.members(state.channel) ?? [];
  const items = members.map(({ sub }) => {
    const li = el("li", "person");
    li.dataset.testid = "person";
    li.dataset.sub = sub;
    const avatar = el("span", "avatar", sub.slice(0, 1).toUpperCase());
    avatar.style.setProperty("--hue", String(hue(sub)));
    avatar.setAttribute("aria-hidden", "true");
    li.append(avatar, el("span", "person-name", sub));
    if (sub === state.sub) li.append(el("span", "person-you", "(you)"));
    return li;
  });
  els.people.replaceChildren(...items);
  els.peopleCount.textContent = String(members.length);
}

// ---------------------------------------------------------------- connection

async function fetchToken(sub) {
  const url = `/dev/token?app=${encodeURIComponent(APP_ID)}&sub=${encodeURIComponent(sub)}`;
  const res = await fetch(url, { cache: "no-store" });
  if (!res.ok) throw new Error(`token request failed: HTTP ${res.status}`);
  const body = await res.json();
  if (!body || typeof body.token !== "string") throw new Error("token response has no token");
  return body.token;
}

const client = new EchoClient({
  url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/`,
  // Called for every connection attempt: a changed name takes effect on the next connection.
  tokenProvider: () => {
    const sub = cleanName(els.name.value);
    state.sub = sub;
    return fetchToken(sub);
  },
  retryInitialConnect: true,
  // A chat page stays in the conversation: reconnect whatever closed the connection.
  noReconnectCodes: [],
});

/** What to show for the client's state. */
function showState(clientState) {
  if (clientState === "open") {
    state.attempt = 0;
    setStatus("connected");
  } else if (clientState === "closed" || navigator.onLine === false) {
    setStatus("disconnected");
  } else if (clientState === "reconnecting" && state.attempt > DISCONNECTED_AFTER_ATTEMPTS) {
    setStatus("disconnected");
  } else {
    setStatus(clientState);
  }
}

client.on("statechange", ({ state: s }) => showState(s));
// A message of an encrypted room that this page's key does not open: shown as such, never as text.
client.on("decrypt_error", (e) => {
  if (e.channel !== state.channel) return;
  // Nothing has opened with this passphrase, and this did not: say the passphrase is wrong.
  if (state.unlocked.has(e.channel) && !state.opened.has(e.channel) && !state.wrongKey.has(e.channel)) {
    state.wrongKey.add(e.channel);
    highlightChannel();
  }
  const text = "🔒 Could not decrypt this message (a different passphrase?)";
  addMessage({ channel: e.channel, seq: e.seq, id: e.id, from: e.from, ts: e.ts, data: { text }, locked: true });
});
for (const type of ["join", "leave"]) {
  client.on(type, ({ channel }) => {
    if (channel === state.channel) renderPeople();
  });
}
client.on("retry", ({ attempt }) => {
  state.attempt = attempt;
  showState(client.state);
});
client.on("reconnecting", ({ code }) => {
  if (code === 4500) notice("The server closed this connection; reconnecting.", "info");
});
client.on("error", (err) => {
  if (err.code === "connect_failed") {
    console.warn("echo chat:", err.message);
    return;
  }
  const where = err.channel ? ` (#${err.channel})` : "";
  notice(`${err.code}${where}: ${err.message}`);
});

/** Shows a message of the current channel; the client hands each seq over once. */
function onMessage(msg) {
  if (msg.channel !== state.channel) return;
  const stick = nearBottom() || msg.from === state.sub;
  if (addMessage(msg) && stick) scrollToBottom();
}

/**
 * Subscribes to the current channel, then shows its latest messages from history. Messages
 * published after the subscription arrive through the handler (also after reconnects, which the
 * client resumes from the last seq seen); the two overlap only by seq, which addMessage ignores.
 */
async function join() {
  const channel = state.channel;
  const join = ++state.join;
  try {
    const { seq } = await client.subscribe(channel, onMessage, { presence: true });
    if (join !== state.join) return;
    if (seq > 0) await loadHistory(channel, join, seq);
    markLoaded();
  } catch (err) {
    if (join !== state.join || err.code === "unsubscribed" || err.code === "closed") return;
    if (err.code === "forbidden") {
      // Refused, here by the room's onSubscribe function: say why, in the room.
      els.denied.textContent = `You may not enter #${channel}: ${err.message}`;
      els.denied.hidden = false;
      els.empty.hidden = true;
      return;
    }
    notice(`Could not join #${channel}: ${err.message}`);
  }
}

async function loadHistory(channel, join, latest) {
  let since = Math.max(0, latest - HISTORY_LIMIT);
  for (;;) {
    try {
      // A page is cut to fit one frame: large messages may take several.
      const page = await client.history(channel, { since, limit: HISTORY_LIMIT });
      if (join !== state.join) return;
      for (const msg of page.messages) addMessage(msg);
      const last = page.messages.at(-1)?.seq;
      if (!page.more || last === undefined || last >= latest) return;
      since = last;
    } catch (err) {
      if (err.code !== "disconnected" && err.code !== "timeout") throw err;
      // The connection dropped in between: ask again once it is back.
      await new Promise((resolve) => client.once("open", resolve));
      if (join !== state.join) return;
    }
  }
}

function switchChannel(name) {
  if (name === state.channel) return;
  const old = state.channel;
  state.channel = name;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  highlightChannel();
  clearMessages();
  renderPeople();
  client.unsubscribe(old).catch((err) => console.warn("echo chat: unsubscribe:", err));
  join();
  els.input.focus();
}

function markLoaded() {
  els.messages.dataset.loaded = "true";
  updateEmpty();
  scrollToBottom();
}

// ---------------------------------------------------------------- composer

async function onSubmit(event) {
  event.preventDefault();
  const text = els.input.value.trim();
  if (!text) return;
  if (client.state !== "open") {
    notice("Not connected: the message was not sent.");
    return;
  }
  const channel = state.channel;
  if (isEncrypted(channel) && !state.unlocked.has(channel)) {
    notice(`#${channel} is encrypted: enter its passphrase to write there.`, "warn");
    return;
  }
  const name = cleanName(els.name.value);
  els.input.value = "";
  els.input.focus();
  try {
    const ack = await client.publish(channel, { text, name });
    if (ack.dropped) {
      const why = ack.reason ? `: ${ack.reason}` : "";
      notice(`Message dropped on #${channel}${why}`, "warn");
    }
  } catch (err) {
    notice(`${err.code}${err.channel ? ` (#${err.channel})` : ""}: ${err.message}`);
  }
}

/** Derives the room's key from the passphrase and shows the room again, decrypted. */
async function onUnlock(event) {
  event.preventDefault();
  const channel = state.channel;
  const passphrase = els.passphrase.value;
  if (!isEncrypted(channel) || !passphrase) return;
  try {
    const key = await E2EKey.fromPassphrase(passphrase, SECRET_SALT);
    client.encryptChannel(channel, [key]);
    state.unlocked.add(channel);
    state.opened.delete(channel);
    state.wrongKey.delete(channel);
  } catch (err) {
    notice(`Could not use the passphrase: ${err.message}`);
    return;
  }
  els.passphrase.value = "";
  highlightChannel();
  // Read the room again, now decrypted.
  clearMessages();
  await client.unsubscribe(channel).catch(() => {});
  if (state.channel === channel) join();
}

function onNameChange() {
  const name = cleanName(els.name.value);
  els.name.value = name;
  saveName(name);
  if (name === state.sub) return;
  // A new token for the new name: replace the connection without missing a message.
  if (client.state === "open") client.renew().catch((err) => console.warn("echo chat: renew:", err));
  else client.connect().catch(() => {});
}

// ---------------------------------------------------------------- start

function start() {
  els.name.value = loadName();
  saveName(els.name.value);
  renderChannels();
  clearMessages();
  renderPeople();
  setStatus("connecting");

  els.composer.addEventListener("submit", onSubmit);
  els.unlock.addEventListener("submit", onUnlock);
  els.name.addEventListener("change", onNameChange);
  els.name.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      els.input.focus();
    }
  });
  window.addEventListener("hashchange", () => {
    const ch = channelFromHash();
    if (ch) switchChannel(ch);
  });
  window.addEventListener("online", () => {
    if (client.state !== "open") client.connect().catch(() => {});
  });
  window.addEventListener("offline", () => showState(client.state));
  window.addEventListener("pagehide", () => {
    client.close(1000, "page closed");
  });
  window.addEventListener("pageshow", (e) => {
    // Back from the page cache: the client resumes its subscription from the last seq seen.
    if (e.persisted) client.connect().catch(() => {});
  });

  join();
  client.connect().catch((err) => console.warn("echo chat:", err));
}

start();
