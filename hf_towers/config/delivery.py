"""Typed configuration of delivery: the optional REST API of an environment (``api:`` in an
environment file) and the multi-account pipeline (``config/pipeline.yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic import model_validator as _model_validator

from hf_towers.config.regions import check_region
from hf_towers.config.yaml_file import YamlFileError, read_yaml

if TYPE_CHECKING:
    from hf_towers.config.models import EnvironmentConfig

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
WEB_ACL_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/[A-Za-z0-9_-]{1,128}/[0-9a-f-]{36}$"
)
CONNECTION_ARN_PATTERN = r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
REPOSITORY_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
MEDIA_TYPE_PATTERN = r"^[a-z]+/[a-z0-9.+*-]+$"

# What the vision tower accepts as raw bytes, and the embeddings' binary answer type.
DEFAULT_BINARY_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "application/x-npy")


def _matching(pattern: str, fix: str) -> AfterValidator:
    """A string check whose error names the fix (pydantic's own message shows the regex)."""

    def check(value: str) -> str:
        if not re.match(pattern, value):
            raise ValueError(fix)
        return value

    return AfterValidator(check)


ConsumerName = Annotated[
    str,
    _matching(
        NAME_PATTERN, "must be lowercase letters, digits and hyphens, 2-32 chars, e.g. search-app"
    ),
]
TowerName = Annotated[
    str, _matching(NAME_PATTERN, "must be tower names of this file (lowercase), e.g. vision")
]
MediaType = Annotated[str, _matching(MEDIA_TYPE_PATTERN, "must be a media type such as image/jpeg")]
StageName = Annotated[
    str,
    _matching(r"^[A-Za-z0-9_]{1,128}$", "must be letters, digits or underscores, e.g. v1"),
]
WebAclArn = Annotated[
    str,
    _matching(
        WEB_ACL_ARN_PATTERN,
        "must be a regional WAFv2 web ACL ARN, e.g. "
        "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/NAME/<uuid>, or null",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ApiAuth(StrEnum):
    """How callers authenticate to the REST API."""

    IAM = "iam"  # SigV4-signed requests; grant execute-api:Invoke to the callers
    API_KEY = "api_key"  # x-api-key header; keys and usage plan created by the stack


class Throttle(_Strict):
    """Steady-state requests per second and burst, for the stage and the usage plan."""

    rate_limit: float = Field(default=50.0, gt=0, le=10000)
    burst_limit: int = Field(default=100, ge=1, le=5000)


class Quota(_Strict):
    """Requests per key per period (API-key auth only)."""

    limit: int = Field(ge=1)
    period: Literal["day", "week", "month"] = "month"


class ApiConfig(_Strict):
    """``api:`` of an environment: an API Gateway REST API in front of the tower endpoints."""

    enabled: bool = False
    auth: ApiAuth = ApiAuth.IAM
    stage_name: StageName = "v1"
    throttle: Throttle = Field(default_factory=Throttle)
    quota: Quota | None = None
    api_keys: list[ConsumerName] = Field(
        default_factory=list,
        description="API-key auth: one key per consumer, all in the usage plan.",
    )
    towers: list[TowerName] | None = Field(
        default=None, description="Towers to expose; default: every tower with an endpoint."
    )
    binary_media_types: list[MediaType] = Field(
        default_factory=lambda: list(DEFAULT_BINARY_MEDIA_TYPES)
    )
    execution_log_level: Literal["error", "info"] = "error"
    waf_web_acl_arn: WebAclArn | None = None
    cloudwatch_role: bool = Field(
        default=True,
        description="Set the account's API Gateway CloudWatch Logs role (one per account and region).",
    )

    @_model_validator(mode="after")
    def _auth_rules(self) -> Self:
        if self.auth is ApiAuth.API_KEY and not self.api_keys:
            raise ValueError(
                "auth api_key needs at least one consumer in api_keys, e.g. api_keys: [search-app]"
            )
        if self.auth is ApiAuth.IAM and (self.api_keys or self.quota):
            raise ValueError(
                "api_keys and quota only apply to auth api_key: remove them or set auth: api_key"
            )
        return self


def invokable(tower: Any) -> bool:
    """A tower ``InvokeEndpoint`` can call: it has an endpoint and it is not asynchronous
    (async endpoints take ``InvokeEndpointAsync`` with an S3 input location instead)."""
    return bool(tower.deploy_endpoint) and str(getattr(tower, "inference_mode", "")) != "async"


def check_api_towers(api: ApiConfig, towers: Mapping[str, Any] | None) -> None:
    """``api.towers`` must name towers of the same file that ``InvokeEndpoint`` can call."""
    if not api.enabled or towers is None:
        return
    callable_towers = sorted(n for n, t in towers.items() if invokable(t))
    if api.towers is None:
        if not callable_towers:
            raise ValueError(
                "no tower has a real-time or serverless endpoint for the API to call: "
                "set api.enabled: false"
            )
        return
    unknown = [n for n in api.towers if n not in callable_towers]
    if unknown:
        raise ValueError(
            f"api.towers names {unknown}, not towers with a real-time or serverless endpoint "
            f"(these are {callable_towers}): list only those, or remove api.towers to expose all"
        )
    if not api.towers:
        raise ValueError("api.towers is empty: list at least one tower or set api.enabled: false")


def api_towers(config: EnvironmentConfig) -> list[str]:
    """The towers the API exposes, in config order."""
    names = [n for n, t in config.towers.items() if invokable(t)]
    if config.api.towers is None:
        return names
    return [n for n in names if n in config.api.towers]


# --- pipeline ---------------------------------------------------------------------------


class PipelineConfig(_Strict):
    """``config/pipeline.yaml``: the self-mutating delivery pipeline in the tooling account."""

    project: Annotated[str, StringConstraints(pattern=NAME_PATTERN)] = "hf-towers"
    tooling_account: Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
    tooling_region: str = Field(description="Region of the pipeline, e.g. us-east-1.")
    repository: Annotated[str, StringConstraints(pattern=REPOSITORY_PATTERN)]
    branch: Annotated[str, StringConstraints(min_length=1, max_length=255)] = "main"
    connection_arn: Annotated[str, StringConstraints(pattern=CONNECTION_ARN_PATTERN)]
    environments: list[Annotated[str, StringConstraints(pattern=r"^[\w./-]+\.ya?ml$")]] = Field(
        min_length=1, description="Environment config files, deployed in this order."
    )
    smoke_test: bool = True

    @field_validator("tooling_region")
    @classmethod
    def _real_region(cls, value: str) -> str:
        return check_region(value, "codepipeline", "CodePipeline")

    @_model_validator(mode="after")
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


def _format_errors(source: str, data: Mapping[str, Any], exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = ".".join(str(p) for p in loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            lines.append(f"{source}: {path}: unknown key: remove it or check its spelling")
            continue
        if error["type"] == "missing":
            lines.append(f"{source}: {path}: required key is missing: add it")
            continue
        value: Any = data
        found = True
        for part in loc:
            if (isinstance(value, Mapping) and part in value) or (
                isinstance(value, list) and isinstance(part, int) and part < len(value)
            ):
                value = value[part]  # type: ignore[index]
            else:
                found = False
                break
        named = [str(p) for p in loc if isinstance(p, str)]
        hint = PIPELINE_HINTS.get(named[-1]) if named else None
        message = hint or str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{source}: {path}{f' = {value!r}' if found else ''}: {message}")
    return "invalid pipeline configuration:\n  " + "\n  ".join(lines)


def parse_pipeline_config(data: Any, source: str) -> PipelineConfig:
    """Validate already-loaded YAML data of a pipeline config."""
    if not isinstance(data, Mapping):
        raise PipelineConfigError(
            f"{source}: the file must hold a mapping (tooling_account, repository, environments, ...)"
        )
    try:
        return PipelineConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise PipelineConfigError(_format_errors(source, data, exc)) from None


def load_pipeline_config(path: Path) -> PipelineConfig:
    """Read and validate ``config/pipeline.yaml``."""
    try:
        data = read_yaml(path, what="pipeline config", example="config/pipeline.yaml")
    except YamlFileError as exc:
        raise PipelineConfigError(str(exc)) from None
    return parse_pipeline_config(data, str(path))


def load_pipeline_environments(pipeline: PipelineConfig, base_dir: Path) -> list[EnvironmentConfig]:
    """Load every environment file of ``pipeline`` (relative to ``base_dir``), in order.

    Each must name its account (a stage deploys into a fixed account), belong to the pipeline's
    project, and have an environment name of its own.
    """
    from hf_towers.config.loader import ConfigError, load_config

    configs: list[EnvironmentConfig] = []
    problems: list[str] = []
    for file in pipeline.environments:
        try:
            config = load_config(base_dir / file)
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
