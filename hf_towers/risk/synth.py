"""Synthesize the CDK app of a git ref, and of the working tree, without AWS credentials.

A ref is exported with ``git archive <sha> | tar -x`` into a temporary directory (the
repository's worktrees, index and HEAD are untouched), then its app runs as
``<this python> app.py`` with ``CDK_OUTDIR`` pointing at a temporary cloud assembly
directory, the venv's ``bin`` (Node for jsii) first on ``PATH``, the ``context`` of its
``cdk.json`` plus ``cdk.context.json`` in ``CDK_CONTEXT_JSON`` (what the CDK CLI would pass)
and AWS credentials removed from the environment. The working tree is synthesized the same way
in place. Templates are read back from ``manifest.json`` (nested assemblies of stages too) as
stack display name -> template.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Assembly = dict[str, dict[str, Any]]

SYNTH_TIMEOUT_S = 900
# Never let an "offline" synth pick up credentials, even when the CI job has some.
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class SynthError(RuntimeError):
    """A ref could not be resolved or exported, or the app failed to synthesize."""


@dataclass(frozen=True)
class RepoLocation:
    """The git top level and where the CDK app lives below it ("" at the top)."""

    toplevel: Path
    prefix: str


def _git(repo_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise SynthError("git is not installed")
    try:
        # Fixed executable; arguments are ours (refs are resolved to a SHA before use).
        return subprocess.run(  # noqa: S603
            [git, "-C", str(repo_dir), *args], capture_output=True, check=True, timeout=300
        )
    except subprocess.CalledProcessError as err:
        message = err.stderr.decode(errors="replace").strip()
        raise SynthError(f"git {' '.join(args)} failed: {message}") from err


def locate(repo_dir: Path) -> RepoLocation:
    """The repository containing ``repo_dir``."""
    top = _git(repo_dir, "rev-parse", "--show-toplevel").stdout.decode().strip()
    prefix = _git(repo_dir, "rev-parse", "--show-prefix").stdout.decode().strip()
    return RepoLocation(Path(top), prefix.rstrip("/"))


def resolve_ref(repo_dir: Path, ref: str) -> str:
    """The commit SHA ``ref`` names; SynthError for anything that is not a commit."""
    if not ref or ref.startswith("-"):
        raise SynthError(f"not a git ref: {ref!r}")
    out = _git(
        repo_dir, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
    )
    return out.stdout.decode().strip()


def export_ref(repo_dir: Path, sha: str, dest: Path) -> None:
    """Write the tree of commit ``sha`` into ``dest`` (no .git, worktree state untouched)."""
    archive = _git(repo_dir, "archive", "--format=tar", sha).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


def _app_script(app_dir: Path) -> str:
    """The Python script of the app: from cdk.json's ``app`` when it is ``python X.py``."""
    cdk_json = app_dir / "cdk.json"
    if cdk_json.is_file():
        app = json.loads(cdk_json.read_text(encoding="utf-8")).get("app", "")
        words = str(app).split()
        if (
            len(words) == 2
            and Path(words[0]).name.startswith("python")
            and words[1].endswith(".py")
        ):
            return words[1]
    return "app.py"


def _context(app_dir: Path) -> dict[str, Any]:
    """What the CDK CLI passes as context: cdk.json's ``context``, then cdk.context.json."""
    context: dict[str, Any] = {}
    cdk_json = app_dir / "cdk.json"
    if cdk_json.is_file():
        context.update(json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {}))
    cached = app_dir / "cdk.context.json"
    if cached.is_file():
        context.update(json.loads(cached.read_text(encoding="utf-8")))
    return context


def synth_env(outdir: Path, app_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an offline synth."""
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    for name in CREDENTIAL_VARIABLES:
        env.pop(name, None)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *filter(None, [env.get("PATH")])])
    env["CDK_OUTDIR"] = str(outdir)
    env["CDK_CONTEXT_JSON"] = json.dumps(_context(app_dir))
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def synth_app(app_dir: Path, outdir: Path, timeout: float = SYNTH_TIMEOUT_S) -> Assembly:
    """Run the app in ``app_dir`` into ``outdir`` and return its stacks' templates."""
    script = _app_script(app_dir)
    if not (app_dir / script).is_file():
        raise SynthError(f"no CDK app: {app_dir / script} does not exist")
    try:
        # Fixed executable (this interpreter) running the app's own script.
        proc = subprocess.run(  # noqa: S603
            [sys.executable, script],
            cwd=app_dir,
            env=synth_env(outdir, app_dir),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise SynthError(f"synth of {app_dir} timed out after {timeout:.0f} s") from err
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip()[-4000:]
        raise SynthError(f"synth of {app_dir} failed (exit {proc.returncode}):\n{tail}")
    return read_assembly(outdir)


def read_assembly(outdir: Path) -> Assembly:
    """Stack display name -> template, from a cloud assembly directory."""
    manifest_file = outdir / "manifest.json"
    if not manifest_file.is_file():
        raise SynthError(f"no cloud assembly in {outdir}: manifest.json missing")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    stacks: Assembly = {}
    for artifact_id, artifact in (manifest.get("artifacts") or {}).items():
        kind = artifact.get("type")
        props = artifact.get("properties") or {}
        if kind == "aws:cloudformation:stack":
            template = json.loads((outdir / props["templateFile"]).read_text(encoding="utf-8"))
            stacks[str(artifact.get("displayName") or artifact_id)] = template
        elif kind == "cdk:cloud-assembly":
            stacks.update(read_assembly(outdir / props["directoryName"]))
    return stacks


@dataclass(frozen=True)
class SynthPair:
    """Both sides of the diff."""

    base_sha: str
    base: Assembly
    head: Assembly


def synth_base_and_worktree(repo_dir: Path, base_ref: str) -> SynthPair:
    """Synthesize ``base_ref`` and the working tree of ``repo_dir`` (in parallel)."""
    location = locate(repo_dir)
    sha = resolve_ref(location.toplevel, base_ref)
    with tempfile.TemporaryDirectory(prefix="hf-towers-diff-") as tmp:
        tmp_path = Path(tmp)
        source = tmp_path / "base"
        source.mkdir()
        export_ref(location.toplevel, sha, source)
        base_app = source / location.prefix if location.prefix else source
        head_app = location.toplevel / location.prefix if location.prefix else location.toplevel
        with ThreadPoolExecutor(max_workers=2) as pool:
            base_job = pool.submit(synth_app, base_app, tmp_path / "base.out")
            head_job = pool.submit(synth_app, head_app, tmp_path / "head.out")
            return SynthPair(sha, base_job.result(), head_job.result())
