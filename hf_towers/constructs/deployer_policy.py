"""The deployer's policy (seed 004's IAM user, least privilege) for a CI role or a person."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from hf_towers.compliance import acknowledge

ENVIRONMENT_TAG = "hf-towers:environment"


class DeployerPolicy(Construct):
    """Customer-managed policy: artifacts in, tower roles passed to SageMaker, SageMaker
    resources of this environment (by endpoint name, and by environment tag for the models
    and endpoint configs whose names CloudFormation generates).

    ``bucket_arn_label`` is how cdk-nag prints ``bucket_arn`` (e.g. the export name of an
    ``Fn::ImportValue``), used to acknowledge the one ``<bucket>/*`` finding exactly.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        environment: str,
        bucket_arn: str,
        key_arn: str,
        execution_role_arns: Sequence[str],
        endpoint_names: Sequence[str],
        bucket_arn_label: str,
        attach_to_role_names: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        tagged = {"StringEquals": {f"aws:ResourceTag/{ENVIRONMENT_TAG}": environment}}
        statements = [
            iam.PolicyStatement(
                sid="PutGetArtifacts",
                actions=["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"],
                resources=[f"{bucket_arn}/*"],
            ),
            iam.PolicyStatement(
                sid="ListArtifacts", actions=["s3:ListBucket"], resources=[bucket_arn]
            ),
            iam.PolicyStatement(
                sid="UseArtifactKey",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[key_arn],
            ),
            iam.PolicyStatement(
                sid="PassTowerRolesToSageMaker",
                actions=["iam:PassRole"],
                resources=list(execution_role_arns),
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="CreateTaggedModelsAndConfigs",
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:AddTags",
                ],
                resources=[arn("model", "*"), arn("endpoint-config", "*")],
                conditions={"StringEquals": {f"aws:RequestTag/{ENVIRONMENT_TAG}": environment}},
            ),
            iam.PolicyStatement(
                sid="ManageModelsAndConfigsOfThisEnvironment",
                actions=[
                    "sagemaker:DeleteModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                ],
                resources=[arn("model", "*"), arn("endpoint-config", "*")],
                conditions=tagged,
            ),
        ]
        if endpoint_names:  # model-only environments have no endpoint to manage
            statements.append(
                iam.PolicyStatement(
                    sid="ManageEndpointsOfThisEnvironment",
                    actions=[
                        "sagemaker:CreateEndpoint",
                        "sagemaker:UpdateEndpoint",
                        "sagemaker:DeleteEndpoint",
                        "sagemaker:DescribeEndpoint",
                        "sagemaker:AddTags",
                        "sagemaker:DeleteTags",
                    ],
                    resources=[arn("endpoint", name) for name in endpoint_names],
                )
            )
            # CreateEndpoint/UpdateEndpoint of a config with KmsKeyId (every tower's, but on
            # instance-store types) has SageMaker create a grant on the key as the caller: only
            # SageMaker, in this region, for an AWS resource.
            statements.append(
                iam.PolicyStatement(
                    sid="LetSageMakerGrantItselfTheArtifactKey",
                    actions=["kms:CreateGrant"],
                    resources=[key_arn],
                    conditions={
                        "Bool": {"kms:GrantIsForAWSResource": "true"},
                        "StringEquals": {
                            "kms:ViaService": f"sagemaker.{stack.region}.amazonaws.com"
                        },
                    },
                )
            )
        roles = [
            iam.Role.from_role_name(self, f"Deployer{index}", name)
            for index, name in enumerate(attach_to_role_names)
        ]
        self.policy = iam.ManagedPolicy(
            self,
            "Resource",
            description=f"Deploys the SageMaker towers of environment {environment}",
            statements=statements,
            roles=roles or None,
        )
        acknowledge(
            self.policy,
            "Model and endpoint-config names are generated by CloudFormation, so their ARNs end in '*'; "
            "the aws:RequestTag/aws:ResourceTag condition on the environment tag confines them to this "
            "environment. Objects of the artifact bucket are the deployer's to write.",
            f"AwsSolutions-IAM5[Resource::{_nag_arn(stack, 'model/*')}]",
            f"AwsSolutions-IAM5[Resource::{_nag_arn(stack, 'endpoint-config/*')}]",
            f"AwsSolutions-IAM5[Resource::{bucket_arn_label}/*]",
        )

    @property
    def managed_policy_arn(self) -> str:
        """ARN of the policy, to attach to a CI role."""
        return self.policy.managed_policy_arn


def _nag_arn(stack: Stack, resource: str) -> str:
    """A SageMaker ARN as cdk-nag prints it in finding ids (pseudo parameters in angle brackets)."""

    def show(value: str, pseudo: str) -> str:
        return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

    partition, region, account = (
        show(stack.partition, "Partition"),
        show(stack.region, "Region"),
        show(stack.account, "AccountId"),
    )
    return f"arn:{partition}:sagemaker:{region}:{account}:{resource}"
