"""``config/pipeline.yaml``: the multi-account delivery pipeline and the environments it deploys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import Field, StringConstraints, field_validator, model_validator

from hf_towers.config.base import ACCOUNT_PATTERN, NAME_PATTERN, Strict, load_file, parse_file_data
from hf_towers.config.loader import ConfigError, load_config
from hf_towers.config.models import EnvironmentConfig
from hf_towers.config.packages import RESOLVED_DIR
from hf_towers.config.regions import check_region

CONNECTION_ARN_PATTERN = r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
REPOSITORY_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


class PipelineConfig(Strict):
    """``config/pipeline.yaml``: the self-mutating delivery pipeline in the tooling account."""

    project: Annotated[str, StringConstraints(pattern=NAME_PATTERN)] = "hf-towers"
    tooling_account: Annotated[str, StringConstraints(pattern=ACCOUNT_PATTERN)]
    tooling_region: str = Field(description="Region of the pipeline, e.g. us-east-1.")
    repository: Annotated[str, StringConstraints(pattern=REPOSITORY_PATTERN)]
    branch: Annotated[str, StringConstraints(min_length=1, max_length=255)] = "main"
    connection_arn: Annotated[str, StringConstraints(pattern=CONNECTION_ARN_PATTERN)]
    environments: list[Annotated[str, StringConstraints(pattern=r"^[\w./-]+\.ya?ml$")]] = Field(
        min_length=1, description="Environment config files, deployed in this order."
    )
    smoke_test: bool = True
    deploy_on_approval: bool = Field(
        default=True,
        description="Approving a version of a model_package group of the environments starts the pipeline.",
    )

    @field_validator("tooling_region")
    @classmethod
    def _real_region(cls, value: str) -> str:
        return check_region(value, "codepipeline", "CodePipeline")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if len(set(self.environments)) != len(self.environments):
            raise ValueError("environments lists a file twice: list each environment once")
        return self


PIPELINE_HINTS: Mapping[str, str] = {
    "tooling_account": "must be the 12-digit tooling account id in quotes, e.g. '111111111111'",
    "repository": "must be owner/name of the repository, e.g. my-org/hf-towers",
    "connection_arn": "must be a CodeStar/CodeConnections connection ARN, e.g. "
    "arn:aws:codeconnections:us-east-1:111111111111:connection/<uuid>",
    "environments": "must list environment config files (config/dev.yaml, ...) in deployment order",
    "project": "must be lowercase letters, digits and hyphens, 2-32 chars, e.g. hf-towers",
}


class PipelineConfigError(ValueError):
    """A pipeline config (or one of its environment files) that cannot be used."""


def parse_pipeline_config(data: Any, source: str) -> PipelineConfig:
    """Validate already-loaded YAML data of a pipeline config."""
    return parse_file_data(
        PipelineConfig,
        data,
        source,
        error=PipelineConfigError,
        title="invalid pipeline configuration",
        keys="tooling_account, repository, environments",
        hints=PIPELINE_HINTS,
    )


def load_pipeline_config(path: Path) -> PipelineConfig:
    """Read and validate ``config/pipeline.yaml``."""
    data = load_file(
        path, error=PipelineConfigError, what="pipeline config", example="config/pipeline.yaml"
    )
    return parse_pipeline_config(data, str(path))


def load_pipeline_environments(
    pipeline: PipelineConfig, base_dir: Path, *, resolved_dir: Path = RESOLVED_DIR
) -> list[EnvironmentConfig]:
    """Load every environment file of ``pipeline`` (relative to ``base_dir``), in order.

    Each must name its account (a stage deploys into a fixed account), belong to the pipeline's
    project, and have an environment name of its own.
    """
    configs: list[EnvironmentConfig] = []
    problems: list[str] = []
    for file in pipeline.environments:
        try:
            config = load_config(base_dir / file, resolved_dir=resolved_dir)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if config.account is None:
            problems.append(
                f"{file}: account = None: a pipeline stage deploys into a fixed account: set account"
            )
        if config.project != pipeline.project:
            problems.append(
                f"{file}: project = {config.project!r}: the pipeline deploys project "
                f"{pipeline.project!r}: use the same project in both files"
            )
        if any(c.environment == config.environment for c in configs):
            problems.append(
                f"{file}: environment = {config.environment!r}: another file of the pipeline "
                "has the same environment name: give each environment its own"
            )
        configs.append(config)
    if problems:
        raise PipelineConfigError("invalid pipeline environments:\n  " + "\n  ".join(problems))
    return configs
