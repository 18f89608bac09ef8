"""The README's command blocks: each ``bash`` block says whether it runs offline, and those that
do run here, as printed, from the repository root (``.venv/bin`` first on PATH, as after
``make synth``). A new block without a ``<!-- readme-test: ... -->`` line fails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<tag>[^>]*?) -->\n)?```bash\n(?P<body>.*?)```", re.S)


def _blocks() -> list[tuple[str | None, str]]:
    return [(m["tag"], m["body"]) for m in BLOCK.finditer(README.read_text())]


def test_every_bash_block_says_whether_it_runs() -> None:
    untagged = [body.splitlines()[0] for tag, body in _blocks() if tag is None]
    assert untagged == [], "add <!-- readme-test: run --> or <!-- readme-test: skip: why -->"
    tags = {tag for tag, _ in _blocks()}
    assert all(t == "run" or (t or "").startswith("skip: ") for t in tags), tags


def test_the_offline_blocks_run_as_printed() -> None:
    runnable = [body for tag, body in _blocks() if tag == "run"]
    assert runnable, "the README shows no command a newcomer can try offline"
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HF_HUB_OFFLINE": "1",
    }
    for body in runnable:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body],
            cwd=README.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (
            f"{body}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
        if "invocations" in body:
            assert (
                '{"embeddings":[[' in result.stdout
                and '"truncated":[false, false]}' in result.stdout
            )
