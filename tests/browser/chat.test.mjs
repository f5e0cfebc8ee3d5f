// Headless Chromium tests of the chat demo (apps/chat) served by `echoctl dev`.
//
//   cd tests/browser && npm install && node --test
//
// Environment:
//   ECHOCTL   path of the echoctl binary (default: <repo>/target/debug/echoctl)
//   CHROMIUM  path of a Chromium binary  (default: /usr/bin/chromium)

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const ECHOCTL = process.env.ECHOCTL || path.join(repo, "target", "debug", "echoctl");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOT = path.join(repo, "target", "browser", "chat.png");

const READY_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 15_000;
const MESSAGE_TIMEOUT_MS = 10_000;
const READY_LINE = /echo edge listening on http:\/\/([^\s/]+):(\d+)/;
const MANAGE_LINE = /management API\s+http:\/\/([^\s/]+):(\d+)/;

/** Keeps the last `max` characters written to it. */
class Tail {
  constructor(max = 64 * 1024) {
    this.max = max;
    this.text = "";
  }
  push(chunk) {
    this.text += chunk;
    if (this.text.length > this.max) this.text = this.text.slice(-this.max);
  }
}

const server = {
  proc: null,
  port: 0,
  managePort: 0,
  dataDir: "",
  stdout: new Tail(),
  stderr: new Tail(),
  exited: null,
};
let browser;
let base = "";
/** Console output and page errors of every page, for failure reports. */
const pageLogs = [];
const contexts = [];

function startServer() {
  return new Promise((resolve, reject) => {
    const args = ["dev", "--port", "0", "--manage-port", "0", "--data-dir", server.dataDir];
    const proc = spawn(ECHOCTL, args, {
      cwd: repo,
      stdio: ["ignore", "pipe", "pipe"],
      env: { NO_COLOR: "1", ...process.env },
    });
    server.proc = proc;
    let settled = false;
    let lineBuf = "";
    let port = 0;
    const finish = (err, port) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(port);
    };
    const timer = setTimeout(() => {
      finish(
        new Error(
          `echoctl did not print "echo edge listening on http://127.0.0.1:PORT" within ` +
            `${READY_TIMEOUT_MS / 1000} s\n${serverOutput()}`,
        ),
      );
    }, READY_TIMEOUT_MS);

    proc.stdout.setEncoding("utf8");
    proc.stderr.setEncoding("utf8");
    proc.stdout.on("data", (chunk) => {
      server.stdout.push(chunk);
      lineBuf += chunk;
      const lines = lineBuf.split("\n");
      lineBuf = lines.pop();
      for (const line of lines) {
        const manage = MANAGE_LINE.exec(line);
        if (manage) server.managePort = Number(manage[2]);
        const m = READY_LINE.exec(line);
        if (m) port = Number(m[2]);
        // The management API line follows the ready line.
        if (port && server.managePort) finish(null, port);
      }
    });
    proc.stderr.on("data", (chunk) => server.stderr.push(chunk));
    proc.on("error", (err) => {
      finish(new Error(`could not start ${ECHOCTL}: ${err.message}\n${serverOutput()}`));
    });
    proc.on("exit", (code, signal) => {
      server.exited = { code, signal };
      finish(
        new Error(
          `echoctl exited (code ${code}, signal ${signal}) before it was ready\n${serverOutput()}`,
        ),
      );
    });
  });
}

function serverOutput() {
  const out = server.stdout.text.trimEnd() || "(empty)";
  const err = server.stderr.text.trimEnd() || "(empty)";
  return `--- echoctl stdout ---\n${out}\n--- echoctl stderr ---\n${err}\n--- end of echoctl output ---`;
}

async function stopServer() {
  const proc = server.proc;
  if (!proc || server.exited) return;
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  proc.kill("SIGTERM");
  const killed = await Promise.race([
    exited.then(() => false),
    new Promise((resolve) => setTimeout(() => resolve(true), 10_000)),
  ]);
  if (killed) {
    console.error("echoctl did not exit within 10 s of SIGTERM; sending SIGKILL");
    proc.kill("SIGKILL");
    await exited;
  }
}

/** Runs a test body; on failure prints what the server and the pages said. */
async function withDiagnostics(body) {
  try {
    await body();
  } catch (err) {
    const logs = pageLogs.length ? pageLogs.slice(-200).join("\n") : "(none)";
    console.error(
      `\n=== test failed: ${err?.message?.split("\n")[0] ?? err}\n` +
        `--- browser console ---\n${logs}\n${serverOutput()}\n`,
    );
    throw err;
  }
}

// ------------------------------------------------------------ page helpers

/** A chat page in a browser of its own, or a window of `context`'s browser when given. */
async function openChat(label, context) {
  if (!context) {
    context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    contexts.push(context);
  }
  const page = await context.newPage();
  page.on("console", (msg) => pageLogs.push(`[${label}] console.${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => pageLogs.push(`[${label}] page error: ${err.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400) pageLogs.push(`[${label}] HTTP ${r.status()} for ${r.url()}`);
  });
  page.on("requestfailed", (req) =>
    pageLogs.push(`[${label}] request failed: ${req.url()} ${req.failure()?.errorText ?? ""}`),
  );
  page.sockets = [];
  page.on("websocket", (ws) => {
    page.sockets.push(ws);
    pageLogs.push(`[${label}] websocket opened: ${ws.url().replace(/token=[^&]+/, "token=…")}`);
    ws.on("framesent", (f) => pageLogs.push(`[${label}] ws >> ${String(f.payload).slice(0, 300)}`));
    ws.on("framereceived", (f) =>
      pageLogs.push(`[${label}] ws << ${String(f.payload).slice(0, 300)}`),
    );
    ws.on("close", () => pageLogs.push(`[${label}] websocket closed`));
  });
  const client = page.waitForResponse((r) => new URL(r.url()).pathname === "/echo.js");
  const res = await page.goto(`${base}/`);
  assert.ok(res, `[${label}] no response for GET /`);
  assert.equal(res.status(), 200, `[${label}] GET / answered HTTP ${res.status()}`);
  const echoJs = await client;
  assert.equal(echoJs.status(), 200, `[${label}] GET /echo.js answered HTTP ${echoJs.status()}`);
  assert.match(echoJs.headers()["content-type"] ?? "", /^text\/javascript/);
  await waitForStatus(page, label, "connected");
  assert.ok(await page.getByTestId("status").isVisible(), `[${label}] the connection state is not visible`);
  assert.equal(await page.locator("#status-dot").getAttribute("data-state"), "connected");
  return page;
}

async function waitForStatus(page, label, want) {
  try {
    await page.waitForFunction(
      (w) => document.querySelector('[data-testid="status"]')?.textContent === w,
      want,
      { timeout: CONNECT_TIMEOUT_MS },
    );
  } catch (err) {
    const now = await page
      .getByTestId("status")
      .textContent()
      .catch(() => "(no status element)");
    throw new Error(
      `[${label}] status did not become "${want}" within ${CONNECT_TIMEOUT_MS / 1000} s ` +
        `(it is "${now}"): ${err.message.split("\n")[0]}`,
    );
  }
}

/** Clicks a channel and waits until the page has subscribed and loaded its history. */
async function joinChannel(page, label, channel) {
  await page.getByTestId(`channel-${channel}`).click();
  try {
    await page.waitForFunction(
      (ch) => {
        const list = document.querySelector('[data-testid="messages"]');
        return list?.dataset.channel === ch && list?.dataset.loaded === "true";
      },
      channel,
      { timeout: MESSAGE_TIMEOUT_MS },
    );
  } catch (err) {
    throw new Error(
      `[${label}] channel "${channel}" was not subscribed and loaded within ` +
        `${MESSAGE_TIMEOUT_MS / 1000} s (no "subscribed" or "history" answer?): ` +
        err.message.split("\n")[0],
    );
  }
  const active = await page.getByTestId(`channel-${channel}`).getAttribute("aria-current");
  assert.equal(active, "true", `[${label}] channel-${channel} is not highlighted`);
}

async function sendText(page, text, { enter = false } = {}) {
  await page.getByTestId("message-input").fill(text);
  if (enter) await page.getByTestId("message-input").press("Enter");
  else await page.getByTestId("send-button").click();
}

/** Seqs of the message elements now on the page. */
async function seqsOf(page) {
  return page
    .getByTestId("message")
    .evaluateAll((nodes) => nodes.map((n) => n.dataset.seq).filter(Boolean));
}

/**
 * Waits for a message element whose text contains every string of `parts`
 * (case-insensitively when `ci`), skipping elements whose seq is in `skipSeqs`.
 * Returns the element's text.
 */
async function waitForMessage(page, label, parts, { ci = false, skipSeqs = [] } = {}) {
  try {
    const handle = await page.waitForFunction(
      ({ parts, ci, skipSeqs }) => {
        const norm = (s) => (ci ? s.toLowerCase() : s);
        for (const node of document.querySelectorAll('[data-testid="message"]')) {
          if (skipSeqs.includes(node.dataset.seq)) continue;
          const text = node.textContent ?? "";
          if (parts.every((p) => norm(text).includes(norm(p)))) return text;
        }
        return false;
      },
      { parts, ci, skipSeqs },
      { timeout: MESSAGE_TIMEOUT_MS },
    );
    return await handle.jsonValue();
  } catch (err) {
    const shown = await page
      .getByTestId("message")
      .allTextContents()
      .catch(() => []);
    throw new Error(
      `[${label}] no message containing ${JSON.stringify(parts)}${ci ? " (any case)" : ""} ` +
        `within ${MESSAGE_TIMEOUT_MS / 1000} s; messages shown: ${JSON.stringify(shown)}: ` +
        err.message.split("\n")[0],
    );
  }
}

// ------------------------------------------------------------ setup

before(async () => {
  if (!existsSync(ECHOCTL)) {
    throw new Error(`echoctl binary not found at ${ECHOCTL}; build it or set ECHOCTL`);
  }
  server.dataDir = await mkdtemp(path.join(tmpdir(), "echo-chat-test-"));
  server.port = await startServer();
  base = `http://127.0.0.1:${server.port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  for (const ctx of contexts) await ctx.close().catch(() => {});
  if (browser) await browser.close().catch(() => {});
  await stopServer();
  if (server.dataDir) await rm(server.dataDir, { recursive: true, force: true });
});

// ------------------------------------------------------------ tests

describe("chat demo", () => {
  let pageA;

  test("messages flow between two pages through each channel's functions", { timeout: 180_000 }, () =>
    withDiagnostics(async () => {
      pageA = await openChat("A");
      const pageB = await openChat("B");

      // angry: upper-cased, "!!!" added, wrapped in angry emoji.
      await joinChannel(pageA, "A", "angry");
      await joinChannel(pageB, "B", "angry");
      await sendText(pageA, "hello");
      for (const [label, page] of [["A", pageA], ["B", pageB]]) {
        const text = await waitForMessage(page, label, ["HELLO!!!", "😡"]);
        assert.ok(text.includes("😡 HELLO!!! 😡"), `[${label}] angry text was ${JSON.stringify(text)}`);
      }

      // backwards: reversed.
      await joinChannel(pageA, "A", "backwards");
      await joinChannel(pageB, "B", "backwards");
      await sendText(pageB, "abc", { enter: true });
      await waitForMessage(pageA, "A", ["cba"]);
      await waitForMessage(pageB, "B", ["cba"]);

      // boring: delivered as sent.
      await joinChannel(pageA, "A", "boring");
      await joinChannel(pageB, "B", "boring");
      await sendText(pageA, "plain", { enter: true });
      await waitForMessage(pageA, "A", ["plain"]);
      await waitForMessage(pageB, "B", ["plain"]);

      // robot: rewritten somehow; it still says hello.
      await joinChannel(pageA, "A", "robot");
      await joinChannel(pageB, "B", "robot");
      const beforeA = await seqsOf(pageA);
      const beforeB = await seqsOf(pageB);
      await sendText(pageB, "hello");
      await waitForMessage(pageA, "A", ["hello"], { ci: true, skipSeqs: beforeA });
      await waitForMessage(pageB, "B", ["hello"], { ci: true, skipSeqs: beforeB });
      for (const [label, page] of [["A", pageA], ["B", pageB]]) {
        const robotText = await page.locator('[data-testid="message"] .text').last().textContent();
        assert.equal(robotText, "🤖 BEEP BOOP. HELLO. END OF LINE. 🤖", `[${label}] robot text`);
      }

      // Each message is shown once, whatever history and live delivery overlapped.
      const seqs = await seqsOf(pageA);
      assert.equal(new Set(seqs).size, seqs.length, `[A] duplicate seqs shown: ${seqs}`);

      const errors = pageLogs.filter((l) => l.includes("page error"));
      assert.deepEqual(errors, [], "the pages threw");

      // No notices (error frames, dropped acks) were shown along the way.
      for (const [label, page] of [["A", pageA], ["B", pageB]]) {
        const notices = await page.getByTestId("notice").allTextContents();
        assert.deepEqual(notices, [], `[${label}] unexpected notices: ${JSON.stringify(notices)}`);
      }

      // A short conversation on the angry channel, for the screenshot.
      await joinChannel(pageA, "A", "angry");
      await joinChannel(pageB, "B", "angry");
      await sendText(pageB, "why so loud?", { enter: true });
      await waitForMessage(pageA, "A", ["WHY SO LOUD?!!!"]);
      await mkdir(path.dirname(SCREENSHOT), { recursive: true });
      await pageA.screenshot({ path: SCREENSHOT, animations: "disabled" });
      console.log(`screenshot: ${SCREENSHOT}`);
    }),
  );

  test("a page that joins later is shown the channel's history", { timeout: 120_000 }, () =>
    withDiagnostics(async () => {
      const a = pageA ?? (await openChat("A"));
      await joinChannel(a, "A", "boring");
      const unique = `history check ${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
      await sendText(a, unique, { enter: true });
      await waitForMessage(a, "A", [unique]);

      const pageC = await openChat("C");
      await joinChannel(pageC, "C", "boring");
      await waitForMessage(pageC, "C", [unique]);
      const copies = await pageC
        .getByTestId("message")
        .evaluateAll((nodes, u) => nodes.filter((n) => n.textContent.includes(u)).length, unique);
      assert.equal(copies, 1, `[C] the history message is shown ${copies} times`);
    }),
  );

  test("a page whose connection the server closes reconnects and shows every message once", { timeout: 120_000 }, () =>
    withDiagnostics(async () => {
      // A watcher page learns connection ids from the presence channel, through the JS client.
      const watcherCtx = await browser.newContext();
      contexts.push(watcherCtx);
      const watcher = await watcherCtx.newPage();
      watcher.on("pageerror", (err) => pageLogs.push(`[watcher] page error: ${err.message}`));
      await watcher.goto(`${base}/healthz`);
      await watcher.evaluate(async () => {
        const { EchoClient } = await import("/echo.js");
        const client = new EchoClient({
          url: `ws://${location.host}/`,
          tokenProvider: async () =>
            (await (await fetch("/dev/token?app=chat-demo&sub=watcher&role=admin")).json()).token,
        });
        window.presence = [];
        await client.connect();
        await client.subscribe("$status", (m) => window.presence.push(m.data));
      });

      const sender = pageA ?? (await openChat("A"));
      await joinChannel(sender, "A", "boring");
      const pageD = await openChat("D");
      await joinChannel(pageD, "D", "boring");
      const name = await pageD.getByTestId("name-input").inputValue();
      const handle = await watcher.waitForFunction(
        (user) => window.presence.findLast((e) => e.event === "connected" && e.user === user)?.connectionId,
        name,
        { timeout: MESSAGE_TIMEOUT_MS },
      );
      const connectionId = await handle.jsonValue();

      // Record every state the page shows from now on.
      await pageD.evaluate(() => {
        const status = document.querySelector('[data-testid="status"]');
        window.shownStates = [status.textContent];
        new MutationObserver(() => window.shownStates.push(status.textContent)).observe(status, {
          childList: true,
          characterData: true,
          subtree: true,
        });
      });

      const manageToken = (await readFile(path.join(server.dataDir, "manage-token"), "utf8")).trim();
      const res = await fetch(
        `http://127.0.0.1:${server.managePort}/@connections/${encodeURIComponent(connectionId)}`,
        { method: "DELETE", headers: { authorization: `Bearer ${manageToken}` } },
      );
      assert.equal(res.status, 204, `DELETE /@connections answered HTTP ${res.status}`);

      const tag = Math.random().toString(36).slice(2, 8);
      for (let i = 1; i <= 3; i++) await sendText(sender, `while away ${tag} ${i}`, { enter: true });
      await waitForStatus(pageD, "D", "connected");
      for (let i = 1; i <= 3; i++) await waitForMessage(pageD, "D", [`while away ${tag} ${i}`]);

      const shown = await pageD.evaluate(() => window.shownStates);
      assert.ok(shown.includes("reconnecting"), `[D] states shown: ${JSON.stringify(shown)}`);
      assert.equal(shown.at(-1), "connected");
      const notices = await pageD.getByTestId("notice").allTextContents();
      assert.ok(notices.some((n) => n.includes("server closed")), `[D] notices: ${JSON.stringify(notices)}`);

      const texts = await pageD.getByTestId("message").allTextContents();
      for (let i = 1; i <= 3; i++) {
        const copies = texts.filter((t) => t.includes(`while away ${tag} ${i}`)).length;
        assert.equal(copies, 1, `[D] message ${i} is shown ${copies} times`);
      }
      const seqs = await seqsOf(pageD);
      assert.deepEqual(
        seqs.map(Number),
        [...seqs.map(Number)].sort((a, b) => a - b),
        `[D] messages out of order: ${seqs}`,
      );
      assert.equal(new Set(seqs).size, seqs.length, `[D] duplicate seqs shown: ${seqs}`);
    }),
  );

  test("a new name takes effect on a renewed connection, without leaving the channel", { timeout: 60_000 }, () =>
    withDiagnostics(async () => {
      const page = await openChat("E");
      await joinChannel(page, "E", "backwards");
      const newName = `zed-${Math.random().toString(36).slice(2, 6)}`;
      const old = page.sockets.at(-1);
      await page.getByTestId("name-input").fill(newName);
      await page.getByTestId("name-input").press("Tab");
      // The page opens a second connection, moves to it, then closes the first one; it stays
      // connected all along.
      const deadline = Date.now() + MESSAGE_TIMEOUT_MS;
      while (!(page.sockets.length > 1 && old.isClosed())) {
        assert.ok(Date.now() < deadline, "[E] the connection was not replaced after the name change");
        assert.equal(await page.getByTestId("status").textContent(), "connected");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // Messages published under the new token carry the new name as `from`, which the page
      // shows without a "from <other user>" hint.
      const text = `renamed ${newName}`;
      await sendText(page, text, { enter: true });
      const reversed = [...text].reverse().join("");
      await waitForMessage(page, "E", [reversed]);
      const who = page.locator('[data-testid="message"]').filter({ hasText: reversed }).locator(".who");
      assert.equal(await who.textContent(), newName);
      assert.equal(await who.getAttribute("title"), null, "the message came from the old identity");
      assert.equal(await page.getByTestId("messages").getAttribute("data-channel"), "backwards");
    }),
  );

  test("each page shows who is in the room, live", { timeout: 60_000 }, () =>
    withDiagnostics(async () => {
      const pageF = await openChat("F");
      const pageG = await openChat("G");
      const room = "robot";
      const nameF = await pageF.getByTestId("name-input").inputValue();
      const nameG = await pageG.getByTestId("name-input").inputValue();
      const people = (page) =>
        page.getByTestId("person").evaluateAll((nodes) => nodes.map((n) => n.dataset.sub).sort());
      const waitForPeople = async (page, label, want) => {
        const sorted = [...want].sort();
        try {
          await page.waitForFunction(
            (w) => {
              const shown = [...document.querySelectorAll('[data-testid="person"]')].map((n) => n.dataset.sub).sort();
              const count = document.querySelector('[data-testid="people-count"]')?.textContent;
              return JSON.stringify(shown) === JSON.stringify(w) && count === String(w.length);
            },
            sorted,
            { timeout: MESSAGE_TIMEOUT_MS },
          );
        } catch (err) {
          throw new Error(
            `[${label}] the room did not show ${JSON.stringify(sorted)}; it shows ` +
              `${JSON.stringify(await people(page))}: ${err.message.split("\n")[0]}`,
          );
        }
      };

      await joinChannel(pageF, "F", room);
      await waitForPeople(pageF, "F", [nameF]);
      assert.equal(
        await pageF.locator(`[data-testid="person"][data-sub="${nameF}"] .person-you`).textContent(),
        "(you)",
      );
      await joinChannel(pageG, "G", room);
      await waitForPeople(pageG, "G", [nameF, nameG]);
      await waitForPeople(pageF, "F", [nameF, nameG]);

      // G goes to another room: F sees G leave, and G sees only itself there.
      await joinChannel(pageG, "G", "boring");
      await waitForPeople(pageF, "F", [nameF]);
      const inBoring = await people(pageG);
      assert.ok(inBoring.includes(nameG) && !inBoring.includes(nameF), `[G] #boring shows ${inBoring}`);

      // G comes back, then closes its page: F sees it join, then leave.
      await joinChannel(pageG, "G", room);
      await waitForPeople(pageF, "F", [nameF, nameG]);
      await pageG.close();
      await waitForPeople(pageF, "F", [nameF]);
      const errors = pageLogs.filter((l) => l.includes("page error"));
      assert.deepEqual(errors, [], "the pages threw");
    }),
  );

  test("two windows of one browser are two people, and a reload keeps the name", { timeout: 60_000 }, () =>
    withDiagnostics(async () => {
      const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
      contexts.push(context);
      const pageH = await openChat("H", context);
      const pageI = await openChat("I", context);
      const nameH = await pageH.getByTestId("name-input").inputValue();
      const nameI = await pageI.getByTestId("name-input").inputValue();
      assert.notEqual(nameH, nameI, "two windows of one browser got one name");
      const room = "boring";
      await joinChannel(pageH, "H", room);
      await joinChannel(pageI, "I", room);
      // Each window sees both as members of the room (others from earlier tests may be there too).
      for (const page of [pageH, pageI]) {
        await page.waitForFunction(
          (w) => {
            const shown = [...document.querySelectorAll('[data-testid="person"]')].map((n) => n.dataset.sub);
            return w.every((name) => shown.includes(name));
          },
          [nameH, nameI],
          { timeout: MESSAGE_TIMEOUT_MS },
        );
      }
      await pageH.reload();
      await waitForStatus(pageH, "H", "connected");
      assert.equal(await pageH.getByTestId("name-input").inputValue(), nameH, "a reload changed the name");
      const missing = pageLogs.filter((l) => /^\[[HI]\] HTTP 404/.test(l));
      assert.deepEqual(missing, [], "the page asked for something the edge does not serve");
    }),
  );

  test("at a phone's width the room's members and the lock state stay in view", { timeout: 60_000 }, () =>
    withDiagnostics(async () => {
      const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
      contexts.push(context);
      const page = await openChat("K", context);
      await joinChannel(page, "K", "secret");
      const name = await page.getByTestId("name-input").inputValue();
      await page.waitForFunction(
        (n) => [...document.querySelectorAll('[data-testid="person"]')].some((p) => p.dataset.sub === n),
        name,
        { timeout: MESSAGE_TIMEOUT_MS },
      );
      for (const id of ["people", "people-count", "lock-state", "passphrase-input", "unlock-button"]) {
        const box = await page.getByTestId(id).boundingBox();
        assert.ok(box && box.width > 0 && box.height > 0, `[K] ${id} is not shown`);
        assert.ok(box.x >= 0 && box.x + box.width <= 420, `[K] ${id} is cut off: ${JSON.stringify(box)}`);
      }
    }),
  );

  test("an encrypted room: pages with the passphrase chat, a third sees only that it is encrypted", { timeout: 90_000 }, () =>
    withDiagnostics(async () => {
      const [pageH, pageI, pageJ] = [await openChat("H"), await openChat("I"), await openChat("J")];
      const unlock = async (page, label, passphrase, want = "unlocked") => {
        await page.getByTestId("passphrase-input").fill(passphrase);
        await page.getByTestId("unlock-button").click();
        await page.waitForFunction(
          (w) => document.querySelector('[data-testid="lock-state"]')?.dataset.state === w,
          want,
          { timeout: MESSAGE_TIMEOUT_MS },
        );
        await page.waitForFunction(
          () => document.querySelector('[data-testid="messages"]')?.dataset.loaded === "true",
          null,
          { timeout: MESSAGE_TIMEOUT_MS },
        );
      };
      for (const [label, page] of [["H", pageH], ["I", pageI], ["J", pageJ]]) {
        await joinChannel(page, label, "secret");
        assert.equal(await page.getByTestId("lock-state").textContent(), "locked", `[${label}]`);
      }
      await unlock(pageH, "H", "open sesame");
      await unlock(pageI, "I", "open sesame");

      const plan = `meet at the old mill ${Math.random().toString(36).slice(2, 8)}`;
      await sendText(pageH, plan, { enter: true });
      await waitForMessage(pageH, "H", [plan]);
      await waitForMessage(pageI, "I", [plan]);
      await sendText(pageI, "see you there", { enter: true });
      await waitForMessage(pageH, "H", ["see you there"]);

      // J has no passphrase: it is shown that there are encrypted messages, never their text.
      await waitForMessage(pageJ, "J", ["Encrypted message"]);
      const locked = await pageJ.getByTestId("message").allTextContents();
      assert.ok(locked.length >= 2, `[J] ${JSON.stringify(locked)}`);
      assert.ok(locked.every((t) => !t.includes(plan) && !t.includes("see you there")), `[J] ${JSON.stringify(locked)}`);
      // Writing without the passphrase is refused by the page, before anything is sent.
      await sendText(pageJ, "let me in", { enter: true });
      const notices = await pageJ.getByTestId("notice").allTextContents();
      assert.ok(notices.some((n) => n.includes("encrypted")), `[J] notices: ${JSON.stringify(notices)}`);

      // With a wrong passphrase J sees that messages do not decrypt, still never their text.
      // The page says the passphrase is wrong, not "unlocked".
      await unlock(pageJ, "J", "wrong guess", "wrong");
      assert.match(await pageJ.getByTestId("lock-state").textContent(), /wrong passphrase/);
      await waitForMessage(pageJ, "J", ["Could not decrypt"]);
      const wrong = await pageJ.getByTestId("message").allTextContents();
      assert.ok(wrong.every((t) => !t.includes(plan)), `[J] ${JSON.stringify(wrong)}`);
      // The right passphrase then opens the room.
      await unlock(pageJ, "J", "open sesame");
      await waitForMessage(pageJ, "J", [plan]);
      const errors = pageLogs.filter((l) => l.includes("page error"));
      assert.deepEqual(errors, [], "the pages threw");
    }),
  );

  test("a members-only room: its onSubscribe function lets members in and tells others why not", { timeout: 60_000 }, () =>
    withDiagnostics(async () => {
      const [pageK, pageL] = [await openChat("K"), await openChat("L")];
      // K is a guest: the room's function refuses it, and the page says why, in the room.
      await pageK.getByTestId("channel-members").click();
      const denied = pageK.getByTestId("denied");
      await denied.waitFor({ state: "visible", timeout: MESSAGE_TIMEOUT_MS });
      const why = await denied.textContent();
      assert.match(why, /members only \(ada, grace, linus\)/, `[K] ${why}`);
      assert.match(why, /guest-\d+ is not one/, `[K] ${why}`);
      // L takes a member's name (on a renewed connection, once the old one is closed) and enters.
      const old = pageL.sockets.at(-1);
      await pageL.getByTestId("name-input").fill("ada");
      await pageL.getByTestId("name-input").press("Tab");
      const deadline = Date.now() + MESSAGE_TIMEOUT_MS;
      while (!(pageL.sockets.length > 1 && old.isClosed())) {
        assert.ok(Date.now() < deadline, "[L] the connection was not replaced after the name change");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await joinChannel(pageL, "L", "members");
      assert.equal(await pageL.getByTestId("denied").isVisible(), false, "[L] a member was refused");
      const text = `members only ${Math.random().toString(36).slice(2, 8)}`;
      await sendText(pageL, text, { enter: true });
      await waitForMessage(pageL, "L", [text]);
      // K, refused, never sees it.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const seen = await pageK.getByTestId("message").allTextContents();
      assert.ok(seen.every((t) => !t.includes(text)), `[K] ${JSON.stringify(seen)}`);
      assert.ok(await denied.isVisible(), "[K] the refusal is still shown");
    }),
  );
});
