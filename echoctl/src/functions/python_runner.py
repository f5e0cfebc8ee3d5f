# Serves Echo functions written in Python on the Lambda Invoke API, as `cargo lambda watch` serves
# Rust ones, so that the local edge calls every function the same way.
#
#   ECHO_PYTHON_FUNCTIONS_DIR=DIR ECHO_PYTHON_FUNCTIONS=NAME,NAME python3 -c "$(cat python_runner.py)"
#
# `POST /2015-03-31/functions/NAME/invocations` runs `handler(event, context)` defined by
# DIR/NAME/handler.py, as Lambda's Python runtime does with the handler `handler.handler`, and
# answers with what it returns (JSON). A handler that raises answers as Lambda does: status 200,
# the header `X-Amz-Function-Error: Unhandled` and `{"errorMessage","errorType","stackTrace"}`;
# an answer that is not JSON is Lambda's `Runtime.MarshalError`. A name not in
# ECHO_PYTHON_FUNCTIONS answers 404 `ResourceNotFoundException`.
#
# The module is loaded again when its file changes, so an edit applies to the next message. Each
# function's folder is on the import path, for its own modules. It listens on a free port of
# 127.0.0.1 and writes `listening PORT` as the first line on stdout; what the handlers print goes
# to stderr, each line after `[NAME] `. Standard library only.

import http.server
import importlib.util
import json
import os
import socket
import sys
import threading
import time
import traceback
import uuid

DIR = os.environ.get("ECHO_PYTHON_FUNCTIONS_DIR", ".")
KNOWN = {n for n in os.environ.get("ECHO_PYTHON_FUNCTIONS", "").split(",") if n}
PREFIX = "/2015-03-31/functions/"
SUFFIX = "/invocations"
# Lambda's synchronous payload limit.
MAX_PAYLOAD = 6 * 1024 * 1024
# What Lambda gives an Echo function at most: API Gateway's integration timeout.
TIMEOUT_MS = 29_000

_loaded = {}
_lock = threading.Lock()
# The function each thread is running, whose name its output lines start with.
_running = threading.local()


class Prefixed:
    """A stream whose lines start with the name of the function that writes them."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        name = getattr(_running, "name", None)
        if name is None:
            return self._stream.write(text)
        if getattr(_running, "at_line_start", True):
            text = "[%s] %s" % (name, text)
        _running.at_line_start = text.endswith("\n")
        body = text[:-1] if _running.at_line_start else text
        self._stream.write(body.replace("\n", "\n[%s] " % name) + ("\n" if _running.at_line_start else ""))
        return len(text)

    def flush(self):
        self._stream.flush()

    def __getattr__(self, attr):
        return getattr(self._stream, attr)


def load(name):
    """The handler of DIR/name/handler.py, loaded again when the file changed."""
    path = os.path.join(DIR, name, "handler.py")
    mtime = os.stat(path).st_mtime_ns
    with _lock:
        cached = _loaded.get(name)
        if cached and cached[0] == mtime:
            return cached[1]
        folder = os.path.dirname(os.path.abspath(path))
        if folder not in sys.path:
            sys.path.insert(0, folder)
        module_name = "echo_fn_%s_%d" % (name.replace("-", "_"), mtime)
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        handler = getattr(module, "handler", None)
        if not callable(handler):
            raise TypeError("%s does not define a function named handler(event, context)" % path)
        _loaded[name] = (mtime, handler)
        return handler


class Context:
    """The part of Lambda's context object a function is likely to use."""

    def __init__(self, name):
        self.function_name = name
        self.function_version = "$LATEST"
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 128
        self._deadline = time.monotonic() + TIMEOUT_MS / 1000

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Invocations(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one write: written apart, Nagle's algorithm and the caller's delayed
    # ACK held each answer about 40 ms.
    wbufsize = 64 * 1024

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def failure(self, name, error_type, message, stack):
        print("[%s] %s: %s" % (name, error_type, message), file=sys.stderr)
        self.answer(
            200,
            {"errorMessage": message, "errorType": error_type, "stackTrace": stack},
            {"x-amz-function-error": "Unhandled"},
        )

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            self.answer(404, {"message": "no route POST %s" % self.path})
            return
        name = path[len(PREFIX) : -len(SUFFIX)]
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_PAYLOAD:
            self.answer(413, {"__type": "RequestTooLargeException", "message": "payload over %d bytes" % MAX_PAYLOAD})
            self.close_connection = True
            return
        body = self.rfile.read(length)
        if name not in KNOWN:
            self.answer(404, {"__type": "ResourceNotFoundException", "message": "Function not found: %s" % name})
            return
        try:
            event = json.loads(body.decode("utf-8") or "null")
        except ValueError as e:
            self.answer(400, {"__type": "InvalidRequestContentException", "message": str(e)})
            return
        _running.name, _running.at_line_start = name, True
        try:
            result = load(name)(event, Context(name))
        except Exception as e:
            stack = traceback.format_exception(type(e), e, e.__traceback__)
            traceback.print_exc(file=sys.stderr)
            _running.name = None
            self.failure(name, type(e).__name__, str(e), stack)
            return
        finally:
            _running.name = None
        try:
            self.answer(200, result)
        except (TypeError, ValueError) as e:
            self.failure(name, "Runtime.MarshalError", "Unable to marshal response: %s" % e, [])

    def do_GET(self):
        self.answer(404, {"message": "no route GET %s" % self.path})


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Invocations)
    server.daemon_threads = True
    out = sys.stdout
    # What handlers print must not mix with the line echoctl reads.
    sys.stderr = Prefixed(sys.stderr)
    sys.stdout = sys.stderr
    out.write("listening %d\n" % server.server_address[1])
    out.flush()

    def watch_stdin():
        # echoctl closes our stdin when it stops: go with it.
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


main()
