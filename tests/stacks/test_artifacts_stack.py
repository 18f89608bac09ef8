"""The stateful stack: key, artifact bucket, access-log bucket; logical ids pinned."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.synth_helpers import build, default_data

# Renaming these would make CloudFormation replace the key and the buckets (data loss or
# orphaned artifacts). They are part of the product's contract: never change them.
PINNED_LOGICAL_IDS = {
    "AWS::KMS::Key": "StoreKey7A3C02BD",
    "AWS::S3::Bucket": {"StoreAccessLogs087BBF22", "StoreBucket4FBDE984"},
}


@pytest.fixture(scope="module")
def template() -> Template:
    _, deployed = build(default_data())
    return Template.from_stack(deployed.artifacts)


@pytest.fixture(scope="module")
def retained() -> Template:
    data = default_data()
    data.update(removal_policy="retain", protected=True)
    _, deployed = build(data)
    return Template.from_stack(deployed.artifacts)


def test_logical_ids_of_stateful_resources_never_change(template: Template) -> None:
    assert set(template.find_resources("AWS::KMS::Key")) == {PINNED_LOGICAL_IDS["AWS::KMS::Key"]}
    assert set(template.find_resources("AWS::S3::Bucket")) == PINNED_LOGICAL_IDS["AWS::S3::Bucket"]


def test_key_rotates(template: Template) -> None:
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_key_lets_cloudwatch_logs_encrypt_only_product_log_groups(template: Template) -> None:
    key: Any = next(iter(template.find_resources("AWS::KMS::Key").values()))
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    logs = next(s for s in statements if s.get("Sid") == "AllowCloudWatchLogsOfThisProduct")
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    arns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert [a["Fn::Join"][1][-1] for a in arns] == [
        ":log-group:/aws/sagemaker/Endpoints/*",
        ":log-group:/aws/lambda/*",
    ]


def test_artifact_bucket_is_kms_encrypted_versioned_private_and_logged(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": {"Fn::GetAtt": ["StoreKey7A3C02BD", "Arn"]},
                        },
                    }
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": {
                "DestinationBucketName": {"Ref": "StoreAccessLogs087BBF22"},
                "LogFilePrefix": "artifacts/",
            },
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "ExpireNoncurrentVersions",
                        "Status": "Enabled",
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        },
    )


def test_both_buckets_deny_plain_http(template: Template) -> None:
    policies = template.find_resources("AWS::S3::BucketPolicy")
    denied = {
        p["Properties"]["Bucket"]["Ref"]
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    }
    assert denied == {"StoreAccessLogs087BBF22", "StoreBucket4FBDE984"}


def test_access_log_bucket_uses_s3_managed_keys_and_no_acls(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "AccessControl": Match.absent(),
        },
    )


def test_destroy_policy_deletes_and_empties(template: Template) -> None:
    buckets = template.find_resources("AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Delete"}
    assert template.find_resources("Custom::S3AutoDeleteObjects")


def test_retain_policy_keeps_key_and_buckets_and_never_empties(retained: Template) -> None:
    for resource_type in ("AWS::S3::Bucket", "AWS::KMS::Key"):
        resources = retained.find_resources(resource_type)
        assert {r["DeletionPolicy"] for r in resources.values()} == {"Retain"}
        assert {r["UpdateReplacePolicy"] for r in resources.values()} == {"Retain"}
    assert retained.find_resources("Custom::S3AutoDeleteObjects") == {}
