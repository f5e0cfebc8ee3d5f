// Serves Echo functions written for Node.js on the Lambda Invoke API, as `cargo lambda watch`
// serves Rust ones, so that the local edge calls both the same way.
//
//   ECHO_NODE_FUNCTIONS_DIR=DIR ECHO_NODE_FUNCTIONS=NAME,NAME node node_runner.mjs
//
// (echoctl passes it to `node --input-type=module -e`.)
// `POST /2015-03-31/functions/NAME/invocations` runs `handler(event, context)` exported by
// DIR/NAME/index.mjs, as Lambda's Node.js runtime does, and answers with what it returns (JSON).
// A handler that throws or rejects answers as Lambda does: status 200, the header
// `X-Amz-Function-Error: Unhandled` and `{"errorType","errorMessage"}`. A name not in
// ECHO_NODE_FUNCTIONS answers 404 `ResourceNotFoundException`.
//
// The module is imported again when its file changes, so an edit applies to the next message.
// It listens on a free port of 127.0.0.1 and writes `listening PORT` as the first line on
// stdout; what the handlers log goes to stderr, each line after `[NAME] `.

import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.ECHO_NODE_FUNCTIONS_DIR ?? '.';
const known = new Set((process.env.ECHO_NODE_FUNCTIONS ?? '').split(',').filter(Boolean));
const route = /^\/2015-03-31\/functions\/([^/?]+)\/invocations(?:\?.*)?$/;
// Lambda's synchronous payload limit.
const MAX_PAYLOAD = 6 * 1024 * 1024;

// Handlers' console.log must not mix with the line echoctl reads; each line names its function.
const running = new AsyncLocalStorage();
const toStderr = console.error.bind(console);
const named = (...args) => {
  const name = running.getStore();
  if (name === undefined) return toStderr(...args);
  const text = args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' ');
  return toStderr(text.replace(/^/gm, `[${name}] `));
};
console.log = console.info = console.warn = console.error = console.debug = named;

async function load(name) {
  const file = path.join(dir, name, 'index.mjs');
  const { mtimeMs } = await stat(file);
  const module = await import(`${pathToFileURL(file).href}?v=${mtimeMs}`);
  if (typeof module.handler !== 'function') {
    throw new TypeError(`${file} does not export a function named handler`);
  }
  return module.handler;
}

function answer(res, status, body, headers = {}) {
  const text = JSON.stringify(body === undefined ? null : body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

function failure(res, error) {
  const errorType = error instanceof Error ? error.name : typeof error;
  const errorMessage = error instanceof Error ? error.message : String(error);
  answer(res, 200, { errorType, errorMessage }, { 'x-amz-function-error': 'Unhandled' });
}

const server = http.createServer((req, res) => {
  const match = req.method === 'POST' && route.exec(req.url);
  if (!match) {
    answer(res, 404, { message: `no route ${req.method} ${req.url}` });
    return;
  }
  const name = decodeURIComponent(match[1]);
  if (!known.has(name)) {
    answer(res, 404, {
      __type: 'ResourceNotFoundException',
      message: `Function not found: ${name}`,
    });
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_PAYLOAD) {
      answer(res, 413, {
        __type: 'RequestTooLargeException',
        message: `payload over ${MAX_PAYLOAD} bytes`,
      });
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', async () => {
    if (res.writableEnded) return;
    let event;
    try {
      event = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
    } catch (error) {
      answer(res, 400, { __type: 'InvalidRequestContentException', message: error.message });
      return;
    }
    await running.run(name, async () => {
      try {
        const handler = await load(name);
        const context = { functionName: name, awsRequestId: randomUUID() };
        answer(res, 200, await handler(event, context));
      } catch (error) {
        console.error(error);
        failure(res, error);
      }
    });
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

// echoctl closes our stdin when it stops: go with it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
