"""``api:`` of an environment file: the optional REST API in front of the tower endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import Field, model_validator

from hf_towers.config.base import NAME_PATTERN, Strict, matching

if TYPE_CHECKING:
    from hf_towers.config.models import Tower

WEB_ACL_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/[A-Za-z0-9_-]{1,128}/[0-9a-f-]{36}$"
)
MEDIA_TYPE_PATTERN = r"^[a-z]+/[a-z0-9.+*-]+$"

# What the vision tower accepts as raw bytes, and the embeddings' binary answer type.
DEFAULT_BINARY_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "application/x-npy")


ConsumerName = Annotated[
    str,
    matching(
        NAME_PATTERN, "must be lowercase letters, digits and hyphens, 2-32 chars, e.g. search-app"
    ),
]
TowerName = Annotated[
    str, matching(NAME_PATTERN, "must be tower names of this file (lowercase), e.g. vision")
]
MediaType = Annotated[str, matching(MEDIA_TYPE_PATTERN, "must be a media type such as image/jpeg")]
StageName = Annotated[
    str,
    matching(r"^[A-Za-z0-9_]{1,128}$", "must be letters, digits or underscores, e.g. v1"),
]
WebAclArn = Annotated[
    str,
    matching(
        WEB_ACL_ARN_PATTERN,
        "must be a regional WAFv2 web ACL ARN, e.g. "
        "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/NAME/<uuid>, or null",
    ),
]


class ApiAuth(StrEnum):
    """How callers authenticate to the REST API."""

    IAM = "iam"  # SigV4-signed requests; grant execute-api:Invoke to the callers
    API_KEY = "api_key"  # x-api-key header; keys and usage plan created by the stack


class Throttle(Strict):
    """Steady-state requests per second and burst, for the stage and the usage plan."""

    rate_limit: float = Field(default=50.0, gt=0, le=10000)
    burst_limit: int = Field(default=100, ge=1, le=5000)


class Quota(Strict):
    """Requests per key per period (API-key auth only)."""

    limit: int = Field(ge=1)
    period: Literal["day", "week", "month"] = "month"


class ApiConfig(Strict):
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

    @model_validator(mode="after")
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


def check_api_towers(api: ApiConfig, towers: Mapping[str, Tower] | None) -> None:
    """``api.towers`` must name towers of the same file that ``InvokeEndpoint`` can call."""
    if not api.enabled or towers is None:
        return
    callable_towers = sorted(n for n, t in towers.items() if t.invokable)
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
