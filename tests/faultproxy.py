"""A fault-injecting proxy in front of the real olah mirror (stdlib ThreadingHTTPServer on loopback).

Each fault is a small function of (method, path, answer) that may rewrite the answer: lie in
cardData, drop a file from /tree, tamper the bytes of one file, redirect file downloads to another
host, answer 500 once, cut a body half way, stall, paginate forever. Every request is recorded with
its Authorization header (`seen`) and all its headers (`requests`). The proxy serves byte ranges
itself (`Range: bytes=N-` -> 206), so resumed downloads work whatever the upstream does; with
`tls=(cert, key)` it speaks HTTPS.

A fault may ask the handler to misbehave while sending by adding a header (removed before sending):
`X-Fault-Cut: N` sends the headers and N bytes of the body, then drops the connection;
`X-Fault-Stall: S` sends the headers (and the N bytes of a cut) and waits S seconds before going on.
"""
from __future__ import annotations

import http.server
import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

Answer = tuple[int, dict[str, str], bytes]
Fault = Callable[[str, str, Answer], Answer]
_HOP = {"transfer-encoding", "connection", "content-length", "content-encoding", "keep-alive"}


class FaultProxy:
    def __init__(self, upstream: str, fault: Fault | None = None, tls: tuple[str, str] | None = None,
                 host: str = "127.0.0.1") -> None:
        self.upstream = upstream.rstrip("/")
        self.fault = fault or (lambda method, path, answer: answer)
        self.seen: list[tuple[str, str, str]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                proxy.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
                proxy.requests.append((self.command, self.path, dict(self.headers.items())))
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
                lower = {k.lower(): v for k, v in out_headers.items()}
                cut, stall = lower.pop("x-fault-cut", None), lower.pop("x-fault-stall", None)
                status, data, extra = _ranged(self.command, self.headers.get("Range", ""), status, data)
                self.send_response(status)
                for name, value in out_headers.items():
                    if name.lower() not in _HOP and not name.lower().startswith("x-fault-"):
                        self.send_header(name, value)
                for name, value in extra.items():
                    self.send_header(name, value)
                upstream_length = lower.get("content-length", "0")
                self.send_header("Content-Length", upstream_length if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if cut is not None:
                    self.wfile.write(data[:int(cut)])
                    self.wfile.flush()
                    time.sleep(float(stall or 0))
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                time.sleep(float(stall or 0))
                self.wfile.write(data)

            do_GET = do_HEAD = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://{host}:{self.server.server_address[1]}"
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


def _ranged(method: str, range_header: str, status: int, data: bytes) -> tuple[int, bytes, dict[str, str]]:
    """`Range: bytes=N-` on a full answer -> 206 with the rest of the body."""
    match = re.fullmatch(r"bytes=(\d+)-", range_header.strip())
    if method != "GET" or status != 200 or not match:
        return status, data, {}
    start = int(match.group(1))
    if start >= len(data):
        return 416, b"", {"Content-Range": f"bytes */{len(data)}"}
    return 206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}


def _file_get(method: str, path: str, suffix: str) -> bool:
    return method == "GET" and "/resolve/" in path and path.split("?")[0].endswith(suffix)


def fail_once(file_suffix: str, status: int = 500, times: int = 1) -> Fault:
    """The first `times` downloads of the file get HTTP `status` (a transient server error)."""
    left = [times]

    def fault(method: str, path: str, answer: Answer) -> Answer:
        if _file_get(method, path, file_suffix) and left[0] > 0:
            left[0] -= 1
            return status, {"Content-Type": "application/json"}, b'{"error": "transient"}'
        return answer
    return fault


def cut_once(file_suffix: str, then_status: int = 0) -> Fault:
    """The first download of the file stops half way (connection dropped); with `then_status`, every
    later request for it gets that status (so the fetch fails and leaves its partial file)."""
    state = {"cut": False}

    def fault(method: str, path: str, answer: Answer) -> Answer:
        if not _file_get(method, path, file_suffix):
            return answer
        status, headers, body = answer
        if not state["cut"]:
            state["cut"] = True
            return status, {**headers, "X-Fault-Cut": str(len(body) // 2)}, body
        if then_status:
            return then_status, {"Content-Type": "application/json"}, b'{"error": "down"}'
        return answer
    return fault


def stall(file_suffix: str, seconds: float, after_half: bool = False) -> Fault:
    """Every download of the file sends its headers (and half its body with `after_half`), then nothing
    for `seconds`."""
    def fault(method: str, path: str, answer: Answer) -> Answer:
        status, headers, body = answer
        if _file_get(method, path, file_suffix):
            extra = {"X-Fault-Stall": str(seconds)} | ({"X-Fault-Cut": str(len(body) // 2)} if after_half else {})
            return status, {**headers, **extra}, body
        return answer
    return fault


def endless_pages() -> Fault:
    """Every tree listing page says there is a next page (a new cursor each time)."""
    counter = [0]

    def fault(method: str, path: str, answer: Answer) -> Answer:
        status, headers, body = answer
        if method == "GET" and "/tree/" in path and status == 200:
            counter[0] += 1
            base = path.split("?")[0]
            headers = {**headers, "Link": f'<{base}?cursor={counter[0]}>; rel="next"'}
        return status, headers, body
    return fault


def chain(*faults: Fault) -> Fault:
    def fault(method: str, path: str, answer: Answer) -> Answer:
        for one in faults:
            answer = one(method, path, answer)
        return answer
    return fault


def make_certificate(folder: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost (made with `cryptography`): (cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auditor test mirror")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "mirror.crt", folder / "mirror.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)
