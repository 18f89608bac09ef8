"""The product's hardened S3 buckets: private, TLS-only, versioned, owner-enforced objects."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


def access_log_bucket(
    scope: Construct,
    id_: str,
    *,
    removal_policy: RemovalPolicy,
    lifecycle_rules: Sequence[s3.LifecycleRule],
    auto_delete_objects: bool = False,
) -> s3.Bucket:
    """A server-access-log target. S3 delivers access logs only to SSE-S3 buckets, not SSE-KMS."""
    return s3.Bucket(
        scope,
        id_,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=removal_policy,
        auto_delete_objects=auto_delete_objects,
        lifecycle_rules=list(lifecycle_rules),
    )


def encrypted_bucket(
    scope: Construct,
    id_: str,
    *,
    key: kms.IKey,
    access_logs: s3.IBucket,
    access_log_prefix: str,
    removal_policy: RemovalPolicy,
    lifecycle_rules: Sequence[s3.LifecycleRule],
    auto_delete_objects: bool = False,
) -> s3.Bucket:
    """SSE-KMS with ``key`` (bucket key on), access-logged to ``access_logs``."""
    return s3.Bucket(
        scope,
        id_,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_log_prefix,
        removal_policy=removal_policy,
        auto_delete_objects=auto_delete_objects,
        lifecycle_rules=list(lifecycle_rules),
    )
