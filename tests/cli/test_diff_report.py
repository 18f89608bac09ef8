"""``main.py diff --base``: the offline report end to end, on two real versions of a CDK app."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hf_towers.cli import diff_report
from hf_towers.cli.diff_report import add_arguments, run_offline_diff
from hf_towers.risk.synth import EnvironmentPair, EnvironmentsPair

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


SHA = "0123456789abcdef" * 2 + "01234567"


def _fake_pair(old: dict[str, Any], new: dict[str, Any]) -> EnvironmentsPair:
    return EnvironmentsPair(SHA, (EnvironmentPair("config/dev.yaml", {"S": old}, {"S": new}),))


def _fake(pairs: EnvironmentsPair) -> Any:
    return lambda _repo, _base, _configs=None, _cwd=None: pairs


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
    monkeypatch.setattr(diff_report, "synth_environments", _fake(_fake_pair(old, new)))
    assert run_offline_diff(tmp_path, "origin/main", fail_on, None) == expected


def test_report_names_base_and_sha(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(diff_report, "synth_environments", _fake(_fake_pair(QUEUE, QUEUE)))
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


@pytest.mark.parametrize(("fail_on", "expected"), [("never", 0), ("risky", 1), ("any", 1)])
def test_fail_on_looks_at_every_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fail_on: str, expected: int
) -> None:
    # Only the last environment changes (a renamed bucket: risky); the first is unchanged.
    pairs = EnvironmentsPair(
        SHA,
        (
            EnvironmentPair("config/dev.yaml", {"S": QUEUE}, {"S": QUEUE}),
            EnvironmentPair("config/prod.yaml", {"S": NAMED}, {"S": RENAMED}),
        ),
    )
    monkeypatch.setattr(diff_report, "synth_environments", _fake(pairs))
    assert run_offline_diff(tmp_path, "origin/main", fail_on, None) == expected


def test_new_deleted_and_failed_environments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = EnvironmentsPair(
        SHA,
        (
            EnvironmentPair("config/new.yaml", None, {"S": QUEUE}),
            EnvironmentPair("config/old.yaml", {"S": NAMED}, None),
            EnvironmentPair("config/bad.yaml", None, None, "working tree: error: bad key"),
        ),
    )
    monkeypatch.setattr(diff_report, "synth_environments", _fake(pairs))
    out = tmp_path / "r.md"
    # A failed environment makes the report incomplete: exit 2 whatever --fail-on says.
    assert run_offline_diff(tmp_path, "origin/main", "never", out) == 2
    text = out.read_text()
    assert "| `config/new.yaml` | 🆕 new environment: every stack added | 1 | 1 | 0 | 0 |" in text
    assert "#### Environment `config/old.yaml`: 🗑️ deleted environment: every stack removed" in text
    assert "`stateful-removed`" in text  # the deleted environment's bucket goes with it
    assert "#### Environment `config/bad.yaml`: ❌ not synthesized" in text
    assert "working tree: error: bad key" in text
    assert "config/bad.yaml: could not be synthesized" in capsys.readouterr().err


def _config_repo(tmp_path: Path) -> Path:
    """A git repository holding a config-driven CDK app, committed: the base."""
    repo = tmp_path / "app"
    (repo / "config" / "examples").mkdir(parents=True)
    (repo / "envs").mkdir()
    (repo / "app.py").write_text(CONFIG_APP)
    for name, instance in [("default", "ml.m5.large"), ("dev", "ml.m5.large")]:
        (repo / "config" / f"{name}.yaml").write_text(f"instance_type: {instance}\n")
    (repo / "config" / "prod.yaml").write_text("instance_type: ml.g5.2xlarge\n")
    (repo / "config" / "old.yaml").write_text("instance_type: ml.m5.large\n")
    (repo / "envs" / "qa.yaml").write_text("instance_type: ml.m5.large\n")
    (repo / "config" / "examples" / "async.yaml").write_text("instance_type: ml.m5.large\n")
    (repo / "config" / "pipeline.yaml").write_text(
        "environments: [config/dev.yaml, envs/qa.yaml, config/prod.yaml]\n"
    )
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    return repo


CONFIG_APP = """\
import aws_cdk as cdk
import yaml
from aws_cdk import aws_sagemaker as sagemaker

app = cdk.App()
config = app.node.try_get_context("config") or "config/default.yaml"
data = yaml.safe_load(open(config))
name = config.rsplit("/", 1)[-1].split(".")[0]
stack = cdk.Stack(app, f"svc-{name}")
sagemaker.CfnEndpointConfig(
    stack,
    "EndpointConfig",
    production_variants=[
        sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name="AllTraffic",
            model_name="m",
            initial_instance_count=1,
            instance_type=data["instance_type"],
        )
    ],
)
app.synth()
"""


@pytest.mark.slow
def test_every_environment_is_reported(tmp_path: Path) -> None:
    repo = _config_repo(tmp_path)
    # The pull request: prod's instance type, a new environment, a deleted one.
    (repo / "config" / "prod.yaml").write_text("instance_type: ml.g5.12xlarge\n")
    (repo / "config" / "staging.yaml").write_text("instance_type: ml.m5.large\n")
    (repo / "config" / "old.yaml").unlink()
    report = tmp_path / "report.md"

    code = run_offline_diff(repo, "HEAD", "any", report)

    # Before: only the app's default (config/default.yaml) was synthesized, "No resource
    # changes", exit 0.
    assert code == 1
    text = report.read_text()
    sections = [line for line in text.splitlines() if line.startswith("#### Environment")]
    assert sections == [
        "#### Environment `config/default.yaml`: unchanged",
        "#### Environment `config/dev.yaml`: unchanged",
        "#### Environment `config/old.yaml`: 🗑️ deleted environment: every stack removed",
        "#### Environment `config/prod.yaml`: changed",
        "#### Environment `config/staging.yaml`: 🆕 new environment: every stack added",
        "#### Environment `envs/qa.yaml`: unchanged",  # listed by the pipeline only
    ]
    assert "async" not in text  # config/examples/ are not deployed
    prod = text.split("#### Environment `config/prod.yaml`")[1].split("#### Environment")[0]
    assert "| `svc-prod` | changed | 0 | 0 | 0 | 1 | " in prod
    row = next(r for r in prod.splitlines() if r.startswith("| 🔁"))
    assert "AWS::SageMaker::EndpointConfig" in row and "InstanceType" in row
    assert "3 resource change(s) in 3 of 6 environment(s)" in text


@pytest.mark.slow
def test_config_selects_environments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _config_repo(tmp_path)
    (repo / "config" / "prod.yaml").write_text("instance_type: ml.g5.12xlarge\n")
    configs = [Path("config/dev.yaml"), Path("config/old.yaml")]
    assert run_offline_diff(repo, "HEAD", "any", None, configs, cwd=repo) == 0
    text = capsys.readouterr().out
    assert "#### Environment `config/dev.yaml`: unchanged" in text
    assert "#### Environment `config/old.yaml`: unchanged" in text
    assert "config/prod.yaml" not in text


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("app.py", "--config app.py: not a config file"),
        ("config/pipeline.yaml", "is the pipeline config, not an environment"),
        ("config/missing.yaml", "--config config/missing.yaml: no such file"),
    ],
)
def test_config_that_is_not_an_environment_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], given: str, message: str
) -> None:
    repo = _config_repo(tmp_path)
    out = tmp_path / "r.md"
    assert run_offline_diff(repo, "HEAD", "never", out, [Path(given)], cwd=repo) == 2
    assert message in capsys.readouterr().err
    assert message in out.read_text()


@pytest.mark.slow
def test_prod_instance_type_change_in_this_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue: a PR changing only config/prod.yaml's instance type reported "No resource
    changes" and exited 0 under --fail-on any (only config/default.yaml was synthesized)."""
    root = Path(__file__).resolve().parents[2]
    repo = tmp_path / "repo"
    repo.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", "HEAD"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    prod = repo / "config" / "prod.yaml"
    prod.write_text(prod.read_text().replace("ml.g5.2xlarge", "ml.g5.12xlarge", 1))

    assert run_offline_diff(repo, "HEAD", "any", None) == 1

    text = capsys.readouterr().out
    prod_section = text.split("#### Environment `config/prod.yaml`: changed")[1]
    prod_section = prod_section.split("#### Environment")[0]
    assert "| `hf-towers-prod-tower-vision` | changed |" in prod_section
    assert "InstanceType" in prod_section
    for other in ("default", "dev", "staging"):
        assert f"#### Environment `config/{other}.yaml`: unchanged" in text


def test_list_environments_names_each_once(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "envs").mkdir()
    (tmp_path / "config" / "dev.yaml").write_text("region: us-east-1\n")
    (tmp_path / "config" / "staging-eu.yaml").write_text("region: [not, a, string]\n")
    (tmp_path / "envs" / "dev.yaml").write_text("{")
    (tmp_path / "config" / "pipeline.yaml").write_text("environments: [envs/dev.yaml]\n")
    assert diff_report.list_environments(tmp_path) == [
        {
            "config": "config/dev.yaml",
            "name": "config-dev",
            "role_variable": "CDK_DIFF_ROLE_ARN_CONFIG_DEV",
            "region": "us-east-1",
        },
        {
            "config": "config/staging-eu.yaml",
            "name": "staging-eu",
            "role_variable": "CDK_DIFF_ROLE_ARN_STAGING_EU",
            "region": None,
        },
        {
            "config": "envs/dev.yaml",
            "name": "envs-dev",
            "role_variable": "CDK_DIFF_ROLE_ARN_ENVS_DEV",
            "region": None,
        },
    ]


def test_standalone_list_environments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert diff_report.main(["--list-environments"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == ["default", "dev", "prod", "staging"]


def test_main_py_diff_passes_every_config_to_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from hf_towers.cli import main

    calls: list[tuple[Any, ...]] = []

    def fake_report(*args: Any) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(diff_report, "run_offline_diff", fake_report)
    argv = ["diff", "--base", "origin/main", "--config", "config/prod.yaml"]
    assert main([*argv, "--config", "config/dev.yaml", "--fail-on", "any"]) == 0
    assert calls[0][1:] == (
        "origin/main",
        "any",
        None,
        [Path("config/prod.yaml"), Path("config/dev.yaml")],
    )
    assert main(["diff", "--base", "origin/main"]) == 0
    assert calls[1][4] is None  # no --config: every deployed environment


def test_main_py_cdk_diff_runs_once_per_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from hf_towers.cli import deploy, main

    runs: list[list[str]] = []
    codes = iter([0, 1])

    def fake_cdk(argv: list[str]) -> int:
        runs.append(argv)
        return next(codes)

    monkeypatch.setattr(deploy, "quiet_run_cdk", fake_cdk)
    assert main(["diff", "--config", "config/dev.yaml", "--config", "config/prod.yaml"]) == 1
    assert runs == [
        ["diff", "-c", "config=config/dev.yaml"],
        ["diff", "-c", "config=config/prod.yaml"],
    ]
    runs.clear()
    codes = iter([0])
    assert main(["diff"]) == 0
    assert runs == [["diff", "-c", f"config={deploy.DEFAULT_BASE_CONFIG}"]]


def test_a_towers_diff_takes_one_config(capsys: pytest.CaptureFixture[str]) -> None:
    from hf_towers.cli import main

    argv = ["diff", "--model_type", "vision", "--model_name", "v", "--config", "a.yaml"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--config", "b.yaml"])
    assert exc.value.code == 2
    assert "takes one environment file, not 2: pass --config once" in capsys.readouterr().err
