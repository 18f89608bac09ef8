"""The fixtures fail (never skip or hang) when MiniStack or its venv cannot be set up."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from .ministack_server import MiniStack, MiniStackError
from .ministack_venv import MiniStackVenvError, ensure_venv


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


def test_a_venv_that_cannot_be_installed_fails_naming_the_file(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements-ministack.txt"
    requirements.write_text("ministack===\n")  # rejected by pip's parser: no index is asked
    with pytest.raises(MiniStackVenvError) as failure:
        ensure_venv(tmp_path / "venv", requirements)
    assert str(requirements) in str(failure.value)
    assert not (tmp_path / "venv" / ".requirements-sha256").exists()  # retried next time
