"""``training:`` of an environment file: the fine-tuning pipeline and drift-triggered retraining.

Off by default. ``enabled: true`` adds the stack ``<project>-<environment>-training`` (README,
'Model lifecycle'): Model Package Groups, a SageMaker Pipeline that trains the dual encoder on
``data.train_uri``, evaluates recall@k on ``data.validation_uri`` and registers the model as
``PendingManualApproval`` when ``threshold`` is met, and (``retrain_on_drift``) a rule that
starts it when a tower's Model Monitor schedule reports violations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import Field, ValidationInfo, model_validator

from hf_towers.config.base import NAME_PATTERN, S3_URI_PATTERN, Strict, matching

if TYPE_CHECKING:
    from hf_towers.config.models import Tower

# The Hugging Face training images are GPU images (sagemaker-core's image_uri_config lists only
# the "gpu" processor for "huggingface" training): NVIDIA instance families only.
GPU_INSTANCE_PATTERN = r"^ml\.(g|p)[0-9][a-z0-9-]*\.[a-z0-9]+$"
S3_PREFIX_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S*/$"
HUB_ID_PATTERN = r"^[A-Za-z0-9][\w.-]*/[\w.-]+$"
# Model package group names: 1-63 alphanumerics and hyphens (CreateModelPackageGroup).
GROUP_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"

S3Prefix = Annotated[
    str,
    matching(
        S3_PREFIX_PATTERN,
        "must be an S3 prefix ending in '/', e.g. s3://my-data/pairs/train/ (pairs.jsonl + images)",
    ),
]
GpuInstanceType = Annotated[
    str,
    matching(
        GPU_INSTANCE_PATTERN,
        "must be a GPU instance type (ml.g* or ml.p*, e.g. ml.g5.2xlarge): the Hugging Face "
        "training image is a CUDA image",
    ),
]
TowerName = Annotated[
    str, matching(NAME_PATTERN, "must be tower names of this file (lowercase), e.g. text")
]


class RecallMetric(StrEnum):
    """Which recall the threshold reads from ``evaluation.json``."""

    RECALL = "recall"  # mean of both directions
    IMAGE_TO_TEXT = "image_to_text_recall"
    TEXT_TO_IMAGE = "text_to_image_recall"


class TrainingData(Strict):
    """The image-text pairs: each prefix holds ``pairs.jsonl`` and the images it names."""

    train_uri: S3Prefix
    validation_uri: S3Prefix


class Hyperparameters(Strict):
    """Passed to ``model_code/train/train.py`` (and overridable per pipeline execution)."""

    epochs: int = Field(default=3, ge=1, le=1000)
    learning_rate: float = Field(default=1e-5, gt=0, le=1)
    batch_size: int = Field(default=32, ge=2, le=4096)


class RecallThreshold(Strict):
    """The model is registered only when ``<metric>_at_<k> >= min_value`` on the held-out split."""

    metric: RecallMetric = RecallMetric.RECALL
    k: Literal[1, 5] = 1
    min_value: float = Field(default=0.5, ge=0, le=1)

    @property
    def metric_name(self) -> str:
        """The key in ``evaluation.json``, e.g. ``recall_at_1``."""
        return f"{self.metric.value}_at_{self.k}"

    @property
    def json_path(self) -> str:
        """Where the pipeline's ``JsonGet`` reads it: ``retrieval_metrics.<name>.value``."""
        return f"retrieval_metrics.{self.metric_name}.value"


class RetrainOnDrift(Strict):
    """Start the pipeline when a tower's data-quality schedule finds violations (off)."""

    enabled: bool = False
    towers: list[TowerName] = Field(default_factory=list)
    cooldown_hours: int = Field(default=24, ge=1, le=720)


class Training(Strict):
    """The fine-tuning pipeline of the dual encoder (README, 'Model lifecycle')."""

    enabled: bool = False
    data: TrainingData | None = None
    base_model: str | None = Field(
        default=None,
        description="s3://.../model.tar.gz of a CLIPModel checkpoint, or a Hub id (needs network).",
    )
    transformers_version: str = "4.49.0"
    pytorch_version: str = "2.5.1"
    instance_type: GpuInstanceType = "ml.g5.2xlarge"
    evaluation_instance_type: GpuInstanceType = "ml.g5.xlarge"
    volume_size_gb: int = Field(default=50, ge=1, le=16384)
    max_runtime_seconds: int = Field(default=86400, ge=60, le=2419200)
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    threshold: RecallThreshold = Field(default_factory=RecallThreshold)
    model_package_group: (
        Annotated[
            str,
            matching(
                GROUP_NAME_PATTERN,
                "must be 1-63 letters, digits and hyphens, e.g. my-project-dual-encoder",
            ),
        ]
        | None
    ) = None
    retrain_on_drift: RetrainOnDrift = Field(default_factory=RetrainOnDrift)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        if self.enabled and (self.data is None or self.base_model is None):
            raise ValueError(
                "training.enabled needs data (train_uri and validation_uri) and base_model: set "
                "them, or enabled: false"
            )
        if self.base_model is not None and not (
            (re.match(S3_URI_PATTERN, self.base_model) and self.base_model.endswith(".tar.gz"))
            or re.match(HUB_ID_PATTERN, self.base_model)
        ):
            raise ValueError(
                f"training.base_model {self.base_model!r} is neither an s3://.../model.tar.gz "
                "nor a Hugging Face Hub id like openai/clip-vit-base-patch32"
            )
        if self.retrain_on_drift.enabled and not self.enabled:
            raise ValueError(
                "training.retrain_on_drift.enabled needs training.enabled: true (it starts the "
                "training pipeline)"
            )
        return self

    @property
    def base_model_in_s3(self) -> bool:
        """True when ``base_model`` is an S3 artifact (the jobs then run network-isolated)."""
        return bool(self.base_model and self.base_model.startswith("s3://"))

    def package_group(self, project: str) -> str:
        """The dual encoder's Model Package Group: configured, or ``<project>-dual-encoder``."""
        return self.model_package_group or f"{project}-dual-encoder"


def check_training_towers(training: Training, info: ValidationInfo) -> Training:
    """``retrain_on_drift.towers`` must name towers of the file with a Model Monitor schedule."""
    towers: Mapping[str, Tower] | Any = info.data.get("towers")
    drift = training.retrain_on_drift
    if not drift.enabled or not isinstance(towers, Mapping):
        return training
    if not drift.towers:
        raise ValueError(
            "training.retrain_on_drift.enabled needs towers: name the towers whose data-quality "
            "schedule starts the pipeline"
        )
    unknown = [name for name in drift.towers if name not in towers]
    if unknown:
        raise ValueError(
            f"training.retrain_on_drift.towers {unknown} are not towers of this file (towers: "
            f"{sorted(towers)})"
        )
    unmonitored = [name for name in drift.towers if not towers[name].model_monitor.enabled]
    if unmonitored:
        raise ValueError(
            f"training.retrain_on_drift.towers {unmonitored} have no Model Monitor schedule: set "
            "their model_monitor.baseline_constraints_uri and baseline_statistics_uri (and "
            "data_capture.enabled), or drop them from the list"
        )
    return training
