"""The MiniStack server of the integration tier: one per module, stopped even when a step fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .ministack_server import MiniStack
from .ministack_venv import ensure_venv


@pytest.fixture(scope="module")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniStack]:
    """A started server (127.0.0.1, AUTH=true, HTTPS). Fails (never skips) if it cannot start."""
    server = MiniStack(Path(tmp_path_factory.mktemp("ministack")), python=str(ensure_venv()))
    try:
        server.start()
        yield server
    finally:
        server.stop()
