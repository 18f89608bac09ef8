"""Ask the SageMaker Model Registry what a tower's ``model_package`` means, at resolve time only.

Used by ``hf-towers resolve-packages`` (and the pipeline's synth step before ``cdk synth``),
never during synthesis. Calls only ``ListModelPackages`` and ``DescribeModelPackage``: the build
step's role is allowed exactly those, on the configured groups' packages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from hf_towers.config.models import EnvironmentConfig
from hf_towers.config.packages import (
    LATEST_APPROVED,
    ModelPackage,
    ResolvedPackage,
    ResolvedPackages,
)

APPROVED: Literal["Approved"] = "Approved"


class RegistryError(RuntimeError):
    """The registry has no package a tower can deploy; the message names the tower and the fix."""


def _summaries(client: Any, group: str, **filters: Any) -> list[dict[str, Any]]:
    """Every ``ModelPackageSummary`` of ``group`` (all pages), newest first."""
    summaries: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageType": "Versioned",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        **filters,
    }
    while True:
        page = client.list_model_packages(**kwargs)
        summaries += page.get("ModelPackageSummaryList", [])
        token = page.get("NextToken")
        if not token:
            return summaries
        kwargs["NextToken"] = token


def resolve_package(client: Any, tower: str, ref: ModelPackage, now: datetime) -> ResolvedPackage:
    """The package version ``ref`` names, which must be Approved and have one ModelDataUrl.

    ``latest-approved``: ListModelPackages with ``ModelApprovalStatus=Approved``, sorted by
    creation time, newest first (API_ListModelPackages). A pinned version: that version of the
    group, refused unless Approved.
    """
    where = f"towers.{tower}.model_package (group {ref.group!r})"
    if ref.version == LATEST_APPROVED:
        approved = _summaries(client, ref.group, ModelApprovalStatus=APPROVED)
        if not approved:
            raise RegistryError(
                f"{where}: no Approved package version in the group: approve one (SageMaker "
                "Studio, or `aws sagemaker update-model-package --model-approval-status "
                "Approved`), or pin model_package.version"
            )
        arn = approved[0]["ModelPackageArn"]
    else:
        found = [
            s for s in _summaries(client, ref.group) if s.get("ModelPackageVersion") == ref.version
        ]
        if not found:
            raise RegistryError(
                f"{where}: version {ref.version} does not exist: pin an existing version or use "
                f"{LATEST_APPROVED}"
            )
        arn = found[0]["ModelPackageArn"]
    package = client.describe_model_package(ModelPackageName=arn)
    status = package.get("ModelApprovalStatus")
    version = package.get("ModelPackageVersion")
    if status != APPROVED:
        raise RegistryError(
            f"{where}: version {version} is {status}, not Approved: approve it before it deploys"
        )
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    urls = [c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")]
    if len(urls) != 1:
        raise RegistryError(
            f"{where}: version {version} has {len(urls)} container ModelDataUrls; a tower "
            "deploys exactly one model.tar.gz: register the package with one container"
        )
    return ResolvedPackage(
        group=ref.group,
        version=int(version),
        requested=ref.version,
        model_package_arn=package["ModelPackageArn"],
        model_data_url=urls[0],
        approval_status=APPROVED,
        resolved_at=now,
    )


def resolve_environment(
    config: EnvironmentConfig,
    client: Any,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC).replace(microsecond=0),
    previous: ResolvedPackages | None = None,
) -> ResolvedPackages:
    """Every ``model_package`` tower of ``config`` resolved against the registry.

    An entry that resolves to the same package ARN as in ``previous`` keeps its ``resolved_at``,
    so re-running without a new approval rewrites the file byte for byte (no spurious diff).
    """
    towers: dict[str, ResolvedPackage] = {}
    problems: list[str] = []
    for name, tower in config.towers.items():
        if tower.model_package is None:
            continue
        try:
            entry = resolve_package(client, name, tower.model_package, now())
        except RegistryError as exc:
            problems.append(str(exc))
            continue
        old = previous.towers.get(name) if previous is not None else None
        if old is not None and old.model_copy(update={"resolved_at": entry.resolved_at}) == entry:
            entry = old
        towers[name] = entry
    if problems:
        raise RegistryError("\n".join(problems))
    return ResolvedPackages(environment=config.environment, towers=towers)
