"""Synthesize the CDK app of a git ref, and of the working tree, without AWS credentials.

A ref is exported with ``git archive <sha> | tar -x`` into a temporary directory (the
repository's worktrees, index and HEAD are untouched), then its app runs as
``<this python> app.py`` with ``CDK_OUTDIR`` pointing at a temporary cloud assembly
directory, the venv's ``bin`` (Node for jsii) first on ``PATH``, the ``context`` of its
``cdk.json`` plus ``cdk.context.json`` in ``CDK_CONTEXT_JSON`` (what the CDK CLI would pass)
and AWS credentials removed from the environment. The working tree is synthesized the same way
in place. Templates are read back from ``manifest.json`` (nested assemblies of stages too) as
stack display name -> template.

Every environment the repository deploys is compared (``discover_environments``): each
``config/*.yaml`` except the pipeline file, and each file the pipeline's ``environments`` lists.
Each side runs in ONE Python process that synthesizes all of its environments in turn (the
app's ``App`` gets ``outdir`` and the ``config`` context per environment), so the jsii/Node start
is paid once per side, not once per environment.
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
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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


CONFIG_DIR = "config"
APP_DEFAULTS = ""
"""The environment key of an app without environment files: the app synthesized as it is."""
PIPELINE_FILE = "config/pipeline.yaml"
YAML_SUFFIXES = (".yaml", ".yml")


class SynthError(RuntimeError):
    """A ref could not be resolved or exported, or the app failed to synthesize."""


class SelectionError(SynthError):
    """A ``--config`` path that is not an environment config file of the app."""


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


def _pipeline_environments(app_dir: Path, where: str) -> list[str]:
    """The ``environments`` that ``config/pipeline.yaml`` in ``app_dir`` lists (none without it)."""
    pipeline = app_dir / PIPELINE_FILE
    if not pipeline.is_file():
        return []
    try:
        data = yaml.safe_load(pipeline.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise SynthError(
            f"{PIPELINE_FILE} ({where}): cannot be read as YAML ({err}): fix the file so the "
            "report can list the environments the pipeline deploys"
        ) from None
    listed = data.get("environments") if isinstance(data, dict) else None
    if listed is None:
        return []
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise SynthError(
            f"{PIPELINE_FILE} ({where}): environments = {listed!r}: must be a list of "
            "environment config files (config/dev.yaml, ...)"
        )
    return [Path(item).as_posix().removeprefix("./") for item in listed]


def discover_environments(app_dir: Path, where: str = "working tree") -> list[str]:
    """Every environment config ``app_dir`` deploys, as paths relative to it, sorted: each
    ``config/*.yaml`` (``.yml``) except the pipeline file, and each file the pipeline lists.
    ``config/examples/`` are examples, not deployed: not included."""
    found = {
        path.relative_to(app_dir).as_posix()
        for suffix in YAML_SUFFIXES
        for path in (app_dir / CONFIG_DIR).glob(f"*{suffix}")
        if path.is_file()
    }
    found.discard(PIPELINE_FILE)
    found.update(_pipeline_environments(app_dir, where))
    return sorted(found)


def select_environments(
    configs: Sequence[Path], cwd: Path, app_dirs: Mapping[str, Path]
) -> list[str]:
    """The ``--config`` paths (relative to ``cwd``) as paths relative to the app, checked: each
    must be a YAML file of the app in at least one of ``app_dirs`` (side label -> app
    directory; the first is the working tree) and not the pipeline file."""
    head = next(iter(app_dirs.values()))
    selected: list[str] = []
    for config in configs:
        absolute = (cwd / config).resolve()
        try:
            relative = absolute.relative_to(head.resolve()).as_posix()
        except ValueError:
            raise SelectionError(
                f"--config {config}: is outside the CDK app ({head}): pass an environment "
                "file of the app, e.g. config/prod.yaml"
            ) from None
        if not relative.endswith(YAML_SUFFIXES):
            raise SelectionError(
                f"--config {config}: not a config file (expected .yaml or .yml): pass an "
                "environment file, e.g. config/prod.yaml"
            )
        if relative == PIPELINE_FILE:
            listed = ", ".join(_pipeline_environments(head, "working tree")) or "config/dev.yaml"
            raise SelectionError(
                f"--config {config}: is the pipeline config, not an environment: pass the "
                f"environment files it lists ({listed})"
            )
        if not any((app / relative).is_file() for app in app_dirs.values()):
            sides = " nor in ".join(app_dirs)
            raise SelectionError(
                f"--config {config}: no such file in the {sides}: pass an existing "
                "environment file, e.g. config/prod.yaml"
            )
        if relative not in selected:
            selected.append(relative)
    return selected


# Runs in the app's directory with the app's own interpreter setup: synthesizes each
# (config, outdir) job by running the app script with ``aws_cdk.App`` wrapped so that it gets
# that outdir and ``config`` as post-CLI context (AppProps.postCliContext "has precedence over
# context set by the CLI via --context", i.e. CDK_CONTEXT_JSON;
# https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.AppProps.html#postclicontext). A
# ``sys.exit("error: ...")`` of the app (its config messages) is that environment's error.
_DRIVER = """
import json, os, runpy, sys, traceback
sys.path.insert(0, os.getcwd())
import aws_cdk
script, jobs_file, results_file = sys.argv[1:4]
real_app = aws_cdk.App
results = {}
for config, outdir in json.loads(open(jobs_file, encoding="utf-8").read()):
    def app(*args, _config=config, _outdir=outdir, **kwargs):
        post = dict(kwargs.pop("post_cli_context", None) or {})
        if _config:
            post["config"] = _config
        kwargs["outdir"] = _outdir
        return real_app(*args, post_cli_context=post, **kwargs)
    aws_cdk.App = app
    try:
        runpy.run_path(script, run_name="__main__")
        results[config] = None
    except SystemExit as exc:
        code = exc.code
        results[config] = None if code in (None, 0) else f"the app exited with: {code}"
    except BaseException:
        results[config] = traceback.format_exc(limit=8)
    finally:
        aws_cdk.App = real_app
with open(results_file, "w", encoding="utf-8") as out:
    json.dump(results, out)
"""


@dataclass(frozen=True)
class SideResult:
    """One side's environments: config -> templates, or config -> why it failed."""

    assemblies: dict[str, Assembly]
    errors: dict[str, str]


def synth_configs(
    app_dir: Path, configs: Sequence[str], outdir: Path, timeout: float = SYNTH_TIMEOUT_S
) -> SideResult:
    """Synthesize the app in ``app_dir`` once per config (paths relative to it that exist
    there), all in one process; each into its own folder under ``outdir``."""
    if not configs:
        return SideResult({}, {})
    script = _app_script(app_dir)
    if not (app_dir / script).is_file():
        message = f"no CDK app: {app_dir / script} does not exist"
        return SideResult({}, dict.fromkeys(configs, message))
    outdir.mkdir(parents=True, exist_ok=True)
    jobs = [(config, str(outdir / f"env{index}.out")) for index, config in enumerate(configs)]
    jobs_file, results_file = outdir / "jobs.json", outdir / "results.json"
    jobs_file.write_text(json.dumps(jobs), encoding="utf-8")
    try:
        # Fixed executable (this interpreter) running our driver on the app's own script.
        proc = subprocess.run(  # noqa: S603
            [sys.executable, "-c", _DRIVER, script, str(jobs_file), str(results_file)],
            cwd=app_dir,
            env=synth_env(outdir, app_dir),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        message = f"synth of {app_dir} timed out after {timeout:.0f} s"
        return SideResult({}, dict.fromkeys(configs, message))
    if proc.returncode != 0 or not results_file.is_file():
        tail = proc.stderr.decode(errors="replace").strip()[-4000:]
        message = f"synth of {app_dir} failed (exit {proc.returncode}):\n{tail}"
        return SideResult({}, dict.fromkeys(configs, message))
    results: dict[str, str | None] = json.loads(results_file.read_text(encoding="utf-8"))
    assemblies: dict[str, Assembly] = {}
    errors: dict[str, str] = {}
    for config, env_out in jobs:
        error = results.get(config, "not synthesized")
        if error is None:
            try:
                assemblies[config] = read_assembly(Path(env_out))
            except SynthError as err:
                errors[config] = str(err)
        else:
            errors[config] = error
    return SideResult(assemblies, errors)


@dataclass(frozen=True)
class EnvironmentPair:
    """One environment on both sides; a side is None where the file does not exist there
    (a new or a deleted environment), ``error`` says why a side could not be synthesized."""

    config: str
    base: Assembly | None
    head: Assembly | None
    error: str | None = None

    @property
    def status(self) -> str:
        """added, removed, compared or failed."""
        if self.error is not None:
            return "failed"
        if self.base is None:
            return "added"
        if self.head is None:
            return "removed"
        return "compared"


@dataclass(frozen=True)
class EnvironmentsPair:
    """Every selected environment of the base ref and of the working tree."""

    base_sha: str
    environments: tuple[EnvironmentPair, ...]


def _present(app_dir: Path, config: str) -> bool:
    if config == APP_DEFAULTS:
        return (app_dir / _app_script(app_dir)).is_file()
    return (app_dir / config).is_file()


def synth_environments(
    repo_dir: Path,
    base_ref: str,
    configs: Sequence[Path] | None = None,
    cwd: Path | None = None,
) -> EnvironmentsPair:
    """Synthesize the selected environments (``configs``, relative to ``cwd``, default the
    current directory; none: every one either side deploys) of ``base_ref`` and of the working
    tree of ``repo_dir`` (the two sides in parallel)."""
    location = locate(repo_dir)
    sha = resolve_ref(location.toplevel, base_ref)
    with tempfile.TemporaryDirectory(prefix="hf-towers-diff-") as tmp:
        tmp_path = Path(tmp)
        source = tmp_path / "base"
        source.mkdir()
        export_ref(location.toplevel, sha, source)
        base_app = source / location.prefix if location.prefix else source
        head_app = location.toplevel / location.prefix if location.prefix else location.toplevel
        label = f"base {base_ref}"
        if configs:
            selected = select_environments(
                configs, cwd or Path.cwd(), {"working tree": head_app, label: base_app}
            )
        else:
            selected = sorted(
                {*discover_environments(head_app), *discover_environments(base_app, label)}
            )
            # An app without environment files: compare it as it synthesizes by default.
            selected = selected or [APP_DEFAULTS]
        in_base = [c for c in selected if _present(base_app, c)]
        in_head = [c for c in selected if _present(head_app, c)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            base_job = pool.submit(synth_configs, base_app, in_base, tmp_path / "base.out")
            head_job = pool.submit(synth_configs, head_app, in_head, tmp_path / "head.out")
            base, head = base_job.result(), head_job.result()
    pairs = []
    for config in selected:
        errors = [
            f"{side}: {side_result.errors[config]}"
            for side, side_result in ((label, base), ("working tree", head))
            if config in side_result.errors
        ]
        pairs.append(
            EnvironmentPair(
                config,
                base.assemblies.get(config),
                head.assemblies.get(config),
                "\n".join(errors) if errors else None,
            )
        )
    return EnvironmentsPair(sha, tuple(pairs))
