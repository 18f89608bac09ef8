"""``hf_towers.publish.registry`` against moto's SageMaker registry and S3: an approved version
gives its artifact, metadata and the metrics of its evaluation report; anything else is refused
with the command that fixes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from hf_towers.publish import registry
from hf_towers.publish.metrics import ReportError
from tests.publish.conftest import register

REPORT = json.dumps({"retrieval_metrics": {"recall_at_1": {"value": 0.42}}}).encode()


def test_an_approved_version_gives_artifact_metadata_and_metrics(aws: dict[str, Any]) -> None:
    arn = register(aws, report=REPORT, metadata={"base_model": "openai/clip-vit-base-patch32"})
    package = registry.describe(arn, aws["sagemaker"], aws["s3"])
    assert package.status == "Approved"
    assert package.version == "1"
    assert package.model_data_url == "s3://publish-tests/model.tar.gz"
    assert package.report_uri.endswith("/evaluation.json")
    assert [(m.type, m.value) for m in package.metrics] == [("recall_at_1", 0.42)]
    assert package.metadata == {"base_model": "openai/clip-vit-base-patch32"}


def test_a_pending_version_is_refused_with_the_approval_command(aws: dict[str, Any]) -> None:
    arn = register(aws, report=REPORT, status="PendingManualApproval")
    with pytest.raises(registry.RegistryError) as info:
        registry.describe(arn, aws["sagemaker"], aws["s3"])
    message = str(info.value)
    assert "is PendingManualApproval, not Approved" in message
    assert f"--model-package-name {arn} --model-approval-status Approved" in message


def test_a_version_without_its_evaluation_report_is_refused(aws: dict[str, Any]) -> None:
    arn = register(aws, report=None)
    with pytest.raises(registry.RegistryError, match=r"no ModelMetrics.ModelQuality.Statistics"):
        registry.describe(arn, aws["sagemaker"], aws["s3"])


def test_a_report_that_is_not_json_names_its_uri(aws: dict[str, Any]) -> None:
    arn = register(aws, report=b"<html>")
    with pytest.raises(ReportError, match=r"evaluation report s3://publish-tests/.*not a JSON"):
        registry.describe(arn, aws["sagemaker"], aws["s3"])


def test_an_unknown_version_is_sagemakers_refusal_with_the_fix(aws: dict[str, Any]) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/nothing-here/7"
    with pytest.raises(
        registry.RegistryError, match=r"--model-package-arn .*: \w+ .*check the ARN"
    ):
        registry.describe(arn, aws["sagemaker"], aws["s3"])


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/dual-encoder",
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/dual-encoder",
        "dual-encoder/3",
    ],
)
def test_anything_but_a_version_arn_is_refused(arn: str) -> None:
    with pytest.raises(registry.RegistryError, match="is not a model package version ARN"):
        registry.region_of(arn)


def test_region_comes_from_the_arn() -> None:
    arn = "arn:aws-cn:sagemaker:cn-north-1:123456789012:model-package/dual-encoder/12"
    assert registry.region_of(arn) == "cn-north-1"


def test_no_credentials_is_an_access_error_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.session.Session(region_name="us-east-1")
    client = session.client("sagemaker")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/dual-encoder/1"
    with pytest.raises(registry.AwsAccessError, match="no AWS credentials found: set AWS_PROFILE"):
        registry.describe(arn, client, session.client("s3"))
