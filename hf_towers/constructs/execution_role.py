"""The SageMaker execution role of one tower, least privilege, in one customer-managed policy."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from hf_towers.compliance import acknowledge
from hf_towers.images import ImageRef


class ExecutionRole(Construct):
    """Role SageMaker assumes to run a tower's Model.

    Grants exactly: read the model data (``model_data_statements``), decrypt with the
    environment key, pull the tower's image, write the tower's endpoint log group (when there
    is one) and put SageMaker metrics. One customer-managed policy, no inline policies.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        key: kms.IKey,
        image: ImageRef,
        model_data_statements: Sequence[iam.PolicyStatement],
        log_group: logs.ILogGroup | None,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Resource",
            description=f"SageMaker execution role of {stack.stack_name}",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
        )
        statements = [
            *model_data_statements,
            iam.PolicyStatement(
                sid="DecryptArtifacts", actions=["kms:Decrypt"], resources=[key.key_arn]
            ),
            iam.PolicyStatement(
                sid="PullImage",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[image.repository_arn],
            ),
            # ecr:GetAuthorizationToken has no resource-level permissions.
            iam.PolicyStatement(
                sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            ),
            # cloudwatch:PutMetricData has no resource-level permissions; the namespace bounds it.
            iam.PolicyStatement(
                sid="PutSageMakerMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
        ]
        if log_group is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="WriteEndpointLogs",
                    actions=[
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    resources=[log_group.log_group_arn],
                )
            )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Least-privilege permissions of the SageMaker execution role of {stack.stack_name}",
            roles=[self.role],
            statements=statements,
        )
        acknowledge(
            self.policy,
            "Resource '*' only for ecr:GetAuthorizationToken and cloudwatch:PutMetricData, which have no "
            "resource-level permissions (metrics are bounded by the SageMaker namespace condition).",
            "AwsSolutions-IAM5[Resource::*]",
        )

    @property
    def role_arn(self) -> str:
        """ARN of the role."""
        return self.role.role_arn
