// The JavaScript client's messages per second on a plain channel and on an end-to-end encrypted
// one, side by side: one publisher and one subscriber (two clients of one Node.js process)
// through a real edge, `MESSAGES` messages of about 1 KB each round, `WINDOW` publishes in
// flight, plain and encrypted rounds alternated.
//
//   ECHOCTL=target/release/echoctl node --experimental-websocket bench/e2e.mjs [MESSAGES] [ROUNDS]

import { EchoClient, E2EKey } from "../clients/js/echo.js";
import { startEdge } from "../clients/js/test-support/edge.mjs";

const MESSAGES = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 3);
const WINDOW = 64;
const text = "x".repeat(1024 - 11);

const edge = await startEdge();
const key = await E2EKey.fromRaw(new Uint8Array(32).fill(7));
const results = { plain: [], encrypted: [] };
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ["plain", "encrypted"]) {
      const channel = `bench-${mode}-${round}`;
      const make = (sub) => new EchoClient({ url: edge.wsUrl, tokenProvider: () => edge.token("bench", sub), pingInterval: 0 });
      const [publisher, subscriber] = [make("publisher"), make("subscriber")];
      await Promise.all([publisher.connect(), subscriber.connect()]);
      if (mode === "encrypted") {
        publisher.encryptChannel(channel, [key]);
        subscriber.encryptChannel(channel, [key]);
      }
      let received = 0;
      let done;
      const all = new Promise((resolve) => (done = resolve));
      await subscriber.subscribe(channel, (m) => {
        if (m.data.text.length === text.length && ++received === MESSAGES) done();
      });
      const started = performance.now();
      let sent = 0;
      const lane = async () => {
        while (sent < MESSAGES) {
          sent += 1;
          await publisher.publish(channel, { text });
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, lane));
      await all;
      const perSecond = MESSAGES / ((performance.now() - started) / 1000);
      results[mode].push(perSecond);
      console.log(`round ${round + 1}, ${mode}: ${Math.round(perSecond)} messages/s`);
      await Promise.all([publisher.close(), subscriber.close()]);
    }
  }
} finally {
  await edge.stop();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const [plain, encrypted] = [median(results.plain), median(results.encrypted)];
console.log(
  `JS client, ${MESSAGES} messages of 1 KB a round, medians: plain ${Math.round(plain)}/s, ` +
    `encrypted ${Math.round(encrypted)}/s (${(encrypted / plain).toFixed(2)}x)`,
);
