"""``python main.py diff --base REF``: the offline PR risk report of every environment.

Synthesizes ``REF`` and the working tree without AWS credentials, once per environment the
repository deploys (each ``config/*.yaml`` but the pipeline file, and each file that
``config/pipeline.yaml`` lists; ``--config PATH``, repeatable, selects a subset), compares the
templates (``hf_towers.risk``), prints the Markdown report (one section per environment) and
optionally writes it to ``--output``.

Exit codes: 0 report produced (and ``--fail-on`` not triggered); 1 ``--fail-on risky`` with
at least one risky change, or ``--fail-on any`` with at least one resource change, in any
environment; 2 the report could not be produced completely (bad ref, a ``--config`` that is not
an environment file, an environment failed to synthesize).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from hf_towers.risk.report import EnvironmentReport, render_error, render_report
from hf_towers.risk.rules import evaluate
from hf_towers.risk.synth import (
    EnvironmentPair,
    SynthError,
    discover_environments,
    synth_environments,
)
from hf_towers.risk.template_diff import diff_assemblies

FAIL_ON_CHOICES = ("never", "risky", "any")
EXIT_OK, EXIT_FAIL_ON, EXIT_ERROR = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser, *, config: bool = True) -> None:
    """Add ``--base``, ``--fail-on``, ``--output`` and (unless the parser has its own)
    the repeatable ``--config`` to ``parser``."""
    parser.add_argument(
        "--base",
        metavar="REF",
        help="git ref to compare the working tree with (e.g. origin/main); "
        "synthesizes both offline and prints a Markdown risk report",
    )
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default="never",
        help="exit 1 on risky changes (risky) or on any resource change (any) in any "
        "environment; default never",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="also write the Markdown report to FILE",
    )
    if config:
        parser.add_argument(
            "--config",
            type=Path,
            action="append",
            metavar="PATH",
            help="environment file to report on (repeatable); default every one the "
            "repository deploys (config/*.yaml and the pipeline's environments)",
        )


def _write(output: Path | None, text: str) -> None:
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")


def environment_report(pair: EnvironmentPair) -> EnvironmentReport:
    """Compare one environment's two sides (a missing side has no stacks)."""
    if pair.error is not None:
        return EnvironmentReport(pair.config or "app.py", "failed", error=pair.error)
    diffs = diff_assemblies(pair.base or {}, pair.head or {})
    return EnvironmentReport(pair.config or "app.py", pair.status, diffs, evaluate(diffs))


def run_offline_diff(
    repo_dir: Path,
    base: str,
    fail_on: str,
    output: Path | None,
    configs: Sequence[Path] | None = None,
    cwd: Path | None = None,
) -> int:
    """Produce the report for ``base`` vs the working tree of ``repo_dir``; the exit code.
    ``configs`` (relative to ``cwd``) selects environments; default every deployed one."""
    if fail_on not in FAIL_ON_CHOICES:
        raise ValueError(f"fail_on must be one of {FAIL_ON_CHOICES}, not {fail_on!r}")
    try:
        pairs = synth_environments(repo_dir, base, configs, cwd)
    except SynthError as err:
        text = render_error(f"`{base}`", str(err))
        _write(output, text)
        print(text)
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    environments = [environment_report(pair) for pair in pairs.environments]
    text = render_report(environments, f"`{base}` ({pairs.base_sha[:12]})")
    _write(output, text)
    print(text)
    failed = [env for env in environments if env.status == "failed"]
    if failed:
        for env in failed:
            print(f"error: {env.config}: could not be synthesized:\n{env.error}", file=sys.stderr)
        return EXIT_ERROR
    if fail_on == "risky" and any(env.findings for env in environments):
        return EXIT_FAIL_ON
    if fail_on == "any" and any(env.changed for env in environments):
        return EXIT_FAIL_ON
    return EXIT_OK


def list_environments(repo_dir: Path) -> list[dict[str, str | None]]:
    """The environments the working tree deploys, for a CI matrix: ``config`` (the file),
    ``name`` (its stem; its path where two files share a stem), ``role_variable`` (``CDK_DIFF_ROLE_ARN_<NAME>``, the repository
    variable holding that environment's read-only role) and ``region`` (its ``region`` key,
    None when the file does not name one)."""
    rows: list[dict[str, str | None]] = []
    configs = discover_environments(repo_dir)
    stems = [Path(config).stem for config in configs]
    for config, stem in zip(configs, stems, strict=True):
        # The stem names the environment; two files with one stem: the whole path does.
        name = stem if stems.count(stem) == 1 else Path(config).with_suffix("").as_posix()
        name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
        try:
            data = yaml.safe_load((repo_dir / config).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None
        region = data.get("region") if isinstance(data, dict) else None
        variable = "CDK_DIFF_ROLE_ARN_" + name.replace("-", "_").upper()
        rows.append(
            {
                "config": config,
                "name": name,
                "role_variable": variable,
                "region": region if isinstance(region, str) else None,
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hf_towers.cli.diff_report --base REF``: the report on its own;
    ``--list-environments`` prints the deployed environments as JSON (the CI matrix)."""
    parser = argparse.ArgumentParser(
        prog="diff_report", description="Offline PR risk report of a git ref vs the working tree."
    )
    add_arguments(parser)
    parser.add_argument(
        "--list-environments",
        action="store_true",
        help="print the environments the working tree deploys as a JSON list and stop",
    )
    args = parser.parse_args(argv)
    if args.list_environments:
        print(json.dumps(list_environments(Path.cwd())))
        return EXIT_OK
    if not args.base:
        parser.error("--base is required")
    return run_offline_diff(Path.cwd(), args.base, args.fail_on, args.output, args.config)


if __name__ == "__main__":
    sys.exit(main())
