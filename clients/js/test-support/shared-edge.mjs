// One real edge for a test file, and the clients its tests make: started before the file's
// tests, everything closed after them.

import { after, before } from "node:test";
import { EchoClient } from "../echo.js";
import { startEdge } from "./edge.mjs";

export function sharedEdge(edgeArgs = []) {
  let edge = null;
  const clients = [];
  before(async () => {
    edge = await startEdge(edgeArgs);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await edge?.stop();
  });
  return {
    get edge() {
      return edge;
    },
    /** A client of `app` as user `sub` that reconnects quickly, closed after the file's tests. */
    client(app, sub, options = {}) {
      const c = new EchoClient({
        url: edge.wsUrl,
        tokenProvider: () => edge.token(app, sub),
        requestTimeout: 5000,
        backoffBase: 50,
        backoffMax: 200,
        ...options,
      });
      clients.push(c);
      return c;
    },
    /** Closes `c` with the rest. */
    track(c) {
      clients.push(c);
      return c;
    },
  };
}
