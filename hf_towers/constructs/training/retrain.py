"""Drift -> retrain: an EventBridge rule on Model Monitor executions and a cool-down guard.

SageMaker sends ``SageMaker Processing Job State Change`` events to EventBridge ("Events that
Amazon SageMaker AI sends to Amazon EventBridge",
docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html); their detail
carries the fields of ``DescribeProcessingJob``, whose ``MonitoringScheduleArn`` names the
schedule a monitoring job ran for (docs.aws.amazon.com/sagemaker/latest/APIReference/
API_DescribeProcessingJob.html). The rule matches completed jobs of the watched schedules; the
guard function checks that the execution ended ``CompletedWithViolations``
(``ListMonitoringExecutions``) and that the pipeline did not start within the cool-down, then
calls ``StartPipelineExecution``. A Lambda function rather than the rule's SageMaker-pipeline
target: a target starts an execution for every matching event and has no memory of the last one.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from hf_towers.compliance import acknowledge

RUNTIME = Path(__file__).resolve().parent / "runtime" / "retrain_guard"
BUILD_JUNK = ("__pycache__", "*.pyc")
# The guard's environment (runtime/retrain_guard/index.py reads the same names; tested).
PIPELINE_NAME = "PIPELINE_NAME"
COOLDOWN_HOURS = "COOLDOWN_HOURS"


def drift_event_pattern(schedule_arns: list[str]) -> dict[str, object]:
    """The rule's pattern, as EventBridge receives it (tests read it from the template too)."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Processing Job State Change"],
        "detail": {"ProcessingJobStatus": ["Completed"], "MonitoringScheduleArn": schedule_arns},
    }


class DriftRetrain(Construct):
    """Rule (id ``Resource``) -> guard function (concurrency 1) -> ``StartPipelineExecution``."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        pipeline_name: str,
        pipeline_arn: str,
        schedule_names: list[str],
        cooldown_hours: int,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        schedule_arns = [
            stack.format_arn(
                service="sagemaker", resource="monitoring-schedule", resource_name=name.lower()
            )
            for name in schedule_names
        ]
        log_group = logs.LogGroup(
            self,
            "Logs",
            # Under /aws/lambda/ so the environment key's policy lets CloudWatch Logs use it.
            log_group_name=f"/aws/lambda/{stack.stack_name}/retrain-guard",
            retention=log_retention,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            "Role",
            description=f"Starts {pipeline_name} on Model Monitor violations, after the cool-down",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Least privilege of the retrain guard of {pipeline_name}",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="StartPipeline",
                    actions=[
                        "sagemaker:ListPipelineExecutions",
                        "sagemaker:StartPipelineExecution",
                    ],
                    resources=[pipeline_arn],
                ),
                # ListMonitoringExecutions has no resource-level permissions (Service
                # Authorization Reference, Amazon SageMaker AI): it can only be granted on '*'.
                iam.PolicyStatement(
                    sid="ReadMonitoringExecutions",
                    actions=["sagemaker:ListMonitoringExecutions"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="WriteLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                ),
            ],
        )
        acknowledge(
            self.policy,
            "sagemaker:ListMonitoringExecutions has no resource-level permissions; it only reads "
            "execution summaries.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        self.function = lambda_.Function(
            self,
            "Guard",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(RUNTIME), exclude=list(BUILD_JUNK)),
            role=role,
            timeout=Duration.seconds(30),
            memory_size=128,
            log_group=log_group,
            # One event at a time: the second of two simultaneous violations sees the first's
            # execution and skips.
            reserved_concurrent_executions=1,
            environment={
                PIPELINE_NAME: pipeline_name,
                COOLDOWN_HOURS: str(cooldown_hours),
            },
        )
        self.function.node.add_dependency(self.policy)
        # CDK makes the function DependsOn the role it also GetAtts: cfn-lint W3005 on CDK's own
        # wiring, silenced on exactly this resource.
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        acknowledge(
            self.function,
            "Invoked by EventBridge for drift events, which EventBridge retries itself; a lost "
            "event is repeated by the next monitoring execution that still finds violations, so "
            "a dead-letter queue would hold nothing worth replaying. It only calls the SageMaker "
            "API over TLS with its own least-privilege role; a VPC would need endpoints this "
            "product does not own.",
            "HIPAA.Security-LambdaDLQ",
            "NIST.800.53.R5-LambdaDLQ",
            "HIPAA.Security-LambdaInsideVPC",
            "NIST.800.53.R5-LambdaInsideVPC",
            "PCI.DSS.321-LambdaInsideVPC",
        )
        self.rule = events.Rule(
            self,
            "Resource",
            description=f"Model Monitor violations of {', '.join(schedule_names)} start {pipeline_name}",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Processing Job State Change"],
                detail=drift_event_pattern(schedule_arns)["detail"],  # type: ignore[arg-type]
            ),
            targets=[targets.LambdaFunction(self.function, retry_attempts=4)],
        )
