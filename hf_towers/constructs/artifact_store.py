"""The environment's encrypted artifact store: a KMS key, the artifact bucket, its log bucket."""

from __future__ import annotations

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hf_towers.compliance import acknowledge
from hf_towers.constructs.buckets import access_log_bucket, encrypted_bucket
from hf_towers.constructs.log_encryption import allow_log_groups

# Log groups that may encrypt with the environment key: SageMaker endpoint logs and the
# Lambda functions of this product (repack custom resource).
LOG_GROUP_PATTERNS = ("/aws/sagemaker/Endpoints/*", "/aws/lambda/*")
# Container logs of inference components go to /aws/sagemaker/InferenceComponents/<component>;
# added only where an environment has shared endpoints, so other templates keep their shape.
COMPONENT_LOG_GROUP_PATTERN = "/aws/sagemaker/InferenceComponents/*"


class ArtifactStore(Construct):
    """KMS key (rotation on) + artifact bucket (SSE-KMS, versioned, TLS only, access-logged).

    ``component_logs``: the key may also encrypt inference components' log groups.
    ``removal_policy`` applies to the key and both buckets; with ``DESTROY`` the buckets are
    emptied on delete (``auto_delete_objects``), with ``RETAIN`` nothing is deleted.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        removal_policy: RemovalPolicy,
        noncurrent_version_expiration_days: int = 30,
        access_log_expiration_days: int = 365,
        component_logs: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        destroy = removal_policy == RemovalPolicy.DESTROY

        self.key = kms.Key(
            self,
            "Key",
            description=f"Encrypts model artifacts, endpoint volumes and logs of {stack.stack_name}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        patterns = LOG_GROUP_PATTERNS + ((COMPONENT_LOG_GROUP_PATTERN,) if component_logs else ())
        allow_log_groups(self.key, sid="AllowCloudWatchLogsOfThisProduct", log_group_names=patterns)

        self.access_logs = access_log_bucket(
            self,
            "AccessLogs",
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(access_log_expiration_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
        )
        self._acknowledge_replication(self.access_logs)

        self.bucket = encrypted_bucket(
            self,
            "Bucket",
            key=self.key,
            access_logs=self.access_logs,
            access_log_prefix="artifacts/",
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireNoncurrentVersions",
                    noncurrent_version_expiration=Duration.days(noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        self._acknowledge_replication(self.bucket)
        if destroy:
            _quiet_auto_delete_provider(stack)

    @staticmethod
    def _acknowledge_replication(bucket: s3.Bucket) -> None:
        acknowledge(
            bucket,
            "Artifacts are reproducible from the training output and CI; cross-region replication "
            "is a per-organisation DR decision, not a default of this product.",
            "HIPAA.Security-S3BucketReplicationEnabled",
            "NIST.800.53.R5-S3BucketReplicationEnabled",
            "PCI.DSS.321-S3BucketReplicationEnabled",
        )


def _quiet_auto_delete_provider(stack: Stack) -> None:
    """cfn-lint W3005 on CDK's own auto-delete provider (a DependsOn it also GetAtts): CDK noise."""
    provider = stack.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
    handler = provider.node.try_find_child("Handler") if provider else None
    if isinstance(handler, CfnResource):
        handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
