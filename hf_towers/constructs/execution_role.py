"""The SageMaker execution role of one tower, least privilege, in one customer-managed policy."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from hf_towers.compliance import acknowledge, iam5_resource_ids
from hf_towers.images import ImageRef


def sagemaker_principal(stack: Stack) -> iam.ServicePrincipal:
    """SageMaker, only on behalf of ``stack``'s account (``aws:SourceAccount``)."""
    return iam.ServicePrincipal(
        "sagemaker.amazonaws.com",
        conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
    )


def pull_image_statements(sid: str, repository_arn: str) -> list[iam.PolicyStatement]:
    """Pull from the one repository (statement ``sid``) and log in to ECR (``EcrLogin``)."""
    return [
        iam.PolicyStatement(
            sid=sid,
            actions=[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            resources=[repository_arn],
        ),
        # ecr:GetAuthorizationToken has no resource-level permissions.
        iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
    ]


def put_sagemaker_metrics_statement(sid: str) -> iam.PolicyStatement:
    """``cloudwatch:PutMetricData`` in SageMaker's namespaces (``/aws/sagemaker/*``)."""
    # cloudwatch:PutMetricData has no resource-level permissions; the namespace bounds it.
    return iam.PolicyStatement(
        sid=sid,
        actions=["cloudwatch:PutMetricData"],
        resources=["*"],
        conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
    )


def write_endpoint_logs_statement(log_group: logs.ILogGroup) -> iam.PolicyStatement:
    """Write an endpoint's log streams in ``log_group`` (statement ``WriteEndpointLogs``)."""
    return iam.PolicyStatement(
        sid="WriteEndpointLogs",
        actions=[
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
        ],
        resources=[log_group.log_group_arn],
    )


class ExecutionRole(Construct):
    """Role SageMaker assumes to run a tower's Model.

    Grants exactly: read the model data (``model_data_statements``), decrypt with the
    environment key, pull the tower's image, write the tower's endpoint log group (when there
    is one) and put SageMaker metrics. One customer-managed policy, no inline policies.

    Operations add, each only when configured: ``s3:PutObject`` on exactly the data-capture and
    async-output prefixes (``write_object_arns``, ``<bucket>/<prefix>/*``), ``s3:GetObject`` on
    the async input prefix, ``kms:Encrypt``/``kms:GenerateDataKey`` on the keys of those objects,
    ``sns:Publish`` on the async notification topics, and the ENI permissions a Model in a VPC
    needs.
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
        write_object_arns: Sequence[str] = (),
        read_object_arns: Sequence[str] = (),
        output_key_arns: Sequence[str] = (),
        publish_topic_arns: Sequence[str] = (),
        subnet_ids: Sequence[str] = (),
        security_group_ids: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Resource",
            description=f"SageMaker execution role of {stack.stack_name}",
            assumed_by=sagemaker_principal(stack),
        )
        statements = [
            *model_data_statements,
            iam.PolicyStatement(
                sid="DecryptArtifacts", actions=["kms:Decrypt"], resources=[key.key_arn]
            ),
            *pull_image_statements("PullImage", image.repository_arn),
            put_sagemaker_metrics_statement("PutSageMakerMetrics"),
        ]
        statements.extend(
            _operations_statements(
                stack,
                write_object_arns=write_object_arns,
                read_object_arns=read_object_arns,
                output_key_arns=output_key_arns,
                publish_topic_arns=publish_topic_arns,
                subnet_ids=subnet_ids,
                security_group_ids=security_group_ids,
            )
        )
        if log_group is not None:
            statements.append(write_endpoint_logs_statement(log_group))
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Least-privilege permissions of the SageMaker execution role of {stack.stack_name}",
            roles=[self.role],
            statements=statements,
        )
        acknowledge(
            self.policy,
            "Resource '*' only for ecr:GetAuthorizationToken, cloudwatch:PutMetricData and (in a VPC) "
            "the ec2:Describe* calls, which have no resource-level permissions (metrics are bounded by "
            "the SageMaker namespace condition).",
            "AwsSolutions-IAM5[Resource::*]",
        )
        if subnet_ids:
            acknowledge(
                self.policy,
                "SageMaker creates the endpoint's network interfaces with generated ids, so their ARNs "
                "end in '*'; creation is bound to the configured subnets and security groups.",
                *iam5_resource_ids(self, _network_interfaces(stack)),
            )
        if write_object_arns or read_object_arns:
            acknowledge(
                self.policy,
                "SageMaker names captured requests and async results itself (date and id in the key), "
                "so writes are granted on exactly the tower's configured prefixes, '<prefix>/*'.",
                *iam5_resource_ids(self, *write_object_arns, *read_object_arns),
            )

    @property
    def role_arn(self) -> str:
        """ARN of the role."""
        return self.role.role_arn


def _operations_statements(
    stack: Stack,
    *,
    write_object_arns: Sequence[str],
    read_object_arns: Sequence[str],
    output_key_arns: Sequence[str],
    publish_topic_arns: Sequence[str],
    subnet_ids: Sequence[str],
    security_group_ids: Sequence[str],
) -> list[iam.PolicyStatement]:
    """Statements for data capture, async inference and VPC placement, each only when used."""
    statements = []
    if write_object_arns:
        statements.append(
            iam.PolicyStatement(
                sid="WriteCapturesAndResults",
                actions=["s3:PutObject"],
                resources=list(write_object_arns),
            )
        )
    if read_object_arns:
        statements.append(
            iam.PolicyStatement(
                sid="ReadAsyncRequests", actions=["s3:GetObject"], resources=list(read_object_arns)
            )
        )
    if output_key_arns:
        statements.append(
            iam.PolicyStatement(
                sid="EncryptCapturesAndResults",
                actions=["kms:Encrypt", "kms:GenerateDataKey"],
                resources=list(dict.fromkeys(output_key_arns)),
            )
        )
    if publish_topic_arns:
        statements.append(
            iam.PolicyStatement(
                sid="PublishAsyncNotifications",
                actions=["sns:Publish"],
                resources=list(publish_topic_arns),
            )
        )
    if subnet_ids:
        statements.append(
            # ec2:Describe* have no resource-level permissions.
            iam.PolicyStatement(
                sid="DescribeNetwork",
                actions=[
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcs",
                ],
                resources=["*"],
            )
        )
        statements.append(
            iam.PolicyStatement(
                sid="ManageNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                ],
                resources=[
                    _network_interfaces(stack),
                    *(
                        stack.format_arn(service="ec2", resource="subnet", resource_name=subnet)
                        for subnet in subnet_ids
                    ),
                    *(
                        stack.format_arn(
                            service="ec2", resource="security-group", resource_name=group
                        )
                        for group in security_group_ids
                    ),
                ],
            )
        )
    return statements


def _network_interfaces(stack: Stack) -> str:
    """Every network interface of the account and region (SageMaker generates their ids)."""
    return stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
