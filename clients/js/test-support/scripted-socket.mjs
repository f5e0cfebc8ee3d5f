// A WebSocket whose server side is the test: it opens at once, keeps what the client sends in
// `sent` (parsed), and hands the client whatever the test passes to `serve()`. A test that
// never serves has a server that never answers.

export class ScriptedSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    ScriptedSocket.all.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code = 1005, reason = "") {
    this.closedWith = { code, reason };
    this.readyState = 3;
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }
  serve(...frames) {
    for (const f of frames) this.onmessage?.({ data: JSON.stringify(f) });
  }
  /** The last frame sent with this action. */
  last(action) {
    return this.sent.findLast((f) => f.action === action);
  }
  /** Every frame sent with this action. */
  frames(action) {
    return this.sent.filter((f) => f.action === action);
  }
}
