// Drives the local edge's @connections API with the AWS SDK for JavaScript v3, as application
// code does, and prints what the SDK made of each answer as one JSON object. The system test
// `tests/sdk.rs` starts the edge, sets the environment and checks the output.
//
//   ENDPOINT  the management API (http://127.0.0.1:PORT)
//   TOKEN     the management token: the access key id and the secret key
//   LIVE_ID   a connection that reads; SLOW_ID one that never reads; GONE_ID one that closed
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const client = (key = env("TOKEN"), secret = key) =>
  new ApiGatewayManagementApiClient({
    endpoint: env("ENDPOINT"),
    region: "us-east-1",
    credentials: { accessKeyId: key, secretAccessKey: secret },
    maxAttempts: 1,
  });

const api = client();
const text = (s) => new TextEncoder().encode(s);
const out = {};

/** The name of the error `f` throws, or "ok". */
async function outcome(f) {
  try {
    await f();
    return "ok";
  } catch (e) {
    return e.name;
  }
}

out.post = await outcome(() =>
  api.send(new PostToConnectionCommand({ ConnectionId: env("LIVE_ID"), Data: text('{"from":"js"}') })),
);
const info = await api.send(new GetConnectionCommand({ ConnectionId: env("LIVE_ID") }));
out.get = {
  connectedAtIsDate: info.ConnectedAt instanceof Date && !Number.isNaN(info.ConnectedAt.getTime()),
  connectedAt: info.ConnectedAt?.toISOString(),
  lastActiveAtIsDate: info.LastActiveAt instanceof Date && !Number.isNaN(info.LastActiveAt.getTime()),
  sourceIp: info.Identity?.SourceIp,
};
out.gone = await outcome(() =>
  api.send(new PostToConnectionCommand({ ConnectionId: env("GONE_ID"), Data: text("{}") })),
);
out.getGone = await outcome(() => api.send(new GetConnectionCommand({ ConnectionId: env("GONE_ID") })));
out.tooLarge = await outcome(() =>
  api.send(new PostToConnectionCommand({ ConnectionId: env("LIVE_ID"), Data: new Uint8Array(128 * 1024 + 1).fill(120) })),
);
out.forbidden = await outcome(() =>
  client("not-the-management-token").send(new GetConnectionCommand({ ConnectionId: env("LIVE_ID") })),
);
// The right key id with the wrong secret: the signature does not match.
out.badSignature = await outcome(() =>
  client(env("TOKEN"), "not-the-secret").send(new GetConnectionCommand({ ConnectionId: env("LIVE_ID") })),
);
// A connection that never reads: frames pile up until it can take no more.
out.limit = "ok";
const big = new Uint8Array(100 * 1024).fill(121);
for (let i = 0; i < 2000 && out.limit === "ok"; i++) {
  out.limit = await outcome(() => api.send(new PostToConnectionCommand({ ConnectionId: env("SLOW_ID"), Data: big })));
}
out.delete = await outcome(() => api.send(new DeleteConnectionCommand({ ConnectionId: env("LIVE_ID") })));
console.log(JSON.stringify(out));
