"""``main.py diff --base``: the offline report end to end, on two real versions of a CDK app."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hf_towers.cli import diff_report
from hf_towers.cli.diff_report import add_arguments, run_offline_diff
from hf_towers.risk.synth import SynthPair

APP = """\
import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

BUCKET_NAME = "hf-towers-e2e-artifacts"
ACTIONS = ["s3:GetObject"]
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/infer:1"

app = cdk.App()
stack = cdk.Stack(app, "E2eStack")
bucket = s3.Bucket(stack, "Artifacts", bucket_name=BUCKET_NAME)
role = iam.Role(stack, "ExecRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
iam.Policy(
    stack,
    "ReadArtifacts",
    roles=[role],
    statements=[iam.PolicyStatement(actions=ACTIONS, resources=[bucket.arn_for_objects("*")])],
)
sagemaker.CfnModel(
    stack,
    "Model",
    execution_role_arn=role.role_arn,
    primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(image=IMAGE),
)
app.synth()
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_end_to_end_real_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "app.py").write_text(APP)
    git(repo, "init", "-q")
    git(repo, "add", "app.py")
    git(repo, "commit", "-qm", "base")
    # The pull request: rename the bucket (replacement of a named, retained bucket), widen the
    # policy to s3:* and change the model image (create-only PrimaryContainer).
    (repo / "app.py").write_text(
        APP.replace("e2e-artifacts", "e2e-artifacts-v2")
        .replace('["s3:GetObject"]', '["s3:*"]')
        .replace("infer:1", "infer:2")
    )
    report = tmp_path / "out" / "report.md"

    code = run_offline_diff(repo, "HEAD", "risky", report)

    assert code == 1
    text = report.read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    rows = text.splitlines()
    bucket = next(r for r in rows if r.startswith("| 🔁") and "AWS::S3::Bucket" in r)
    assert "`BucketName` (create-only)" in bucket
    model = next(r for r in rows if r.startswith("| 🔁") and "AWS::SageMaker::Model" in r)
    assert "PrimaryContainer" in model
    assert "`stateful-replaced`" in text
    assert "`named-resource-replaced`" in text
    assert "adds wildcard actions `s3:*`" in text
    assert "| `E2eStack` | changed | 0 | 0 | 1 | 2 | 3 |" in text
    # The base was exported, not checked out: the working tree keeps the change.
    assert "e2e-artifacts-v2" in (repo / "app.py").read_text()


def _fake_pair(old: dict[str, Any], new: dict[str, Any]) -> SynthPair:
    return SynthPair("0123456789abcdef" * 2 + "01234567", {"S": old}, {"S": new})


QUEUE = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"DelaySeconds": 1}}}}
QUEUE_CHANGED = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"DelaySeconds": 5}}}}
NAMED = {"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "a"}}}}
RENAMED = {"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "b"}}}}


@pytest.mark.parametrize(
    ("old", "new", "fail_on", "expected"),
    [
        (NAMED, RENAMED, "never", 0),
        (NAMED, RENAMED, "risky", 1),
        (NAMED, RENAMED, "any", 1),
        (QUEUE, QUEUE_CHANGED, "risky", 0),
        (QUEUE, QUEUE_CHANGED, "any", 1),
        (QUEUE, QUEUE, "any", 0),
    ],
)
def test_fail_on(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    old: dict[str, Any],
    new: dict[str, Any],
    fail_on: str,
    expected: int,
) -> None:
    monkeypatch.setattr(
        diff_report, "synth_base_and_worktree", lambda _repo, _base: _fake_pair(old, new)
    )
    assert run_offline_diff(tmp_path, "origin/main", fail_on, None) == expected


def test_report_names_base_and_sha(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(
        diff_report, "synth_base_and_worktree", lambda _repo, _base: _fake_pair(QUEUE, QUEUE)
    )
    out = tmp_path / "r.md"
    assert run_offline_diff(tmp_path, "origin/main", "never", out) == 0
    assert out.read_text().startswith(
        "### Offline change report: `origin/main` (0123456789ab) → working tree"
    )


def test_bad_ref_exits_2_and_writes_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.py").write_text("")
    git(repo, "init", "-q")
    git(repo, "add", "app.py")
    git(repo, "commit", "-qm", "base")
    out = tmp_path / "report.md"
    assert run_offline_diff(repo, "origin/nope", "never", out) == 2
    assert "could not be produced" in out.read_text()
    assert "origin/nope" in capsys.readouterr().err


def test_fail_on_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fail_on"):
        run_offline_diff(tmp_path, "HEAD", "sometimes", None)


def test_add_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--base", "origin/main", "--fail-on", "risky", "--output", "r.md"])
    assert (args.base, args.fail_on, args.output) == ("origin/main", "risky", Path("r.md"))
    defaults = parser.parse_args([])
    assert (defaults.base, defaults.fail_on, defaults.output) == (None, "never", None)
    with pytest.raises(SystemExit):
        parser.parse_args(["--fail-on", "sometimes"])


def test_standalone_main_requires_base() -> None:
    with pytest.raises(SystemExit) as exc:
        diff_report.main([])
    assert exc.value.code == 2
