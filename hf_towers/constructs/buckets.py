"""The product's hardened S3 buckets: private, TLS-only, versioned, owner-enforced objects."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hf_towers.compliance import acknowledge


def access_log_bucket(
    scope: Construct,
    id_: str,
    *,
    removal_policy: RemovalPolicy,
    lifecycle_rules: Sequence[s3.LifecycleRule],
    auto_delete_objects: bool = False,
) -> s3.Bucket:
    """A server-access-log target. S3 delivers access logs only to SSE-S3 buckets, not SSE-KMS
    ("the destination bucket ... can only use SSE-S3", docs.aws.amazon.com/AmazonS3/latest/
    userguide/enable-server-access-logging.html): the packs' KMS finding is acknowledged here,
    where the choice is made."""
    bucket = s3.Bucket(
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
    acknowledge(
        bucket,
        "S3 server access logs can only be delivered to buckets encrypted with SSE-S3, not SSE-KMS.",
        "HIPAA.Security-S3DefaultEncryptionKMS",
        "NIST.800.53.R5-S3DefaultEncryptionKMS",
        "PCI.DSS.321-S3DefaultEncryptionKMS",
    )
    return bucket


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
