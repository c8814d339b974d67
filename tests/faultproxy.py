"""A fault-injecting proxy in front of the real olah mirror (stdlib ThreadingHTTPServer on loopback).

Each fault is a small function of (method, path, status, headers, body) that may rewrite the answer:
lie in cardData, drop a file from /tree, tamper the bytes of one file, redirect file downloads to
another host. Every request is recorded with its Authorization header.
"""
from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

Answer = tuple[int, dict[str, str], bytes]
Fault = Callable[[str, str, Answer], Answer]
_HOP = {"transfer-encoding", "connection", "content-length", "content-encoding", "keep-alive"}


class FaultProxy:
    def __init__(self, upstream: str, fault: Fault | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.fault = fault or (lambda method, path, answer: answer)
        self.seen: list[tuple[str, str, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self) -> None:
                proxy.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "range", "accept-encoding")}
                request = urllib.request.Request(proxy.upstream + self.path, data=body, method=self.command,
                                                 headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=30) as resp:
                        answer: Answer = (resp.status, dict(resp.headers.items()), resp.read())
                except urllib.error.HTTPError as exc:
                    answer = (exc.code, dict(exc.headers.items()), exc.read())
                status, out_headers, data = proxy.fault(self.command, self.path, answer)
                self.send_response(status)
                for name, value in out_headers.items():
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                upstream_length = {k.lower(): v for k, v in out_headers.items()}.get("content-length", "0")
                self.send_header("Content-Length", upstream_length if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_rewrite(match: Callable[[str], bool], change: Callable[[Any], Any]) -> Fault:
    def fault(method: str, path: str, answer: Answer) -> Answer:
        status, headers, body = answer
        if method == "GET" and match(path) and status == 200:
            body = json.dumps(change(json.loads(body))).encode()
        return status, headers, body
    return fault


def tamper(file_suffix: str) -> Fault:
    def fault(method: str, path: str, answer: Answer) -> Answer:
        status, headers, body = answer
        if method == "GET" and "/resolve/" in path and path.split("?")[0].endswith(file_suffix) and body:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        return status, headers, body
    return fault


def redirect_files(to_base: str) -> Fault:
    def fault(method: str, path: str, answer: Answer) -> Answer:
        status, headers, body = answer
        if method == "GET" and "/resolve/" in path:
            return 302, {"Location": to_base + path}, b""
        return answer
    return fault
