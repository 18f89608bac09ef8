"""Asynchronous inference of a tower: results and failures in S3, SNS success/error topics."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from hf_towers.config.operations import AsyncInference
from hf_towers.constructs.s3_location import S3Prefix

Cfn = sagemaker.CfnEndpointConfig


class AsyncOutput(Construct):
    """The ``AsyncInferenceConfig`` of a tower and, with ``notifications``, two topics.

    The topics (``SuccessTopic``, ``ErrorTopic``) are encrypted with ``key`` and deny requests
    without TLS. SageMaker publishes to them, and writes results (SSE-KMS with ``output_key_arn``)
    with the tower's execution role, which gets exactly those permissions (``ExecutionRole``).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        settings: AsyncInference,
        output: S3Prefix,
        failures: S3Prefix,
        requests: S3Prefix,
        output_key_arn: str,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        stack_name = Stack.of(self).stack_name
        self.output = output
        self.failures = failures
        self.requests = requests
        self.output_key_arn = output_key_arn
        self.success_topic: sns.Topic | None = None
        self.error_topic: sns.Topic | None = None
        if settings.notifications:
            self.success_topic = sns.Topic(
                self,
                "SuccessTopic",
                display_name=f"Async results of {stack_name}"[:100],
                master_key=key,
                enforce_ssl=True,
            )
            self.error_topic = sns.Topic(
                self,
                "ErrorTopic",
                display_name=f"Async failures of {stack_name}"[:100],
                master_key=key,
                enforce_ssl=True,
            )
        self.config = Cfn.AsyncInferenceConfigProperty(
            client_config=Cfn.AsyncInferenceClientConfigProperty(
                max_concurrent_invocations_per_instance=settings.max_concurrent_invocations_per_instance
            )
            if settings.max_concurrent_invocations_per_instance is not None
            else None,
            output_config=Cfn.AsyncInferenceOutputConfigProperty(
                s3_output_path=output.uri,
                s3_failure_path=failures.uri,
                kms_key_id=output_key_arn,
                notification_config=Cfn.AsyncInferenceNotificationConfigProperty(
                    success_topic=self.success_topic.topic_arn,
                    error_topic=self.error_topic.topic_arn,
                )
                if self.success_topic is not None and self.error_topic is not None
                else None,
            ),
        )

    @property
    def topic_arns(self) -> list[str]:
        return [t.topic_arn for t in (self.success_topic, self.error_topic) if t is not None]
