"""Fixtures of the repack tests; the S3 endpoint itself (moto_endpoint) is in tests/conftest.py."""

from __future__ import annotations

import uuid
from typing import Any, cast

import boto3
import pytest

from hf_towers.constructs.repack.runtime.handler.props import ResourceProperties

from .archives import code_zip

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 defaults point at the server: the handler creates its own clients from them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def s3(aws_env: None) -> Any:
    return boto3.client("s3", region_name=REGION)


class World:
    """Buckets, a KMS key and the uploaded code bundle of one test."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        suffix = uuid.uuid4().hex[:10]
        self.source_bucket = f"source-{suffix}"
        self.out_bucket = f"out-{suffix}"
        for bucket in (self.source_bucket, self.out_bucket):
            s3.create_bucket(Bucket=bucket)
        self.kms_key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        self.put_code(code_zip())

    def put_code(self, data: bytes, key: str = "assets/code.zip") -> str:
        self.s3.put_object(Bucket=self.source_bucket, Key=key, Body=data)
        self.code_key = key
        return key

    def put_source(self, data: bytes, key: str = "models/model.tar.gz") -> str:
        self.s3.put_object(Bucket=self.source_bucket, Key=key, Body=data)
        return key

    def get(self, key: str, bucket: str | None = None) -> bytes:
        body: bytes = self.s3.get_object(Bucket=bucket or self.out_bucket, Key=key)["Body"].read()
        return body

    def properties(self, source_key: str, **overrides: str) -> ResourceProperties:
        values: dict[str, str] = {
            "SourceBucket": self.source_bucket,
            "SourceKey": source_key,
            "CodeBucket": self.source_bucket,
            "CodeKey": self.code_key,
            "OutputBucket": self.out_bucket,
            "OutputPrefix": "text",
            "KmsKeyArn": self.kms_key,
            "EntryModule": "inference.py",
            "Compressed": "true",
            "MaxRatio": "100.0",
            "PartSize": str(5 * 1024 * 1024),
            "RetainOnDelete": "false",
        }
        values.update(overrides)
        # Overrides may break the contract on purpose (bad-input tests): checked at run time.
        return cast(ResourceProperties, values)

    def open_uploads(self) -> list[dict[str, Any]]:
        uploads: list[dict[str, Any]] = self.s3.list_multipart_uploads(Bucket=self.out_bucket).get(
            "Uploads", []
        )
        return uploads

    def out_keys(self) -> list[str]:
        contents = self.s3.list_objects_v2(Bucket=self.out_bucket).get("Contents", [])
        return sorted(str(o["Key"]) for o in contents)


@pytest.fixture
def world(s3: Any) -> World:
    return World(s3)
