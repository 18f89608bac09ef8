"""A bare ``Stack`` for construct-level tests: no environment stacks around the construct."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from hf_towers.feature_flags import FEATURE_FLAGS
from hf_towers.images import ImageRef

IMAGE = ImageRef(
    uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/towers:1",
    repository_arn="arn:aws:ecr:us-east-1:123456789012:repository/towers",
)
BUCKET_ARN = "arn:aws:s3:::team-artifacts"


def bare_stack(region: str = "us-east-1") -> Stack:
    return Stack(
        App(context=FEATURE_FLAGS), "Bare", env=Environment(account="111122223333", region=region)
    )


def key(stack: Stack) -> kms.IKey:
    return kms.Key(stack, "Key", enable_key_rotation=True)


def resources(stack: Stack, kind: str) -> dict[str, Any]:
    return dict(Template.from_stack(stack).find_resources(kind))


def only(stack: Stack, kind: str) -> dict[str, Any]:
    (resource,) = resources(stack, kind).values()
    return dict(resource)


def statements(policy: dict[str, Any]) -> dict[str, Any]:
    """Statements of a policy resource, by Sid."""
    return {s.get("Sid", ""): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
