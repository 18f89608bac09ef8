"""A fault-injecting TCP proxy in front of the S3 test endpoint (127.0.0.1, threads).

It forwards HTTP/1.1 connections unchanged and, for GET requests whose path contains ``match``:
resets the connection (TCP RST) or stalls it (stops sending, keeps the socket open) after a
given number of response-body bytes, throttles the body to ``rate`` bytes/s, and counts the
body bytes sent to clients (``served``). Requests matching a ``deny`` rule get a 403
AccessDenied from the proxy itself (never forwarded).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

PIECE = 16 * 1024


@dataclass
class Fault:
    kind: str
    """``reset``, ``stall`` (after ``after`` body bytes) or ``slowdown`` (a 503 SlowDown answered
    by the proxy instead of the server)."""
    after: int
    """Response-body bytes sent before the fault."""
    then: Callable[[], object] | None = None
    """Called when the fault fires (e.g. to replace the object)."""


@dataclass
class Request:
    method: str
    path: str
    headers: str


@dataclass
class _Conn:
    client: socket.socket
    upstream: socket.socket
    matched: bool = False
    header_done: bool = True
    header_buf: bytes = b""
    body_sent: int = 0
    fault: Fault | None = None
    responded: bool = True
    closed: threading.Event = field(default_factory=threading.Event)


class FaultProxy:
    def __init__(self, upstream: str, match: str = "") -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.match = match
        self.faults: list[Fault] = []
        self.rate: float | None = None
        self.deny: list[tuple[str, str]] = []
        """(method, path substring) answered with 403 AccessDenied."""
        self.served = 0
        self.requests: list[Request] = []
        """Matched GET requests, in order."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._threads: list[threading.Thread] = []
        self._conns: list[_Conn] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> FaultProxy:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for conn in list(self._conns):
            _close(conn.client)
            _close(conn.upstream)
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            conn = _Conn(client, upstream)
            self._conns.append(conn)
            for target in (self._requests, self._responses):
                thread = threading.Thread(target=target, args=(conn,), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _requests(self, conn: _Conn) -> None:
        """Client -> upstream; notes each request's line for the response direction."""
        try:
            while not self._stop.is_set():
                data = conn.client.recv(65536)
                if not data:
                    break
                if conn.responded:  # a new request starts (no pipelining in botocore)
                    conn.responded = False
                    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
                    method, _, rest = head.partition(" ")
                    path = rest.split(" ", 1)[0]
                    if any(m == method and p in path for m, p in self.deny):
                        _answer(conn, "403 Forbidden", "AccessDenied")
                        continue
                    conn.matched = method == "GET" and self.match in path
                    conn.header_done, conn.header_buf, conn.body_sent = False, b"", 0
                    conn.fault = None
                    if conn.matched:
                        with self._lock:
                            self.requests.append(Request(method, path, head))
                            if self.faults:
                                conn.fault = self.faults.pop(0)
                    if conn.fault is not None and conn.fault.kind == "slowdown":
                        conn.matched = False
                        _answer(conn, "503 Slow Down", "SlowDown")
                        continue
                conn.upstream.sendall(data)
        except OSError:
            pass
        finally:
            conn.closed.set()

    def _responses(self, conn: _Conn) -> None:
        """Upstream -> client, with the faults, throttle and count of matched GETs."""
        try:
            while not self._stop.is_set():
                data = conn.upstream.recv(65536)
                if not data:
                    break
                conn.responded = True
                if not conn.matched:
                    conn.client.sendall(data)
                    continue
                if not conn.header_done:
                    conn.header_buf += data
                    end = conn.header_buf.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    conn.client.sendall(conn.header_buf[: end + 4])
                    data = conn.header_buf[end + 4 :]
                    conn.header_done = True
                if not self._body(conn, data):
                    return
        except OSError:
            pass
        finally:
            _close(conn.client)
            _close(conn.upstream)

    def _body(self, conn: _Conn, data: bytes) -> bool:
        for start in range(0, len(data), PIECE):
            piece = data[start : start + PIECE]
            fault = conn.fault
            if fault is not None and conn.body_sent + len(piece) >= fault.after:
                piece = piece[: fault.after - conn.body_sent]
                self._send(conn, piece)
                if fault.then is not None:
                    fault.then()
                if fault.kind == "reset":
                    conn.client.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                else:  # stall: send nothing more until the client gives up
                    while not self._stop.is_set() and not conn.closed.wait(0.1):
                        pass
                return False
            self._send(conn, piece)
        return True

    def _send(self, conn: _Conn, piece: bytes) -> None:
        if self.rate:
            time.sleep(len(piece) / self.rate)
        conn.client.sendall(piece)
        conn.body_sent += len(piece)
        with self._lock:
            self.served += len(piece)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def _answer(conn: _Conn, status: str, code: str) -> None:
    """An S3 error response from the proxy itself; the request is not forwarded."""
    body = f"<Error><Code>{code}</Code><Message>from the test proxy</Message></Error>".encode()
    conn.client.sendall(
        f"HTTP/1.1 {status}\r\nContent-Type: application/xml\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    conn.responded = True
