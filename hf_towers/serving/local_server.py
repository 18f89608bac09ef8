"""A local SageMaker-style endpoint: ``GET /ping`` and ``POST /invocations`` on loopback.

Requests go through ``HandlerHost``, i.e. the toolkit's ``HuggingFaceHandlerService`` with the
tower's ``code/``, so what answers here is what answers in the container. A model directory
without ``code/`` (a plain checkpoint) is served with ``model_code/<model_type>/`` laid over it
in a temporary folder, as the repacked artifact will look; one with ``code/`` is served as it is.
A ``model.tar.gz`` is first extracted into the temporary folder, as SageMaker would, with the
repack handler's rules and ratio bound (``hf_towers/serving/artifact.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import platform
import shutil
import socket
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hf_towers.serving.artifact import DEFAULT_MAX_RATIO, unpack_artifact
from hf_towers.serving.batching import Batcher, BatchSettings
from hf_towers.serving.handler_host import HandlerHost, Response

MODEL_CODE = Path(__file__).resolve().parents[2] / "model_code"
MODEL_TYPES = ("vision", "text", "task")
"""``task``: a plain Hugging Face model served by the toolkit's pipeline (``HF_TASK``), no code."""
# SageMaker real-time endpoints refuse larger payloads.
MAX_BODY_BYTES = 6 * 1024 * 1024
LISTEN_BACKLOG = 128
"""Connections the kernel queues before ``accept`` (``socketserver``'s default of 5 reset 27 of
200 concurrent clients)."""
MAX_CONNECTIONS = 64
"""Connections handled at once (a thread each); the next ones wait in the listen backlog."""
QUEUE_SECONDS = 10.0
"""How long a connection may wait for a free slot before it is answered 503 (JSON) and closed."""
# One batch is inside the model at a time (one model-server worker, as ``HandlerHost`` runs it):
# the other requests wait in the batcher's queue with their bodies read, so memory is bounded by
# one batch plus at most ``MAX_CONNECTIONS`` bodies of ``MAX_BODY_BYTES``, not by the client count.
SOCKET_TIMEOUT = 30.0
"""Seconds a connection may stay silent (a stalled upload, an idle keep-alive) before it is closed."""
MALLOC_ARENAS = 2
"""glibc malloc arenas: one per thread by default, which grew RSS from 2.0 to 6.0 GB over three
identical large-image batches served by different threads; 2 kept it at 2.2-2.5 GB."""
M_ARENA_MAX = -8
"""``mallopt`` parameter number (glibc ``malloc.h``)."""


def bound_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (like ``MALLOC_ARENA_MAX``); True when applied, else a no-op."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


logger = logging.getLogger(__name__)


def container_view(model_dir: Path, model_type: str, workdir: Path) -> Path:
    """``model_dir`` as the container would see it: with ``code/`` for ``model_type``.

    A model dir that has ``code/inference.py`` already is returned unchanged. Otherwise a folder
    under ``workdir`` links every entry of ``model_dir`` and gets a copy of the tower's code.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, not {model_type!r}")
    if model_type == "task" or (model_dir / "code" / "inference.py").is_file():
        return model_dir
    view = workdir / "model"
    view.mkdir()
    for entry in model_dir.iterdir():
        (view / entry.name).symlink_to(entry.resolve())
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(MODEL_CODE / model_type, view / "code", ignore=ignore)
    return view


class LocalServer(ThreadingHTTPServer):
    """HTTP front of one loaded ``HandlerHost``; ``server_close`` also drops the temporary view.

    Bounded like a small production server: a listen backlog of ``LISTEN_BACKLOG``, at most
    ``max_connections`` handled at once (the next wait up to ``QUEUE_SECONDS`` for a slot, then
    get a JSON 503), one batch inside the model at a time, ``SOCKET_TIMEOUT`` on sockets.
    Concurrent requests are batched as the serving image's model server batches them
    (``hf_towers.serving.batching``: ``batch`` requests per pass, after at most its delay).
    Accepted sockets get ``TCP_NODELAY``: without it the body, written after the headers, waited
    for the client's delayed ACK of the headers (40-50 ms a request on Linux).
    """

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        host: HandlerHost,
        workdir: Path,
        *,
        max_connections: int = MAX_CONNECTIONS,
        batch: BatchSettings | None = None,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.host = host
        self.workdir = workdir
        self.max_connections = max_connections
        self.connections = threading.BoundedSemaphore(max_connections)
        self.batcher: Batcher[tuple[bytes, str | None, str | None], Response] = Batcher(
            host.invoke_batch, batch or BatchSettings()
        )

    def get_request(self) -> tuple[socket.socket, Any]:
        """The accepted connection, with Nagle's algorithm off (see the class docstring)."""
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection while there is room; a JSON 503 after ``QUEUE_SECONDS``."""
        if not self.connections.acquire(timeout=QUEUE_SECONDS):
            _refuse_busy(request, self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()

    @property
    def url(self) -> str:
        """``http://host:port`` the server listens on."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def server_close(self) -> None:
        super().server_close()
        self.batcher.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _error_body(status: int, message: str) -> bytes:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return json.dumps({"code": int(status), "type": phrase, "message": message}).encode()


def _refuse_busy(request: socket.socket, in_service: int) -> None:
    """Answer a connection that found no slot, without a thread: 503, JSON, closed. What the
    client already sent is read first (briefly), so it reads the answer, not a broken pipe."""
    with contextlib.suppress(OSError):
        request.settimeout(0.2)
        while request.recv(65536):
            pass
    body = _error_body(503, f"busy: {in_service} connections in service: retry shortly")
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        request.settimeout(1.0)
        request.sendall(head.encode() + body)


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT  # applied to the connection's socket by StreamRequestHandler

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, status: HTTPStatus, message: str) -> None:
        self._send(status, _error_body(status, message), "application/json")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error the base class answers (bad request line, unsupported method, header
        too long ...) as JSON like the routes' own, never an HTML page."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._send(code, _error_body(code, message or explain or ""), "application/json")

    def _method_not_allowed(self) -> None:
        allowed = {"/ping": "GET", "/invocations": "POST"}.get(self.path)
        if allowed is None:
            self._send_error(HTTPStatus.NOT_FOUND, f"no route {self.command} {self.path}")
            return
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        body = _error_body(405, f"{self.command} {self.path}: use {allowed}")
        self.send_header("Allow", allowed)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    def do_GET(self) -> None:
        if self.path != "/ping":
            self._send_error(HTTPStatus.NOT_FOUND, f"no route GET {self.path}")
        elif self.server.host.loaded:
            self._send(HTTPStatus.OK, b'{"status": "Healthy"}', "application/json")
        else:
            self._send_error(HTTPStatus.SERVICE_UNAVAILABLE, "model not loaded")

    def do_POST(self) -> None:
        if self.path != "/invocations":
            self._send_error(HTTPStatus.NOT_FOUND, f"no route POST {self.path}")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send_error(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
            return
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            too_large = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            self._send_error(too_large, f"body over {MAX_BODY_BYTES} bytes")
            return
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            self.close_connection = True
            self._send_error(HTTPStatus.REQUEST_TIMEOUT, f"no body byte for {self.timeout:g} s")
            return
        if len(body) < int(length):
            self.close_connection = True  # the client went away mid-body
            return
        headers = (self.headers.get("Content-Type"), self.headers.get("Accept"))
        try:
            answer = self.server.batcher.submit((body, *headers))
        except Exception:
            logger.exception("batch failed")
            self._send_error(HTTPStatus.SERVICE_UNAVAILABLE, "Prediction failed")
            return
        self._send(answer.status, answer.body, answer.content_type)

    def log_message(self, format: str, *args: object) -> None:
        logger.info("%s %s", self.address_string(), format % args)


def build_server(
    model_dir: Path,
    model_type: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> LocalServer:
    """Load the tower from ``model_dir`` (a folder, or a ``model.tar.gz`` artifact) and bind;
    call ``serve_forever`` on the result. ``max_ratio`` bounds the archive's decompression ratio
    (a tower's ``max_decompression_ratio``); a refused archive raises ``ValueError``."""
    if model_type == "task" and not os.environ.get("HF_TASK"):
        raise ValueError(
            "a task model is served by the toolkit's pipeline named by HF_TASK: pass --hf_task "
            "(e.g. question-answering), as the tower's hf_task sets it in the container"
        )
    bound_malloc_arenas()  # before the model's threads allocate
    workdir = Path(tempfile.mkdtemp(prefix="hf-towers-serve-"))
    try:
        if model_dir.is_file():
            model_dir = unpack_artifact(model_dir, workdir, max_ratio=max_ratio)
        handler = HandlerHost(container_view(model_dir.resolve(), model_type, workdir))
        handler.load()
        batch = BatchSettings.from_environment(os.environ)
        return LocalServer((host, port), handler, workdir, batch=batch)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
