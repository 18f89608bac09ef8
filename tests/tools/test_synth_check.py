"""``make synth`` (hf_towers.tools.synth_check): the gate fails on a nag finding, a cfn-lint error
or a failed synth (never reporting an older assembly), and passes a clean assembly.

Each test runs ``main`` on a folder with its own ``cdk.json`` app: a real CDK app where the nag
packs matter, else a small script that writes a cloud assembly the way CDK does."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from hf_towers.tools import synth_check
from tests.synth_helpers import REPO

WRITE_ASSEMBLY = """
import json, os, sys
from pathlib import Path
out = Path(os.environ["CDK_OUTDIR"])
out.mkdir(parents=True, exist_ok=True)
Path("context.json").write_text(os.environ["CDK_CONTEXT_JSON"])
stack = json.loads(Path("stack.json").read_text())
(out / "Stack.template.json").write_text(json.dumps(stack))
manifest = {{"version": "55.0.0", "artifacts": {{"Stack": {{"type": "aws:cloudformation:stack",
    "properties": {{"templateFile": "Stack.template.json"}}}}}}, "missing": {missing}}}
(out / "manifest.json").write_text(json.dumps(manifest))
"""

BUCKET = {"Resources": {"Logs": {"Type": "AWS::S3::Bucket", "Properties": {}}}}


def _repo(tmp_path: Path, script: str, stack: Mapping[str, object] | None = None) -> Path:
    (tmp_path / "app_script.py").write_text(script)
    (tmp_path / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app_script.py"}))
    (tmp_path / "stack.json").write_text(json.dumps(stack or BUCKET))
    return tmp_path


def _main(
    monkeypatch: pytest.MonkeyPatch, repo: Path, config: str = "config/x.yaml", workers: int = 1
) -> int:
    monkeypatch.setattr(synth_check, "REPO", repo)
    monkeypatch.setattr(synth_check, "LINT_WORKERS", workers)
    return synth_check.main(["--config", config])


def test_a_failed_synth_does_not_report_the_previous_cdk_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = "import sys\nsys.exit('error: config/broken.yaml: towers.text: no image')\n"
    repo = _repo(tmp_path, failing)
    stale = repo / "cdk.out"
    stale.mkdir()
    (stale / "Old.template.json").write_text(json.dumps({"Resources": {}}))
    (stale / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "Old": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"templateFile": "Old.template.json"},
                    }
                }
            }
        )
    )
    assert _main(monkeypatch, repo, "config/broken.yaml") == 1
    out, err = capsys.readouterr()
    assert "synth failed (exit 1)" in err
    assert "Old" not in out and "PASS" not in out
    assert not stale.exists()


def test_a_clean_assembly_passes_and_the_app_gets_the_clis_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo(tmp_path, WRITE_ASSEMBLY.format(missing="[]"))
    assert _main(monkeypatch, repo, "config/prod.yaml") == 0
    out, err = capsys.readouterr()
    assert "Stack" in out and "cfn-lint: 0 errors, 0 warnings" in out
    assert "PASS: 1 stacks" in out
    assert f"Successfully synthesized to {repo / 'cdk.out'}" in err
    context = json.loads((repo / "context.json").read_text())
    assert context["config"] == "config/prod.yaml"
    assert context["aws:cdk:enable-path-metadata"] is True


def test_a_cfn_lint_error_fails_with_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = {"Resources": {"Logs": {"Type": "AWS::S3::Bucket", "Properties": {"BucketNam": "x"}}}}
    repo = _repo(tmp_path, WRITE_ASSEMBLY.format(missing="[]"), typo)
    assert _main(monkeypatch, repo) == 1
    out, _ = capsys.readouterr()
    assert "  cfn-lint Stack: [E3002" in out
    assert "'BucketNam'" in out
    assert "cfn-lint: 1 errors" in out
    assert "FAIL: 1 stacks" in out


def test_a_cfn_lint_crash_is_that_templates_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(template: Path) -> synth_check.LintResult:
        raise RuntimeError("schema cache is corrupt")

    monkeypatch.setattr(synth_check, "lint", crash)  # the forked workers inherit it
    repo = _repo(tmp_path, WRITE_ASSEMBLY.format(missing="[]"))
    assert _main(monkeypatch, repo) == 1
    out, _ = capsys.readouterr()
    assert "cfn-lint Stack: cfn-lint failed: Traceback" in out
    assert "RuntimeError: schema cache is corrupt" in out
    assert "FAIL" in out


def test_context_lookups_synthesize_with_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = '[{"key": "availability-zones:account=1:region=us-east-1", "provider": "x"}]'
    repo = _repo(tmp_path, WRITE_ASSEMBLY.format(missing=missing))
    calls: list[Sequence[str]] = []

    def cli(args: Sequence[str]) -> int:
        calls.append(args)
        out = Path(args[args.index("--output") + 1])
        out.mkdir()
        (out / "Stack.template.json").write_text(json.dumps(BUCKET))
        (out / "manifest.json").write_text(
            json.dumps(
                {
                    "artifacts": {
                        "Stack": {
                            "type": "aws:cloudformation:stack",
                            "properties": {"templateFile": "Stack.template.json"},
                        }
                    }
                }
            )
        )
        return 0

    monkeypatch.setattr(synth_check, "quiet_run_cdk", cli)
    assert _main(monkeypatch, repo) == 0
    out, err = capsys.readouterr()
    assert "context lookups availability-zones:account=1:region=us-east-1" in err
    assert calls and "config=config/x.yaml" in calls[0] and calls[0][0] == "synth"
    assert "PASS: 1 stacks" in out


NAG_APP = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from aws_cdk import App, Stack, aws_s3 as s3
from hf_towers.compliance import add_nag_packs
from hf_towers.feature_flags import FEATURE_FLAGS
app = App(context=FEATURE_FLAGS)
s3.Bucket(Stack(app, "bad"), "Plain")
add_nag_packs(app)
app.synth()
"""


@pytest.mark.slow
def test_a_nag_finding_fails_and_the_report_is_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    repo = _repo(tmp_path, NAG_APP)
    assert _main(monkeypatch, repo, workers=2) == 1
    out, err = capfd.readouterr()
    line = next(line for line in out.splitlines() if line.startswith("bad "))
    unacknowledged = int(line.split("nag: ")[1].split(" unacknowledged")[0])
    assert unacknowledged >= 10  # S3 logging, SSL, versioning, ... in all four packs
    assert "FAIL: 1 stacks" in out
    # The app prints the report itself, in the CLI's words.
    assert "ERROR The S3 Bucket has server access logs disabled. (AwsSolutions)" in err
    assert "Acknowledge with 'PCI.DSS.321::PCI.DSS.321-S3DefaultEncryptionKMS'" in err
