"""Stateful stack of an environment: the KMS key and the artifact buckets."""

from __future__ import annotations

from typing import Any

from aws_cdk import Fn, RemovalPolicy, Stack
from constructs import Construct

from hf_towers.config.models import Artifacts
from hf_towers.constructs.artifact_store import ArtifactStore


class ArtifactsStack(Stack):
    """Holds what must survive redeploys; its logical ids are pinned by tests."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        removal_policy: RemovalPolicy,
        artifacts: Artifacts,
        component_logs: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.store = ArtifactStore(
            self,
            "Store",
            removal_policy=removal_policy,
            noncurrent_version_expiration_days=artifacts.noncurrent_version_expiration_days,
            access_log_expiration_days=artifacts.access_log_expiration_days,
            component_logs=component_logs,
        )

    @property
    def bucket_arn_export_name(self) -> str:
        """Explicit export name of the bucket ARN (stable, so cdk-nag findings on it are too)."""
        return f"{self.stack_name}:ArtifactBucketArn"

    def import_bucket_arn(self) -> str:
        """Export the bucket ARN under ``bucket_arn_export_name`` (once, however many stacks
        import it); the ``Fn::ImportValue`` for it."""
        name = self.bucket_arn_export_name
        if self.node.try_find_child(f"Export{name}") is None:
            return self.export_value(self.store.bucket.bucket_arn, name=name)
        return Fn.import_value(name)
