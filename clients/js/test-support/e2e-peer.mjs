// A JavaScript peer for the Rust client's interoperability test: connects to an edge, encrypts
// a channel with a key from a passphrase, subscribes, prints "ready", publishes what each line
// of its standard input says (as {"text": LINE}), and prints every message it receives as a
// line of JSON.
//
//   node e2e-peer.mjs URL TOKEN CHANNEL PASSPHRASE SALT

import { createInterface } from "node:readline";
import { EchoClient, E2EKey } from "../echo.js";

const [url, token, channel, passphrase, salt] = process.argv.slice(2);
const client = new EchoClient({ url, token });
client.on("decrypt_error", (e) => console.log(JSON.stringify({ decryptError: e })));
await client.connect();
client.encryptChannel(channel, [await E2EKey.fromPassphrase(passphrase, salt)]);
await client.subscribe(channel, (m) => console.log(JSON.stringify(m)));
console.log("ready");
for await (const line of createInterface({ input: process.stdin })) {
  const ack = await client.publish(channel, { text: line });
  console.log(JSON.stringify({ ack }));
}
await client.close();
