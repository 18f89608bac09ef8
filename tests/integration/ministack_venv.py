"""The MiniStack server's own venv: ``.venv/ministack``, from ``requirements-ministack.txt``.

MiniStack pins ``botocore`` exactly (1.5.33: 1.43.106) and the project pins another botocore, so
the emulator cannot live in the project's venv. It is a separate server process anyway; its
interpreter also runs the Python Lambdas (the handler's boto3 comes from here).

Made on first use (``pip`` from the package index, as ``make`` does for ``.venv``) and remade
when the requirements file changes (a stamp holds its hash); a file lock serialises concurrent
test runs. ``python -m tests.integration.ministack_venv`` makes it ahead of time.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import venv
from pathlib import Path

from hf_towers.tools.cdk_cli import REPO

REQUIREMENTS = Path(__file__).resolve().parent / "requirements-ministack.txt"
VENV = REPO / ".venv" / "ministack"
INSTALL_TIMEOUT_S = 600


class MiniStackVenvError(RuntimeError):
    """The venv could not be made; the message has pip's output and what to do."""


def _digest(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def ensure_venv(path: Path = VENV, requirements: Path = REQUIREMENTS) -> Path:
    """The Python of an up-to-date MiniStack venv at ``path`` (made or remade if needed)."""
    python = path / "bin" / "python"
    stamp = path / ".requirements-sha256"
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f"{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (
            python.exists()
            and stamp.exists()
            and stamp.read_text().strip() == _digest(requirements)
        ):
            return python
        venv.EnvBuilder(clear=True, with_pip=True).create(path)
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
             str(requirements)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise MiniStackVenvError(
                f"pip could not install {requirements} into "
                f"{path} (exit {result.returncode}); the package index must be reachable, or "
                f"fix the pins in that file:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
            )
        stamp.write_text(_digest(requirements) + "\n")
        return python


if __name__ == "__main__":
    print(ensure_venv())
    sys.exit(0)
