"""Run the pinned AWS CDK CLI (``node_modules/aws-cdk``) with the venv's Node, or the app as it runs it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
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


CLI_CONTEXT: dict[str, object] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
}
"""What the pinned CLI adds to the context of every app it synthesizes (its ``CDK_CONTEXT_JSON``):
``aws:cdk:path`` metadata, asset metadata, the ``CDKMetadata`` resource, bundling every stack.
``tests/tools/test_cdk_cli.py`` checks that ``start_app`` writes the templates the CLI writes."""


def app_context(context_args: Mapping[str, str], *, cwd: Path = REPO) -> dict[str, object]:
    """The context ``cdk synth -c KEY=VALUE ...`` gives the app: ``~/.cdk.json``'s, ``cdk.json``'s
    and ``cdk.context.json``'s ``context``, then the ``-c`` values, then ``CLI_CONTEXT``."""
    context: dict[str, object] = {}
    for settings in (Path.home() / ".cdk.json", cwd / "cdk.json"):
        if settings.exists():
            context.update(json.loads(settings.read_text()).get("context", {}))
    if (cwd / "cdk.context.json").exists():
        context.update(json.loads((cwd / "cdk.context.json").read_text()))
    return {**context, **context_args, **CLI_CONTEXT}


def start_app(
    outdir: Path, context_args: Mapping[str, str], *, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """Start ``cdk.json``'s app as ``cdk synth --output OUTDIR`` starts it, without the CLI.

    The app writes the cloud assembly and prints cdk-nag's report itself (``CDK_APP_MODE=process``:
    the report on stderr and ``validation-report.json``, no exception). What the CLI would add
    is a Node start and its toolkit (~0.8 s), and context lookups, which this app never needs
    (``missing_context`` tells; ``synth_check`` then asks the CLI)."""
    app = json.loads((cwd / "cdk.json").read_text())["app"]
    env = {
        **cdk_environment(),
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(app_context(context_args, cwd=cwd)),
        "CDK_APP_MODE": "process",
    }
    return subprocess.Popen(shlex.split(app), cwd=cwd, env=env)  # noqa: S603 - cdk.json's app


def missing_context(outdir: Path) -> list[str]:
    """Context lookups the app asked for (the manifest's ``missing``): only the CLI resolves them."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    return [str(entry.get("key")) for entry in manifest.get("missing", [])]
