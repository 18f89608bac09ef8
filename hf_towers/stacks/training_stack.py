"""Training stack of an environment: the model registry, the fine-tuning pipeline, drift retraining."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hf_towers.config.models import EnvironmentConfig, TowerKind
from hf_towers.config.models import Tower as TowerSettings
from hf_towers.constructs.model_monitor import schedule_name
from hf_towers.constructs.training.pipeline import FineTuningPipeline, PipelineSettings
from hf_towers.constructs.training.registry import ModelPackageGroup
from hf_towers.constructs.training.retrain import DriftRetrain
from hf_towers.images import ImageResolutionError, repository_arn, resolve_image
from hf_towers.stacks.artifacts_stack import ArtifactsStack
from hf_towers.stacks.tower_stack import RETENTION

OUTPUT_PREFIX = "training"
"""Where the pipeline's jobs write in the artifact bucket: ``models/`` and ``evaluation/``."""


def training_image(
    region: str, transformers_version: str, pytorch_version: str, instance_type: str
) -> str:
    """The Hugging Face PyTorch training image, resolved offline by sagemaker-core (GPU only)."""
    from sagemaker.core import image_uris  # ~3.5 s import; only training environments need it

    try:
        uri: str = image_uris.retrieve(
            "huggingface",
            region=region,
            version=transformers_version,
            base_framework_version=f"pytorch{pytorch_version}",
            instance_type=instance_type,
            image_scope="training",
        )
    except ValueError as exc:
        raise ImageResolutionError(
            f"training: no Hugging Face training image for transformers {transformers_version} / "
            f"pytorch {pytorch_version} / {instance_type} in {region}: {exc}. Pick versions the "
            "SageMaker SDK lists (e.g. transformers 4.49.0 with pytorch 2.5.1)"
        ) from None
    return uri


class TrainingStack(Stack):
    """Groups (dual encoder + one per task tower), the pipeline and, optionally, the drift rule."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: EnvironmentConfig,
        artifacts: ArtifactsStack,
        removal_policy: RemovalPolicy,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        training = config.training
        assert training.enabled and training.data is not None and training.base_model is not None
        group_name = training.package_group(config.project)
        self.dual_encoder_group = ModelPackageGroup(
            self,
            "DualEncoderGroup",
            group_name=group_name,
            description=f"{config.project}: fine-tuned dual encoder (vision and text towers)",
            removal_policy=removal_policy,
        )
        self.task_groups = {
            name: ModelPackageGroup(
                self,
                f"TaskGroup-{name}",
                group_name=f"{config.project}-{name}",
                description=f"{config.project}: task model of the tower '{name}' ({tower.hf_task})",
                removal_policy=removal_policy,
            )
            for name, tower in config.towers.items()
            if tower.kind is TowerKind.TASK
        }
        encoders = [t for t in config.towers.values() if t.kind is not TowerKind.TASK]
        # The package's inference image: the first dual-encoder tower's, else the defaults.
        serving = (
            encoders[0]
            if encoders
            else TowerSettings(kind=TowerKind.TEXT, model_uri="s3://unused-bucket/model.tar.gz")
        )
        if serving.image in ("dlc", "build"):
            dlc = serving.model_copy(update={"image": "dlc"})
            inference_image = resolve_image(dlc, config.region).uri
        else:
            inference_image = serving.image
        image = training_image(
            config.region,
            training.transformers_version,
            training.pytorch_version,
            training.instance_type,
        )
        bucket = s3.Bucket.from_bucket_arn(self, "ArtifactBucket", artifacts.import_bucket_arn())
        self.pipeline = FineTuningPipeline(
            self,
            "FineTuning",
            settings=PipelineSettings(
                pipeline_name=f"{config.prefix}-fine-tune",
                package_group=group_name,
                region=config.region,
                training_image=image,
                training_image_repository_arn=repository_arn(image),
                inference_image=inference_image,
                inference_instance_type=serving.instance_type,
                train_uri=training.data.train_uri,
                validation_uri=training.data.validation_uri,
                base_model=training.base_model,
                metric_json_path=training.threshold.json_path,
                min_value=training.threshold.min_value,
                epochs=training.hyperparameters.epochs,
                learning_rate=training.hyperparameters.learning_rate,
                batch_size=training.hyperparameters.batch_size,
                instance_type=training.instance_type,
                evaluation_instance_type=training.evaluation_instance_type,
                volume_size_gb=training.volume_size_gb,
                max_runtime_seconds=training.max_runtime_seconds,
                # A Hub id is downloaded by the job: only an S3 base model allows isolation.
                network_isolation=training.base_model_in_s3,
                output_prefix=OUTPUT_PREFIX,
            ),
            bucket=bucket,
            key=artifacts.store.key,
        )
        self.pipeline.resource.node.add_dependency(self.dual_encoder_group.resource)
        self.retrain: DriftRetrain | None = None
        drift = training.retrain_on_drift
        if drift.enabled:
            self.retrain = DriftRetrain(
                self,
                "DriftRetrain",
                pipeline_name=self.pipeline.settings.pipeline_name,
                pipeline_arn=self.pipeline.arn,
                schedule_names=[schedule_name(config.endpoint_name(t)) for t in drift.towers],
                cooldown_hours=drift.cooldown_hours,
                key=artifacts.store.key,
                log_retention=RETENTION[config.log_retention_days],
            )
        CfnOutput(
            self, "PipelineName", value=self.pipeline.settings.pipeline_name,
            description="Start it: aws sagemaker start-pipeline-execution --pipeline-name <this>",
        )  # fmt: skip
        CfnOutput(
            self, "ModelPackageGroupName", value=group_name,
            description="Registered versions: aws sagemaker list-model-packages --model-package-group-name <this>",
        )  # fmt: skip
