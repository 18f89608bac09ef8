"""Fixtures of the publish tests: a small checkpoint folder, its model.tar.gz, and boto3 pointed
at the session's moto server (SageMaker registry and S3)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest

CONFIG = {
    "architectures": ["CLIPModel"],
    "model_type": "clip",
    "projection_dim": 16,
    "text_config": {"max_position_embeddings": 16},
    "vision_config": {"image_size": 32},
}


def write_checkpoint(folder: Path) -> Path:
    """A folder laid out like save_pretrained's (the weights are placeholder bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "model.safetensors").write_bytes(b"\x00" * 2048)
    (folder / "tokenizer.json").write_text("{}")
    return folder


def write_archive(path: Path, members: dict[str, bytes]) -> Path:
    """A model.tar.gz of ``members`` (name -> bytes), written as given."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def checkpoint_members() -> dict[str, bytes]:
    return {
        "config.json": json.dumps(CONFIG).encode(),
        "model.safetensors": b"\x00" * 2048,
        "code/inference.py": b"# the tower's code\n",
    }


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return write_checkpoint(tmp_path / "checkpoint")


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return aws_clients(moto_endpoint, monkeypatch)


def aws_clients(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """boto3's defaults pointed at moto (for the CLI), and clients for the test to set up with."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    sagemaker = boto3.client("sagemaker", endpoint_url=moto_endpoint, region_name="us-east-1")
    return {"s3": s3, "sagemaker": sagemaker}


_GROUPS = iter(range(10_000))


def register(
    aws: dict[str, Any],
    *,
    report: bytes | None,
    status: str = "Approved",
    model_data_url: str = "s3://publish-tests/model.tar.gz",
    metadata: dict[str, str] | None = None,
) -> str:
    """A model package version in moto's registry with its evaluation report in S3; its ARN."""
    s3, sagemaker = aws["s3"], aws["sagemaker"]
    if "publish-tests" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="publish-tests")
    group = f"dual-encoder-{next(_GROUPS)}"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelApprovalStatus": status,
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/hf:1",
                    "ModelDataUrl": model_data_url,
                }
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    }
    if report is not None:
        key = f"{group}/evaluation.json"
        s3.put_object(Bucket="publish-tests", Key=key, Body=report)
        kwargs["ModelMetrics"] = {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://publish-tests/{key}",
                }
            }
        }
    if metadata:
        kwargs["CustomerMetadataProperties"] = metadata
    arn: str = sagemaker.create_model_package(**kwargs)["ModelPackageArn"]
    return arn
