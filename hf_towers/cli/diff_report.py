"""``python main.py diff --base REF``: the offline PR risk report.

Synthesizes ``REF`` and the working tree without AWS credentials, compares the templates
(``hf_towers.risk``), prints the Markdown report and optionally writes it to ``--output``.

Exit codes: 0 report produced (and ``--fail-on`` not triggered); 1 ``--fail-on risky`` with
at least one risky change, or ``--fail-on any`` with at least one resource change; 2 the report
could not be produced (bad ref, synth failed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hf_towers.risk.report import render_error, render_markdown
from hf_towers.risk.rules import evaluate
from hf_towers.risk.synth import SynthError, synth_base_and_worktree
from hf_towers.risk.template_diff import diff_assemblies

FAIL_ON_CHOICES = ("never", "risky", "any")
EXIT_OK, EXIT_FAIL_ON, EXIT_ERROR = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--base``, ``--fail-on`` and ``--output`` to ``parser``."""
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
        help="exit 1 on risky changes (risky) or on any resource change (any); default never",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="also write the Markdown report to FILE",
    )


def _write(output: Path | None, text: str) -> None:
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")


def run_offline_diff(repo_dir: Path, base: str, fail_on: str, output: Path | None) -> int:
    """Produce the report for ``base`` vs the working tree of ``repo_dir``; the exit code."""
    if fail_on not in FAIL_ON_CHOICES:
        raise ValueError(f"fail_on must be one of {FAIL_ON_CHOICES}, not {fail_on!r}")
    try:
        pair = synth_base_and_worktree(repo_dir, base)
    except SynthError as err:
        text = render_error(f"`{base}`", str(err))
        _write(output, text)
        print(text)
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    diffs = diff_assemblies(pair.base, pair.head)
    findings = evaluate(diffs)
    text = render_markdown(diffs, findings, f"`{base}` ({pair.base_sha[:12]})")
    _write(output, text)
    print(text)
    if fail_on == "risky" and findings:
        return EXIT_FAIL_ON
    if fail_on == "any" and any(diff.changes for diff in diffs):
        return EXIT_FAIL_ON
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hf_towers.cli.diff_report --base REF``: the report on its own."""
    parser = argparse.ArgumentParser(
        prog="diff_report", description="Offline PR risk report of a git ref vs the working tree."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not args.base:
        parser.error("--base is required")
    return run_offline_diff(Path.cwd(), args.base, args.fail_on, args.output)


if __name__ == "__main__":
    sys.exit(main())
