"""Let CloudWatch Logs use a KMS key for exactly the named log groups; their removal policy."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, RemovalPolicy, Stack
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


def log_group_removal(policy: RemovalPolicy) -> RemovalPolicy:
    """The removal policy of a log group in an environment whose data policy is ``policy``.

    Retained environments keep their log groups when a stack is deleted (``Retain`` on update
    and delete) but not after a failed first create: ``RetainExceptOnCreate`` deletes a group
    that the rolled-back operation created ("DeletionPolicy attribute",
    docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html),
    so a retried deploy does not meet its own orphan. A group that survived a stack delete has
    a fixed name (``/aws/sagemaker/Endpoints/<endpoint>``, ``/aws/apigateway/<api>/access``):
    the next deploy imports it instead of failing with "already exists", CloudFormation's
    auto-import of named resources whose DeletionPolicy is Retain or RetainExceptOnCreate
    (docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/import-resources-automatically.html),
    which ``cdk deploy --import-existing-resources`` asks for (README, 'Redeploying').
    """
    if policy is RemovalPolicy.RETAIN:
        return RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
    return policy
