"""``make synth``: synthesize with the pinned CDK CLI, then report cdk-nag and cfn-lint per stack.

Prints one line per stack and exits non-zero on any unacknowledged finding or cfn-lint error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hf_towers.tools.cdk_cli import REPO, quiet_run_cdk


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


def lint(template: Path) -> tuple[int, int, list[str]]:
    """(errors, warnings, messages) of cfn-lint on one template."""
    from cfnlint.api import lint_file

    matches = lint_file(template)
    errors = [m for m in matches if m.rule.id.startswith("E")]
    warnings = [m for m in matches if m.rule.id.startswith("W")]
    return len(errors), len(warnings), [str(m) for m in errors + warnings]


def check(outdir: Path) -> list[StackReport]:
    """Compliance report of every stack in ``outdir``."""
    findings, acknowledged = nag_counts(outdir)
    reports = []
    for name, template in templates(outdir).items():
        errors, warnings, messages = lint(template)
        for message in messages:
            print(f"  cfn-lint {name}: {message}")
        resources = len(json.loads(template.read_text()).get("Resources", {}))
        reports.append(
            StackReport(name, resources, findings[name], acknowledged[name], errors, warnings)
        )
    return reports


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
    code = quiet_run_cdk(
        ["synth", "--quiet", "-c", f"config={args.config}", "--output", str(outdir)]
    )
    synth_seconds = time.monotonic() - started
    if not (outdir / "manifest.json").exists():
        print(f"synth failed (exit {code}); see the messages above", file=sys.stderr)
        return code or 1
    reports = check(outdir)
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
