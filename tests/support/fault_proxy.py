"""An HTTP proxy on 127.0.0.1 in front of an S3 API server (moto) that injects the faults S3
gives: 503 SlowDown (throttling), 500 InternalError, and a connection dropped halfway through
a request body. ``plan(n, method, path)`` decides for the n-th request (from 1): None forwards
it, or "503", "500" or "drop"."""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Plan = Callable[[int, str, str], str | None]
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
ERRORS = {"503": (503, "SlowDown", "Please reduce your request rate."),
          "500": (500, "InternalError", "We encountered an internal error. Please try again.")}


class FaultProxy:
    def __init__(self, upstream: str, plan: Plan) -> None:
        self.upstream = urlsplit(upstream)
        self.plan = plan
        self.count = 0
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()

    def decide(self, method: str, path: str) -> str | None:
        with self._lock:
            self.count += 1
            fault = self.plan(self.count, method, path)
            if fault:
                self.injected[fault] += 1
            return fault


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raw = b""
                while True:
                    line = self.rfile.readline()
                    raw += line
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while True:  # trailers, then the blank line
                            trailer = self.rfile.readline()
                            raw += trailer
                            if trailer in (b"\r\n", b"\n", b""):
                                return raw
                    raw += self.rfile.read(size + 2)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _relay(self) -> None:
            fault = proxy.decide(self.command, self.path)
            if fault == "drop":  # read part of the body, then hang up without an answer
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length // 2)
                self.close_connection = True
                self.connection.shutdown(2)
                return
            body = self._body()
            if fault in ERRORS:
                status, code, message = ERRORS[fault]
                xml = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}"
                       f"</Message></Error>").encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(xml)))
                self.end_headers()
                self.wfile.write(xml)
                return
            conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP - {"transfer-encoding"}}
            conn.request(self.command, self.path, body=body, headers=headers, encode_chunked=False)
            answer = conn.getresponse()
            data = answer.read()
            self.send_response(answer.status, answer.reason)
            for k, v in answer.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            # a HEAD has no body: its Content-Length is the object's, as the upstream said it
            length = answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    return Handler


@contextmanager
def fault_proxy(upstream: str, plan: Plan) -> Iterator[tuple[str, FaultProxy]]:
    """Serve the proxy until the block ends; yields its URL and the proxy (its counters)."""
    proxy = FaultProxy(upstream, plan)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", proxy
    finally:
        server.shutdown()
        server.server_close()
