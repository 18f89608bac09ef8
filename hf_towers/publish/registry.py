"""A registered model package version, as ``publish`` needs it (boto3, with your credentials).

``describe_model_package`` gives the approval status, the artifact
(``InferenceSpecification.Containers[0].ModelDataUrl``) and ``ModelMetrics``, whose
``ModelQuality.Statistics.S3Uri`` is the evaluation report the package was registered with
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeModelPackage.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelMetrics.html).
``CustomerMetadataProperties`` ``base_model`` and ``training_data``, when set at registration,
fill the card's base model and training data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hf_towers.publish.metrics import MAX_REPORT_BYTES, Metric, parse_report_bytes

# arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html#amazonsagemaker-resources-for-iam-policies)
ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:sagemaker:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):\d{12}:"
    r"model-package/(?P<group>[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})/(?P<version>\d+)"
)
APPROVED = "Approved"


class RegistryError(ValueError):
    """A package that cannot be published as it is; the message names it and the fix."""


class AwsAccessError(RuntimeError):
    """AWS could not be asked (no credentials, no network)."""


@dataclass(frozen=True)
class Package:
    """What the card and the upload take from a model package version."""

    arn: str
    group: str
    version: str
    status: str
    model_data_url: str | None
    report_uri: str
    metrics: list[Metric]
    metadata: dict[str, str] = field(default_factory=dict)


def region_of(arn: str) -> str:
    """The region of a model package version ARN; ``RegistryError`` for anything else."""
    match = ARN.fullmatch(arn)
    if match is None:
        raise RegistryError(
            f"--model-package-arn {arn!r} is not a model package version ARN: expected "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version> "
            "(aws sagemaker list-model-packages --model-package-group-name <group>)"
        )
    return match["region"]


def call_aws(
    what: str,
    action: Any,
    fix: str = "check the ARN or URI, its region and your credentials' permissions",
    **kwargs: Any,
) -> Any:
    """``action(**kwargs)``; AWS's refusal as ``RegistryError`` (``what``: code (message): ``fix``),
    no credentials or no network as ``AwsAccessError``."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return action(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise RegistryError(
            f"{what}: {error.get('Code', 'error')} ({error.get('Message', '')}): {fix}"
        ) from None
    except NoCredentialsError:
        raise AwsAccessError(
            f"{what}: no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY) or run `aws sso login`; offline, pass --metrics FILE and "
            "--model PATH instead"
        ) from None
    except BotoCoreError as exc:
        raise AwsAccessError(f"{what}: cannot reach AWS ({exc})") from None


def split_s3(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise RegistryError(f"{uri!r} is not an s3://bucket/key URI")
    return bucket, key


def read_s3_report(uri: str, s3: Any, what: str) -> list[Metric]:
    """The metrics of the report at ``uri`` (read once, at most ``MAX_REPORT_BYTES`` + 1)."""
    bucket, key = split_s3(uri)
    body = call_aws(f"{what}: reading {uri}", s3.get_object, Bucket=bucket, Key=key)["Body"]
    try:
        raw: bytes = body.read(MAX_REPORT_BYTES + 1)
    finally:
        body.close()
    return parse_report_bytes(raw, f"{what}'s evaluation report {uri}")


def describe(arn: str, sagemaker: Any, s3: Any) -> Package:
    """The approved package version ``arn`` with the metrics of its evaluation report."""
    region_of(arn)
    what = f"--model-package-arn {arn}"
    answer = call_aws(what, sagemaker.describe_model_package, ModelPackageName=arn)
    status = str(answer.get("ModelApprovalStatus", "unknown"))
    if status != APPROVED:
        raise RegistryError(
            f"{what} is {status}, not {APPROVED}: only an approved version is published; approve "
            f"it after review (aws sagemaker update-model-package --model-package-name {arn} "
            "--model-approval-status Approved)"
        )
    statistics = answer.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    report_uri = statistics.get("S3Uri")
    if not report_uri:
        raise RegistryError(
            f"{what} has no ModelMetrics.ModelQuality.Statistics (its evaluation report): "
            "register versions with their evaluation report (the fine-tuning pipeline does), or "
            "pass --metrics FILE instead"
        )
    containers = answer.get("InferenceSpecification", {}).get("Containers", [])
    model_data_url = None
    if containers:
        first = containers[0]
        model_data_url = first.get("ModelDataUrl") or (
            first.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri")
        )
    match = ARN.fullmatch(arn)
    assert match is not None
    metadata = {str(k): str(v) for k, v in answer.get("CustomerMetadataProperties", {}).items()}
    return Package(
        arn=arn,
        group=str(answer.get("ModelPackageGroupName", match["group"])),
        version=str(answer.get("ModelPackageVersion", match["version"])),
        status=status,
        model_data_url=model_data_url,
        report_uri=str(report_uri),
        metrics=read_s3_report(str(report_uri), s3, what),
        metadata=metadata,
    )
