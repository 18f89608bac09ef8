"""Approve -> deploy: what the delivery pipeline needs from the SageMaker Model Registry.

The registry (the Model Package Groups of ``model_package`` towers) lives in the tooling
account, in the pipeline's region: approvals happen next to the pipeline they start, the build
step reads the registry with its own role, and no event has to cross accounts. The target
accounts only read the approved artifact (their execution roles, scoped to its S3 object); the
registry's bucket and key must grant them that (README, 'Registry and approval').
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam

from hf_towers.config.models import EnvironmentConfig

# "SageMaker model package state change" (Events that Amazon SageMaker AI sends to Amazon
# EventBridge, https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html#eventbridge-model-package):
# source aws.sagemaker; the detail carries ModelPackageGroupName, ModelPackageVersion,
# ModelPackageArn and ModelApprovalStatus.
DETAIL_TYPE = "SageMaker Model Package State Change"


def package_groups(environments: Sequence[EnvironmentConfig]) -> list[str]:
    """The Model Package Groups the environments' towers deploy, sorted, each once."""
    return sorted(
        {
            tower.model_package.group
            for env in environments
            for tower in env.towers.values()
            if tower.model_package is not None
        }
    )


def approval_event_pattern(groups: Sequence[str]) -> events.EventPattern:
    """A version of one of ``groups`` whose approval status is (now) Approved."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[DETAIL_TYPE],
        detail={"ModelPackageGroupName": list(groups), "ModelApprovalStatus": ["Approved"]},
    )


def registry_read_statements(stack: Stack, groups: Sequence[str]) -> list[iam.PolicyStatement]:
    """What ``resolve-packages`` calls, on the groups' package versions only.

    Versioned package ARNs are ``model-package/<group>/<version>`` (the Service Authorization
    Reference's ``model-package`` resource type is the one both actions take).
    """
    if not groups:
        return []
    resources = [
        stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{g}/*")
        for g in groups
    ]
    return [
        iam.PolicyStatement(
            actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
            resources=resources,
        )
    ]


def resolve_command(config_files: Sequence[str], region: str) -> str:
    """The build step's ``resolve-packages`` call for ``config_files`` against ``region``."""
    files = " ".join(f"--config {shlex.quote(f)}" for f in config_files)
    return f".venv/bin/python main.py resolve-packages --region {shlex.quote(region)} {files}"
