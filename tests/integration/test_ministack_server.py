"""The server fixture fails (never skips or hangs) when MiniStack cannot start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from .ministack_server import MiniStack, MiniStackError


def test_a_server_that_cannot_start_fails_with_its_output(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'No module named ministack' >&2\nexit 1\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    server = MiniStack(tmp_path, python=str(python))
    with pytest.raises(MiniStackError) as failure:
        server.start()
    message = str(failure.value)
    assert "exited with 1" in message
    assert "No module named ministack" in message
    assert "requirements-ministack.txt" in message
