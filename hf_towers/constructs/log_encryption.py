"""Let CloudWatch Logs use a KMS key for exactly the named log groups."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms


def allow_log_groups(key: kms.Key, *, sid: str, log_group_names: Sequence[str]) -> None:
    """Add a key-policy statement for the regional Logs service, bounded by the encryption
    context to ``log_group_names`` (patterns with ``*`` allowed)."""
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],  # in a key policy "*" means this key
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": [
                        stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=name,
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                        for name in log_group_names
                    ]
                }
            },
        )
    )
