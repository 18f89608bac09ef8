"""Model Monitor data-quality drift detection of a tower's captured requests.

``AWS::SageMaker::DataQualityJobDefinition`` (baseline constraints and statistics from config)
plus ``AWS::SageMaker::MonitoringSchedule``, run by a role of their own that can only read the
tower's captures and baselines, write the reports prefix and pull the analyzer image.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from hf_towers.compliance import acknowledge, iam5_resource_ids
from hf_towers.config.operations import ModelMonitor
from hf_towers.constructs.execution_role import pull_image_statements, sagemaker_principal
from hf_towers.constructs.model_data import split_s3_uri
from hf_towers.constructs.s3_location import S3Prefix, s3_arn
from hf_towers.images import repository_arn

# Namespace Model Monitor publishes its drift metrics to.
METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
PROCESSING_INPUT = "/opt/ml/processing/input/endpoint"
PROCESSING_OUTPUT = "/opt/ml/processing/output"


@cache
def analyzer_image(region: str) -> str:
    """The Model Monitor analyzer image of ``region``, resolved offline by the SageMaker SDK."""
    from sagemaker.core import image_uris  # ~3.5 s import; only monitored towers need it

    uri: str = image_uris.retrieve("model-monitor", region=region)
    return uri


def schedule_name(endpoint_name: str) -> str:
    """The data-quality schedule's name (the training stack's drift rule matches its ARN)."""
    return f"{endpoint_name[:50]}-data-quality"


def _object_arn(stack: Stack, uri: str) -> str:
    bucket, key = split_s3_uri(uri)
    return s3_arn(stack.partition, bucket, key)


class DataQualityMonitor(Construct):
    """Role, job definition and schedule; the job definition's name carries a hash of its
    (create-only) settings so a change replaces it instead of failing on a fixed name."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        settings: ModelMonitor,
        endpoint_name: str,
        captures: S3Prefix,
        reports: S3Prefix,
        key: kms.IKey,
        region: str,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        assert settings.baseline_constraints_uri and settings.baseline_statistics_uri
        image = analyzer_image(region)
        self.role = iam.Role(
            self,
            "Role",
            description=f"Model Monitor role of {stack.stack_name}",
            assumed_by=sagemaker_principal(stack),
        )
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/ProcessingJobs:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Least-privilege permissions of the Model Monitor role of {stack.stack_name}",
            roles=[self.role],
            statements=self._statements(
                stack, settings, captures, reports, key, repository_arn(image), log_groups
            ),
        )
        acknowledge(
            self.policy,
            "Captured requests and monitoring reports are objects SageMaker names itself (date and "
            "id in the key): reads and writes are granted on exactly the tower's two prefixes. "
            "Processing jobs name their log streams after the job, in the one ProcessingJobs group. "
            "Resource '*' only for ecr:GetAuthorizationToken and cloudwatch:PutMetricData (no "
            "resource-level permissions; metrics bounded by the data-metrics namespace).",
            *iam5_resource_ids(self, captures.objects_arn, reports.objects_arn, log_groups, "*"),
        )
        digest = hashlib.sha256(
            json.dumps(
                [settings.model_dump(mode="json"), captures.prefix, reports.prefix, image],
                sort_keys=True,
            ).encode()
        ).hexdigest()[:8]
        self.job_definition_name = f"{endpoint_name[:48]}-dq-{digest}"
        Cfn = sagemaker.CfnDataQualityJobDefinition
        self.job_definition = Cfn(
            self,
            "JobDefinition",
            job_definition_name=self.job_definition_name,
            role_arn=self.role.role_arn,
            data_quality_app_specification=Cfn.DataQualityAppSpecificationProperty(image_uri=image),
            data_quality_baseline_config=Cfn.DataQualityBaselineConfigProperty(
                constraints_resource=Cfn.ConstraintsResourceProperty(
                    s3_uri=settings.baseline_constraints_uri
                ),
                statistics_resource=Cfn.StatisticsResourceProperty(
                    s3_uri=settings.baseline_statistics_uri
                ),
            ),
            data_quality_job_input=Cfn.DataQualityJobInputProperty(
                endpoint_input=Cfn.EndpointInputProperty(
                    endpoint_name=endpoint_name,
                    local_path=PROCESSING_INPUT,
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
            data_quality_job_output_config=Cfn.MonitoringOutputConfigProperty(
                kms_key_id=key.key_arn,
                monitoring_outputs=[
                    Cfn.MonitoringOutputProperty(
                        s3_output=Cfn.S3OutputProperty(
                            local_path=PROCESSING_OUTPUT,
                            s3_uri=reports.uri,
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=Cfn.MonitoringResourcesProperty(
                cluster_config=Cfn.ClusterConfigProperty(
                    instance_count=1,
                    instance_type=settings.instance_type,
                    volume_size_in_gb=settings.volume_size_gb,
                    volume_kms_key_id=key.key_arn,
                )
            ),
            stopping_condition=Cfn.StoppingConditionProperty(
                max_runtime_in_seconds=settings.max_runtime_seconds
            ),
        )
        self.job_definition.node.add_dependency(self.policy)
        self.schedule = sagemaker.CfnMonitoringSchedule(
            self,
            "Resource",
            monitoring_schedule_name=schedule_name(endpoint_name),
            endpoint_name=endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                monitoring_job_definition_name=self.job_definition_name,
                monitoring_type="DataQuality",
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                    schedule_expression=settings.schedule
                ),
            ),
        )
        self.schedule.node.add_dependency(self.job_definition)

    @staticmethod
    def _statements(
        stack: Stack,
        settings: ModelMonitor,
        captures: S3Prefix,
        reports: S3Prefix,
        key: kms.IKey,
        image_repository_arn: str,
        log_groups: str,
    ) -> Sequence[iam.PolicyStatement]:
        baselines = [
            _object_arn(stack, uri)
            for uri in (settings.baseline_constraints_uri, settings.baseline_statistics_uri)
            if uri
        ]
        return [
            iam.PolicyStatement(
                sid="ReadCaptures", actions=["s3:GetObject"], resources=[captures.objects_arn]
            ),
            iam.PolicyStatement(
                sid="ListCaptures",
                actions=["s3:ListBucket"],
                resources=[captures.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{captures.prefix}/*"]}},
            ),
            iam.PolicyStatement(sid="ReadBaselines", actions=["s3:GetObject"], resources=baselines),
            iam.PolicyStatement(
                sid="WriteReports", actions=["s3:PutObject"], resources=[reports.objects_arn]
            ),
            iam.PolicyStatement(
                sid="UseEnvironmentKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            ),
            *pull_image_statements("PullAnalyzer", image_repository_arn),
            # cloudwatch:PutMetricData has no resource-level permissions; the namespace bounds it.
            iam.PolicyStatement(
                sid="PutDriftMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            ),
            iam.PolicyStatement(
                sid="WriteJobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_groups],
            ),
        ]
