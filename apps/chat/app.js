// Echo chat demo: one page, one WebSocket, no dependencies.
//
// Protocol (JSON text frames): the client sends frames with an `action`
// (subscribe, unsubscribe, publish, history, ping); the server answers with
// frames that carry a `type` (subscribed, unsubscribed, message, ack, history,
// pong, error). Every message of a channel has a seq that only grows, which is
// what history, de-duplication and resuming after a reconnect are built on.

const APP_ID = "chat-demo";
const HISTORY_LIMIT = 50;
const MAX_RENDERED = 500;
const PING_EVERY_MS = 5 * 60 * 1000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const DISCONNECTED_AFTER_ATTEMPTS = 5;
const NOTICE_MS = 8000;
const NAME_KEY = "echo-chat-name";

const CHANNELS = [
  { name: "boring", desc: "Plain delivery: no functions touch your text." },
  { name: "angry", desc: "Shouts your text, adds some fury." },
  { name: "backwards", desc: "Reverses your text." },
  { name: "robot", desc: "Rewrites your text the way a robot would say it." },
];

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
  messages: $("messages"),
  notices: $("notices"),
  composer: $("composer"),
  input: $("message-input"),
  send: $("send-button"),
};

const state = {
  /** The name used as the token's `sub` for the current connection. */
  sub: "",
  channel: channelFromHash() ?? "boring",
  ws: null,
  status: "connecting",
  everConnected: false,
  attempt: 0,
  reconnectTimer: 0,
  pingTimer: 0,
  unloading: false,
  /** Rendered messages of the current channel, by seq. */
  bySeq: new Map(),
  /** Highest seq seen on the current channel (0 = none). */
  lastSeq: 0,
};

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

function loadName() {
  try {
    const saved = localStorage.getItem(NAME_KEY);
    if (saved) return cleanName(saved);
  } catch {
    // Storage can be unavailable (privacy modes); a fresh name will do.
  }
  return defaultName();
}

function saveName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
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
  els.title.textContent = `#${state.channel}`;
  els.desc.textContent = info ? info.desc : "";
  els.input.placeholder = `Message #${state.channel}`;
  els.messages.dataset.channel = state.channel;
}

// ---------------------------------------------------------------- UI: messages

function clearMessages() {
  state.bySeq.clear();
  state.lastSeq = 0;
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

function messageText(data) {
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

  const mine = msg.from === state.sub;
  const li = el("li", mine ? "message mine" : "message");
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
  if (msg.seq > state.lastSeq) state.lastSeq = msg.seq;

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

// ---------------------------------------------------------------- socket

function send(frame) {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(frame));
  return true;
}

async function fetchToken(sub) {
  const url = `/dev/token?app=${encodeURIComponent(APP_ID)}&sub=${encodeURIComponent(sub)}`;
  const res = await fetch(url, { cache: "no-store" });
  if (!res.ok) throw new Error(`token request failed: HTTP ${res.status}`);
  const body = await res.json();
  if (!body || typeof body.token !== "string") throw new Error("token response has no token");
  return body.token;
}

async function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = 0;
  const sub = cleanName(els.name.value);
  setStatus(retryStatus());

  let token;
  try {
    token = await fetchToken(sub);
  } catch (err) {
    console.warn("echo chat:", err);
    scheduleReconnect();
    return;
  }
  if (state.unloading) return;

  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/?token=${encodeURIComponent(token)}`);
  state.ws = ws;
  state.sub = sub;

  ws.addEventListener("open", () => {
    if (state.ws !== ws) return;
    state.attempt = 0;
    state.everConnected = true;
    setStatus("connected");
    join(true);
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(() => send({ action: "ping" }), PING_EVERY_MS);
  });

  ws.addEventListener("message", (event) => {
    if (state.ws !== ws) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      console.warn("echo chat: frame is not JSON", event.data);
      return;
    }
    handleFrame(frame);
  });

  ws.addEventListener("close", (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    clearInterval(state.pingTimer);
    if (state.unloading) return;
    if (event.code === 4000) notice("The server closed this connection; reconnecting.", "info");
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  if (state.unloading || state.reconnectTimer) return;
  state.attempt += 1;
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (state.attempt - 1));
  const delay = Math.round(base * (0.7 + Math.random() * 0.6));
  setStatus(retryStatus());
  state.reconnectTimer = setTimeout(() => {
    state.reconnectTimer = 0;
    connect();
  }, delay);
}

/** What to show while there is no open socket. */
function retryStatus() {
  if (navigator.onLine === false || state.attempt > DISCONNECTED_AFTER_ATTEMPTS) {
    return "disconnected";
  }
  return state.everConnected ? "reconnecting" : "connecting";
}

/** Reconnects at once (new name, back online). */
function reconnectNow() {
  const ws = state.ws;
  state.ws = null;
  clearInterval(state.pingTimer);
  if (ws) ws.close(1000, "reconnecting");
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = 0;
  state.attempt = 0;
  connect();
}

/**
 * Subscribes to the current channel. After a reconnect with messages already on
 * screen, `since` makes the server replay what was missed; otherwise the
 * `subscribed` answer triggers a history request for the latest messages.
 */
function join(resume) {
  const channel = state.channel;
  if (resume && state.lastSeq > 0) {
    send({ action: "subscribe", channel, since: state.lastSeq });
  } else {
    send({ action: "subscribe", channel });
  }
}

function switchChannel(name) {
  if (name === state.channel) return;
  const old = state.channel;
  state.channel = name;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  highlightChannel();
  clearMessages();
  send({ action: "unsubscribe", channel: old });
  join(false);
  els.input.focus();
}

function handleFrame(frame) {
  switch (frame && frame.type) {
    case "subscribed": {
      if (frame.channel !== state.channel) return;
      const latest = typeof frame.seq === "number" ? frame.seq : 0;
      if (els.messages.dataset.loaded === "true" && state.lastSeq > 0) {
        // Resumed with `since`: missed messages arrive as `message` frames.
        return;
      }
      if (latest === 0) {
        markLoaded();
        return;
      }
      send({
        action: "history",
        channel: frame.channel,
        since: Math.max(0, latest - HISTORY_LIMIT),
        limit: HISTORY_LIMIT,
      });
      return;
    }
    case "history": {
      if (frame.channel !== state.channel || !Array.isArray(frame.messages)) return;
      for (const msg of frame.messages) addMessage({ channel: frame.channel, ...msg });
      markLoaded();
      return;
    }
    case "message": {
      const stick = nearBottom() || frame.from === state.sub;
      if (addMessage(frame) && stick) scrollToBottom();
      return;
    }
    case "ack": {
      if (frame.dropped) {
        const why = frame.reason ? `: ${frame.reason}` : "";
        notice(`Message dropped on #${frame.channel}${why}`, "warn");
      }
      return;
    }
    case "error": {
      const where = frame.channel ? ` (#${frame.channel})` : "";
      notice(`${frame.code ?? "error"}${where}: ${frame.message ?? "something went wrong"}`);
      return;
    }
    case "pong":
    case "unsubscribed":
      return;
    default:
      console.debug("echo chat: unhandled frame", frame);
  }
}

function markLoaded() {
  els.messages.dataset.loaded = "true";
  updateEmpty();
  scrollToBottom();
}

// ---------------------------------------------------------------- composer

function onSubmit(event) {
  event.preventDefault();
  const text = els.input.value.trim();
  if (!text) return;
  const name = cleanName(els.name.value);
  const ok = send({
    action: "publish",
    channel: state.channel,
    data: { text, name },
    id: randomId(),
  });
  if (!ok) {
    notice("Not connected: the message was not sent.");
    return;
  }
  els.input.value = "";
  els.input.focus();
}

function onNameChange() {
  const name = cleanName(els.name.value);
  els.name.value = name;
  saveName(name);
  if (name !== state.sub && state.everConnected) reconnectNow();
}

// ---------------------------------------------------------------- start

function start() {
  els.name.value = loadName();
  saveName(els.name.value);
  renderChannels();
  clearMessages();
  setStatus("connecting");

  els.composer.addEventListener("submit", onSubmit);
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
    if (!state.ws) reconnectNow();
  });
  window.addEventListener("offline", () => {
    if (state.status !== "connected") setStatus("disconnected");
  });
  window.addEventListener("pagehide", () => {
    state.unloading = true;
    if (state.ws) state.ws.close(1000, "page closed");
  });
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) {
      state.unloading = false;
      reconnectNow();
    }
  });

  connect();
}

start();
