"""A local SageMaker-style endpoint: ``GET /ping`` and ``POST /invocations`` on loopback.

Requests go through ``HandlerHost``, i.e. the toolkit's ``HuggingFaceHandlerService`` with the
tower's ``code/``, so what answers here is what answers in the container. A model directory
without ``code/`` (a plain checkpoint) is served with ``model_code/<model_type>/`` laid over it
in a temporary folder, as the repacked artifact will look; one with ``code/`` is served as it is.
A ``model.tar.gz`` is first extracted into the temporary folder, as SageMaker would, with the
repack handler's rules and ratio bound (``hf_towers/serving/artifact.py``).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hf_towers.serving.artifact import DEFAULT_MAX_RATIO, unpack_artifact
from hf_towers.serving.handler_host import HandlerHost

MODEL_CODE = Path(__file__).resolve().parents[2] / "model_code"
MODEL_TYPES = ("vision", "text")
# SageMaker real-time endpoints refuse larger payloads.
MAX_BODY_BYTES = 6 * 1024 * 1024

logger = logging.getLogger(__name__)


def container_view(model_dir: Path, model_type: str, workdir: Path) -> Path:
    """``model_dir`` as the container would see it: with ``code/`` for ``model_type``.

    A model dir that has ``code/inference.py`` already is returned unchanged. Otherwise a folder
    under ``workdir`` links every entry of ``model_dir`` and gets a copy of the tower's code.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, not {model_type!r}")
    if (model_dir / "code" / "inference.py").is_file():
        return model_dir
    view = workdir / "model"
    view.mkdir()
    for entry in model_dir.iterdir():
        (view / entry.name).symlink_to(entry.resolve())
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(MODEL_CODE / model_type, view / "code", ignore=ignore)
    return view


class LocalServer(ThreadingHTTPServer):
    """HTTP front of one loaded ``HandlerHost``; ``server_close`` also drops the temporary view."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], host: HandlerHost, workdir: Path) -> None:
        super().__init__(address, _RequestHandler)
        self.host = host
        self.workdir = workdir

    @property
    def url(self) -> str:
        """``http://host:port`` the server listens on."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def server_close(self) -> None:
        super().server_close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, status: HTTPStatus, message: str) -> None:
        body = {"code": int(status), "type": status.phrase, "message": message}
        self._send(status, json.dumps(body).encode(), "application/json")

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
        body = self.rfile.read(int(length))
        answer = self.server.host.invoke(
            body, self.headers.get("Content-Type"), self.headers.get("Accept")
        )
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
    workdir = Path(tempfile.mkdtemp(prefix="hf-towers-serve-"))
    try:
        if model_dir.is_file():
            model_dir = unpack_artifact(model_dir, workdir, max_ratio=max_ratio)
        handler = HandlerHost(container_view(model_dir.resolve(), model_type, workdir))
        handler.load()
        return LocalServer((host, port), handler, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
