"""The fine-tuning SageMaker Pipeline, its two roles and the training code asset.

* **Job role** (assumed by the training and processing jobs): reads the data prefixes, the base
  model and the code tarball; reads and writes ``<prefix>/`` of the artifact bucket; the
  environment key; pulls the training image; writes the jobs' logs and metrics.
* **Pipeline execution role** (assumed by SageMaker Pipelines): creates, describes and stops
  the jobs this pipeline names (``pipelines-*``), passes the job role to SageMaker only,
  registers packages in its one group and reads the evaluation report.

Both keep every permission in one customer-managed policy (the HIPAA/NIST/PCI packs refuse
inline policies); no managed policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from hf_towers.compliance import acknowledge, iam5_resource_ids
from hf_towers.constructs.execution_role import (
    pull_image_statements,
    put_sagemaker_metrics_statement,
    sagemaker_principal,
)
from hf_towers.constructs.model_data import split_s3_uri
from hf_towers.constructs.s3_location import s3_arn
from hf_towers.constructs.tarball import deterministic_tarball
from hf_towers.constructs.tower_endpoint import supports_volume_kms
from hf_towers.constructs.training import definition

CODE_DIR = Path(__file__).resolve().parents[3] / "model_code" / "train"
"""The training and evaluation code (``train.py``, ``evaluate.py``, ``clip_train.py``)."""
JOB_LOG_GROUPS = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs")
# Jobs a pipeline starts are named pipelines-<execution id>-<step>-<suffix> by SageMaker.
PIPELINE_JOBS = "pipelines-*"
JOB_KINDS = {"training-job": "Training", "processing-job": "Processing"}
"""ARN resource type of the jobs the pipeline runs -> the word in their API actions' names."""


def code_tarball(folder: Path = CODE_DIR) -> Path:
    """The code as the training toolkit wants it: a deterministic ``.tar.gz`` (sorted, owner 0,
    mtime 0, no bytecode), named by its content so an unchanged folder keeps its asset hash."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return deterministic_tarball(folder, files, "hf_towers_train")


@dataclass(frozen=True)
class PipelineSettings:
    """What the construct takes from config (``hf_towers.config.training``) and the stack."""

    pipeline_name: str
    package_group: str
    region: str
    training_image: str
    training_image_repository_arn: str
    inference_image: str
    inference_instance_type: str
    train_uri: str
    validation_uri: str
    base_model: str
    metric_json_path: str
    min_value: float
    epochs: int
    learning_rate: float
    batch_size: int
    instance_type: str
    evaluation_instance_type: str
    volume_size_gb: int
    max_runtime_seconds: int
    network_isolation: bool
    output_prefix: str  # in the artifact bucket, no slashes at either end


def _prefix_arns(partition: str, uri: str) -> tuple[str, str, str]:
    """``s3://bucket/a/b/`` -> (bucket ARN, objects ARN ``.../a/b/*``, listing prefix ``a/b/*``)."""
    bucket, key = split_s3_uri(uri)
    return s3_arn(partition, bucket), s3_arn(partition, bucket, f"{key}*"), f"{key}*"


def _run_jobs_statement(job: str, jobs_arn: str) -> iam.PolicyStatement:
    """``Run<job>Jobs``: create, describe, stop and tag the ``<job>`` jobs matching ``jobs_arn``."""
    return iam.PolicyStatement(
        sid=f"Run{job}Jobs",
        actions=[
            "sagemaker:AddTags",
            f"sagemaker:Create{job}Job",
            f"sagemaker:Describe{job}Job",
            f"sagemaker:Stop{job}Job",
        ],
        resources=[jobs_arn],
    )


def _job_settings(
    settings: PipelineSettings, instance_type: str, key_arn: str
) -> definition.JobSettings:
    """A job of the pipeline on ``instance_type``, its volume encrypted with ``key_arn`` unless
    the type has instance storage (``supports_volume_kms``)."""
    return definition.JobSettings(
        instance_type,
        settings.volume_size_gb,
        settings.max_runtime_seconds,
        key_arn if supports_volume_kms(instance_type) else None,
    )


class FineTuningPipeline(Construct):
    """``AWS::SageMaker::Pipeline`` (id ``Resource``) with its job role and execution role."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        settings: PipelineSettings,
        bucket: s3.IBucket,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.settings = settings
        code = s3_assets.Asset(self, "Code", path=str(code_tarball()))
        output_uri = f"s3://{bucket.bucket_name}/{settings.output_prefix}"
        outputs_arn = f"{bucket.bucket_arn}/{settings.output_prefix}/*"

        trust = sagemaker_principal(stack)
        self.job_role = iam.Role(
            self,
            "JobRole",
            description=f"Fine-tuning jobs of {settings.pipeline_name}",
            assumed_by=trust,
        )
        log_groups = [
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{group}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for group in JOB_LOG_GROUPS
        ]
        data_statements, data_objects = self._data_statements(stack.partition)
        self.job_policy = iam.ManagedPolicy(
            self,
            "JobPolicy",
            description=f"Least privilege of the fine-tuning jobs of {settings.pipeline_name}",
            roles=[self.job_role],
            statements=[
                *data_statements,
                iam.PolicyStatement(
                    sid="ReadCode",
                    actions=["s3:GetObject"],
                    resources=[code.bucket.arn_for_objects(code.s3_object_key)],
                ),
                iam.PolicyStatement(
                    sid="ReadWriteOutputs",
                    actions=["s3:GetObject", "s3:PutObject"],
                    resources=[outputs_arn],
                ),
                # The Evaluate step's model input is an S3Prefix: the job lists it.
                iam.PolicyStatement(
                    sid="ListOutputs",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{settings.output_prefix}/*"]}},
                ),
                iam.PolicyStatement(
                    sid="UseEnvironmentKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                ),
                *pull_image_statements("PullTrainingImage", settings.training_image_repository_arn),
                put_sagemaker_metrics_statement("PutJobMetrics"),
                iam.PolicyStatement(
                    sid="WriteJobLogs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                    ],
                    resources=log_groups,
                ),
            ],
        )
        acknowledge(
            self.job_policy,
            "The jobs read every object of the configured data prefixes (images named in "
            "pairs.jsonl) and write objects SageMaker names after the job under the pipeline's "
            "own prefix of the artifact bucket. Jobs name their log streams after the job, in the "
            "one TrainingJobs/ProcessingJobs group. Resource '*' only for ecr:GetAuthorizationToken "
            "and cloudwatch:PutMetricData (no resource-level permissions; bounded by namespace).",
            *iam5_resource_ids(self, *data_objects, outputs_arn, *log_groups, "*"),
        )

        self.role = iam.Role(
            self,
            "ExecutionRole",
            description=f"Execution role of the SageMaker pipeline {settings.pipeline_name}",
            assumed_by=trust,
        )
        jobs = {
            kind: stack.format_arn(service="sagemaker", resource=kind, resource_name=PIPELINE_JOBS)
            for kind in JOB_KINDS
        }
        group = settings.package_group.lower()  # SageMaker lower-cases names in ARNs
        group_arn = stack.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=group
        )
        packages_arn = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group}/*"
        )
        evaluation_arn = f"{bucket.bucket_arn}/{settings.output_prefix}/evaluation/*"
        self.execution_policy = iam.ManagedPolicy(
            self,
            "ExecutionPolicy",
            description=f"Least privilege of the SageMaker pipeline {settings.pipeline_name}",
            roles=[self.role],
            statements=[
                *(_run_jobs_statement(job, jobs[kind]) for kind, job in JOB_KINDS.items()),
                iam.PolicyStatement(
                    sid="RegisterPackages",
                    actions=[
                        "sagemaker:AddTags",
                        "sagemaker:CreateModelPackage",
                        "sagemaker:DescribeModelPackage",
                    ],
                    resources=[packages_arn, group_arn],
                ),
                iam.PolicyStatement(
                    sid="PassJobRole",
                    actions=["iam:PassRole"],
                    resources=[self.job_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                ),
                # The pipeline reads the Evaluate step's property file itself.
                iam.PolicyStatement(
                    sid="ReadEvaluationReport", actions=["s3:GetObject"], resources=[evaluation_arn]
                ),
                iam.PolicyStatement(
                    sid="UseEnvironmentKey",
                    actions=["kms:Decrypt", "kms:DescribeKey"],
                    resources=[key.key_arn],
                ),
                # The jobs' volumes are encrypted with the key through grants SageMaker creates
                # with the caller's (this role's) permissions.
                iam.PolicyStatement(
                    sid="GrantVolumeKey",
                    actions=["kms:CreateGrant"],
                    resources=[key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                ),
            ],
        )
        acknowledge(
            self.execution_policy,
            "SageMaker Pipelines names the jobs it starts pipelines-<execution id>-<step>-<suffix> "
            "and package versions <group>/<n>: the statements are bounded by those patterns, the "
            "one package group and the pipeline's evaluation prefix.",
            *iam5_resource_ids(self, *jobs.values(), packages_arn, evaluation_arn),
        )

        inputs = definition.PipelineInputs(
            region=settings.region,
            training_image=settings.training_image,
            inference_image=settings.inference_image,
            inference_instance_type=settings.inference_instance_type,
            job_role_arn=self.job_role.role_arn,
            key_arn=key.key_arn,
            train_uri=settings.train_uri,
            validation_uri=settings.validation_uri,
            base_model=settings.base_model,
            code_uri=code.s3_object_url,
            code_key=code.s3_object_key,
            output_uri=output_uri,
            package_group=settings.package_group,
            metric_json_path=settings.metric_json_path,
            min_value=settings.min_value,
            epochs=settings.epochs,
            learning_rate=settings.learning_rate,
            batch_size=settings.batch_size,
            training=_job_settings(settings, settings.instance_type, key.key_arn),
            evaluation=_job_settings(settings, settings.evaluation_instance_type, key.key_arn),
            network_isolation=settings.network_isolation,
        )
        self.definition = definition.pipeline_definition(inputs)
        self.resource = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=settings.pipeline_name,
            pipeline_description=(
                "Fine-tune the dual encoder, evaluate recall@k, register when it meets the threshold"
            ),
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(self.definition)},
        )
        self.resource.node.add_dependency(self.execution_policy, self.job_policy)

    @property
    def arn(self) -> str:
        """The pipeline's ARN (its name is fixed by config, lower-cased as SageMaker writes it)."""
        return Stack.of(self).format_arn(
            service="sagemaker",
            resource="pipeline",
            resource_name=self.settings.pipeline_name.lower(),
        )

    def _data_statements(self, partition: str) -> tuple[list[iam.PolicyStatement], list[str]]:
        """Read the two data prefixes (and list them), and the base model when it is in S3."""
        settings = self.settings
        buckets: dict[str, list[str]] = {}
        objects: list[str] = []
        for uri in (settings.train_uri, settings.validation_uri):
            bucket_arn, objects_arn, listing = _prefix_arns(partition, uri)
            buckets.setdefault(bucket_arn, []).append(listing)
            objects.append(objects_arn)
        objects = list(dict.fromkeys(objects))
        statements = [
            iam.PolicyStatement(sid="ReadTrainingData", actions=["s3:GetObject"], resources=objects)
        ]
        for index, (bucket_arn, prefixes) in enumerate(sorted(buckets.items())):
            statements.append(
                iam.PolicyStatement(
                    sid=f"ListTrainingData{index}",
                    actions=["s3:ListBucket"],
                    resources=[bucket_arn],
                    conditions={"StringLike": {"s3:prefix": sorted(set(prefixes))}},
                )
            )
        if settings.base_model.startswith("s3://"):
            bucket, key = split_s3_uri(settings.base_model)
            statements.append(
                iam.PolicyStatement(
                    sid="ReadBaseModel",
                    actions=["s3:GetObject"],
                    resources=[s3_arn(partition, bucket, key)],
                )
            )
        return statements, objects
