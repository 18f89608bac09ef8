"""``make synth``: synthesize the app, then report cdk-nag and cfn-lint per stack.

Prints one line per stack and exits non-zero on any unacknowledged finding or cfn-lint error.

The app runs as the pinned CDK CLI runs it (``cdk_cli.start_app``: same context, same templates)
without the CLI itself, which only adds its own start unless the app needs context lookups (then
the CLI synthesizes). cfn-lint runs in worker processes that load its rules while the app builds
the construct tree, and lints the templates as soon as the assembly manifest exists, while the app
still runs its validation plugins (the four nag packs, CDK's built-in template validation).
``bench/synth_breakdown.py`` prints where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_towers.tools.cdk_cli import REPO, missing_context, quiet_run_cdk, start_app

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

LintResult = tuple[int, int, list[str]]
"""(errors, warnings, messages) of cfn-lint on one template."""

LINT_WORKERS = 2
"""cfn-lint processes (at most one per CPU): the two towers' templates take most of the time."""

POLL_SECONDS = 0.05


@dataclass(frozen=True)
class StackReport:
    """Compliance figures of one synthesized stack."""

    name: str
    resources: int
    nag_findings: int
    nag_acknowledged: int
    lint_errors: int
    lint_warnings: int

    @property
    def ok(self) -> bool:
        return self.nag_findings == 0 and self.lint_errors == 0


def templates(outdir: Path) -> dict[str, Path]:
    """Stack name -> template file, from the cloud assembly manifest."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    found = {}
    for artifact_id, artifact in manifest["artifacts"].items():
        if artifact["type"] == "aws:cloudformation:stack":
            found[artifact_id] = outdir / artifact["properties"]["templateFile"]
    return found


def assembled_templates(outdir: Path) -> dict[str, Path] | None:
    """``templates(outdir)`` once the app has written the assembly, else None.

    CDK writes every template, then the manifest, then runs the validation plugins
    (``core/lib/private/synthesis.js``: ``buildAssembly`` before ``validateTemplates``), so a
    manifest that parses means the templates are complete while the app may still be running."""
    try:
        found = templates(outdir)
    except (OSError, ValueError, KeyError):  # not there yet, or half written
        return None
    return found if all(path.exists() for path in found.values()) else None


def nag_counts(outdir: Path) -> tuple[Counter[str], Counter[str]]:
    """(findings, acknowledged) per stack from CDK's validation report."""
    findings: Counter[str] = Counter()
    acknowledged: Counter[str] = Counter()
    report_file = outdir / "validation-report.json"
    if not report_file.exists():
        return findings, acknowledged
    for plugin in json.loads(report_file.read_text())["pluginReports"]:
        for kind, counter in (("violations", findings), ("suppressedViolations", acknowledged)):
            for violation in plugin.get(kind, []):
                for construct in violation.get("violatingConstructs", []):
                    counter[construct["constructPath"].split("/")[0]] += 1
    return findings, acknowledged


@cache
def _rules() -> Any:
    """cfn-lint's rules, loaded once per process (``lint_file`` reloads them per call, ~0.9 s)."""
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    return Runner(ConfigMixIn([])).rules  # the rules do not depend on the templates


def lint(template: Path) -> LintResult:
    """(errors, warnings, messages) of cfn-lint on one template: ``cfnlint.api.lint_file``'s
    matches (its default configuration), with the rules loaded once."""
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner.template import run_template_by_file_paths

    if not template.exists():
        from cfnlint.api import lint_file

        matches = lint_file(template)  # its "Template file not found" match
    else:
        matches = list(
            run_template_by_file_paths(ConfigMixIn(["--template", str(template)]), _rules())
        )
    errors = [m for m in matches if m.rule.id.startswith("E")]
    warnings = [m for m in matches if m.rule.id.startswith("W")]
    return len(errors), len(warnings), [str(m) for m in errors + warnings]


def _lint_worker(conn: Connection) -> None:
    """Load cfn-lint's rules, then lint each list of templates sent until ``None``."""
    _rules()
    while (paths := conn.recv()) is not None:
        results: dict[str, LintResult] = {}
        for path in paths:
            try:
                results[path] = lint(Path(path))
            except Exception:  # reported as that template's error
                results[path] = (1, 0, [f"cfn-lint failed: {traceback.format_exc().strip()}"])
        conn.send(results)


class LintPool:
    """cfn-lint worker processes, started (and loading the rules) before the templates exist."""

    def __init__(self, workers: int | None = None) -> None:
        workers = workers or LINT_WORKERS
        method = "fork" if sys.platform == "linux" else "spawn"
        context: Any = multiprocessing.get_context(method)
        self._workers: list[tuple[BaseProcess, Connection]] = []
        for _ in range(max(1, min(workers, os.cpu_count() or 1))):
            parent, child = context.Pipe()
            process = context.Process(target=_lint_worker, args=(child,), daemon=True)
            process.start()
            self._workers.append((process, parent))
        self._busy: list[tuple[BaseProcess, Connection, list[str]]] = []

    def submit(self, paths: list[Path]) -> None:
        """Share ``paths`` out (largest first, to the least loaded worker); lint them."""
        shares: list[list[str]] = [[] for _ in self._workers]
        loads = [0] * len(self._workers)
        for path in sorted(paths, key=lambda p: p.stat().st_size, reverse=True):
            least = loads.index(min(loads))
            shares[least].append(str(path))
            loads[least] += path.stat().st_size
        for (process, conn), share in zip(self._workers, shares, strict=True):
            if share:
                with contextlib.suppress(OSError):  # a dead worker: results() reports it
                    conn.send(share)
                self._busy.append((process, conn, share))

    def results(self) -> dict[Path, LintResult]:
        """Each submitted template's ``LintResult`` (waits for the workers)."""
        merged: dict[Path, LintResult] = {}
        for process, conn, share in self._busy:
            try:
                merged.update({Path(p): r for p, r in conn.recv().items()})
            except (EOFError, OSError):
                process.join()
                failed = f"cfn-lint worker exited (code {process.exitcode}) before linting it"
                merged.update({Path(p): (1, 0, [failed]) for p in share})
        self._busy = []
        return merged

    def close(self) -> None:
        for process, conn in self._workers:
            process.terminate()  # idle or not: a worker holds nothing but loaded rules
            process.join()
            conn.close()

    def __enter__(self) -> LintPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check(outdir: Path, linted: dict[Path, LintResult] | None = None) -> list[StackReport]:
    """Compliance report of every stack in ``outdir`` (cfn-lint here unless ``linted`` has it)."""
    findings, acknowledged = nag_counts(outdir)
    reports = []
    for name, template in templates(outdir).items():
        errors, warnings, messages = (linted or {}).get(template) or lint(template)
        for message in messages:
            print(f"  cfn-lint {name}: {message}")
        resources = len(json.loads(template.read_text()).get("Resources", {}))
        reports.append(
            StackReport(name, resources, findings[name], acknowledged[name], errors, warnings)
        )
    return reports


def synthesize(outdir: Path, config: str, pool: LintPool) -> int:
    """Synthesize ``config`` into ``outdir``; hand the templates to ``pool`` once written.

    Returns the app's exit code (the CLI's, where the app needs context lookups)."""
    process = start_app(outdir, {"config": config}, cwd=REPO)
    submitted = False
    while True:
        try:
            code = process.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
        if not submitted and (found := assembled_templates(outdir)) is not None:
            pool.submit(list(found.values()))
            submitted = True
        if code is not None:
            break
    if (outdir / "manifest.json").exists() and (lookups := missing_context(outdir)):
        print(
            f"context lookups {', '.join(lookups)}: synthesizing with the CDK CLI", file=sys.stderr
        )
        pool.results()  # the first assembly's, discarded
        shutil.rmtree(outdir, ignore_errors=True)
        code = quiet_run_cdk(
            ["synth", "--quiet", "-c", f"config={config}", "--output", str(outdir)]
        )
        submitted = False
    if (found := assembled_templates(outdir)) is None:
        return code
    if not submitted:
        pool.submit(list(found.values()))
    if code == 0:
        print(f"Successfully synthesized to {outdir}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--config",
        default="config/default.yaml",
        help="environment config (default config/default.yaml)",
    )
    args = parser.parse_args(argv)
    outdir = REPO / "cdk.out"
    # A fresh folder: after a failed synth, an older assembly must not be reported as this one.
    shutil.rmtree(outdir, ignore_errors=True)
    started = time.monotonic()
    with LintPool() as pool:
        code = synthesize(outdir, args.config, pool)
        synth_seconds = time.monotonic() - started
        if not (outdir / "manifest.json").exists():
            print(f"synth failed (exit {code}); see the messages above", file=sys.stderr)
            return code or 1
        reports = check(outdir, pool.results())
    for r in reports:
        print(
            f"{r.name:<40} {r.resources:>3} resources  nag: {r.nag_findings} unacknowledged, "
            f"{r.nag_acknowledged} acknowledged  cfn-lint: {r.lint_errors} errors, {r.lint_warnings} warnings"
        )
    ok = code == 0 and all(r.ok for r in reports)
    print(
        f"{'PASS' if ok else 'FAIL'}: {len(reports)} stacks, cdk-nag packs AwsSolutions, HIPAA Security, "
        f"NIST 800-53 R5, PCI DSS 3.2.1; cfn-lint; synth {synth_seconds:.1f} s, total {time.monotonic() - started:.1f} s"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
