"""A tower's alarm topic: SNS, encrypted with its own KMS key that CloudWatch may use, TLS only."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct


class AlarmTopic(Construct):
    """SNS topic for CloudWatch alarms (subscribe e-mail, chat or paging to it).

    CloudWatch publishes to an encrypted topic only when the key policy lets
    ``cloudwatch.amazonaws.com`` use the key, which the AWS managed ``aws/sns`` key never does;
    so the topic has its own customer-managed key (rotation on). The topic policy lets this
    account's alarms publish and denies any request without TLS.
    """

    def __init__(self, scope: Construct, id_: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=f"Encrypts the alarm topic of {stack.stack_name}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
            )
        )
        self.topic = sns.Topic(
            self,
            "Resource",
            display_name=f"Alarms of {stack.stack_name}"[:100],
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch", resource="alarm", resource_name="*"
                        )
                    },
                },
            )
        )

    @property
    def topic_arn(self) -> str:
        return self.topic.topic_arn
