"""Run the pinned AWS CDK CLI (``node_modules/aws-cdk``) with the venv's Node."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CDK_ENTRY = REPO / "node_modules" / "aws-cdk" / "bin" / "cdk"


def cdk_environment() -> dict[str, str]:
    """The process environment for the CLI: venv bin first (Node >= 22), no update/telemetry calls."""
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    env.setdefault("CDK_DISABLE_VERSION_CHECK", "1")
    env.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    return env


def cdk_command(args: Sequence[str]) -> list[str]:
    """The argv that runs ``cdk <args>`` with the pinned CLI."""
    if not CDK_ENTRY.exists():
        raise SystemExit(
            f"the pinned CDK CLI is missing ({CDK_ENTRY}): run `make synth` once to install it"
        )
    node = shutil.which("node", path=cdk_environment()["PATH"])
    if node is None:
        raise SystemExit("no node on PATH: run `make synth` once to create the venv with Node 24")
    return [node, str(CDK_ENTRY), *args, "--no-notices"]


NOISE = (
    re.compile(r"^Supply a stack id \(.*\) to display its template\.$"),
    re.compile(r"^\d+ feature flags are not configured\. Run 'cdk flags --unstable=flags'"),
)
"""CLI lines that are not about this app: ``synth --quiet`` names the stacks it did not print,
and the flag count counts flags missing from ``cdk.json`` (they are set in code,
``hf_towers/feature_flags.py``). Everything else, warnings included, is passed through."""


def quiet_run_cdk(args: Sequence[str], *, cwd: Path = REPO) -> int:
    """``run_cdk`` without the CLI's noise lines (``NOISE``); returns the CLI's exit code."""
    result = subprocess.run(  # noqa: S603 - argv built above
        cdk_command(args), cwd=cwd, env=cdk_environment(), capture_output=True, text=True
    )
    for stream, text in ((sys.stdout, result.stdout), (sys.stderr, result.stderr)):
        lines = [line for line in text.splitlines() if not any(n.match(line) for n in NOISE)]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if lines:
            print("\n".join(lines), file=stream, flush=True)
    return result.returncode


def run_cdk(args: Sequence[str], *, cwd: Path = REPO) -> int:
    """Run the CLI in ``cwd`` with output passed through; returns its exit code."""
    return subprocess.call(cdk_command(args), cwd=cwd, env=cdk_environment())  # noqa: S603 - argv built above
