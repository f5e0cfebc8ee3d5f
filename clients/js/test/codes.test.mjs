// The client's error codes and reconnect rule against the codes fixture Echo's core writes
// (tests/fixtures/protocol-codes.json), so that neither can drift from the server's enums.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { PROTOCOL_ERROR_CODES, reconnectsAfter } from "../echo.js";

const codes = JSON.parse(readFileSync(new URL("../../../tests/fixtures/protocol-codes.json", import.meta.url), "utf8"));
const types = readFileSync(new URL("../echo.d.ts", import.meta.url), "utf8");

test("the client knows exactly the protocol's error codes", () => {
  assert.deepEqual([...PROTOCOL_ERROR_CODES], codes.errorCodes);
  const union = types.match(/export type ProtocolErrorCode =([^;]*);/)[1];
  const declared = [...union.matchAll(/"([a-z_]+)"/g)].map((m) => m[1]);
  assert.deepEqual(declared, codes.errorCodes, "echo.d.ts's ProtocolErrorCode");
});

test("the client reconnects after the close codes the protocol says", () => {
  assert.ok(codes.closeCodes.length > 0);
  for (const { name, code, reconnect } of codes.closeCodes) {
    assert.equal(reconnectsAfter(code), reconnect, `${name} (${code})`);
  }
  const [from, to] = codes.closeRanges.reconnect;
  assert.ok(reconnectsAfter(from) && reconnectsAfter(to));
  const [tFrom, tTo] = codes.closeRanges.terminal;
  assert.ok(!reconnectsAfter(tFrom) && !reconnectsAfter(tTo));
  assert.ok(reconnectsAfter(tFrom - 1) && reconnectsAfter(tTo + 1));
});
