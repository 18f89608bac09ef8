"""The console script ``make synth`` installs: the CLI works from any folder, with the venv's
Python and Node, without ``python main.py`` from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "hf-towers"


def test_the_console_script_runs_from_another_folder(tmp_path: Path) -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} is missing: `make synth` installs it (pip install -e .)"
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"\0" * 1024 * 1024)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(SCRIPT), "recommend", str(model), "--top", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"{model}: 0.00 GiB" in result.stdout
    usage = subprocess.run(
        [str(SCRIPT), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert usage.stdout.startswith("usage: hf-towers ")
