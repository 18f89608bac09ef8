"""Registry-backed towers: ``model_package: {group, version}`` and its resolved file.

Synth makes no AWS calls. ``hf-towers resolve-packages --config FILE`` asks the SageMaker Model
Registry which package version a tower's ``model_package`` means (``latest-approved`` or a pinned
version) and writes the answer to ``config/resolved/<environment>.packages.json``, a committed
file that config loading reads. This is the pattern the CDK Developer Guide gives for values
that have no context provider: a separate script fetches the value and writes it to a file that
the app reads, run only when the stored value should be refreshed, so that the same inputs keep
synthesizing the same templates, as committed ``cdk.context.json`` lookups do ("Context values
and the AWS CDK", https://docs.aws.amazon.com/cdk/v2/guide/context.html, and "Best practices",
https://docs.aws.amazon.com/cdk/v2/guide/best-practices.html#best-practices-apps).
A new approved version therefore reaches
a template only through a change of that file, which ``hf-towers diff`` reports like any other.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, StringConstraints, ValidationError

from hf_towers.config.base import NAME_PATTERN, S3_URI_PATTERN, Strict, format_errors

RESOLVED_DIR = Path(__file__).resolve().parents[2] / "config" / "resolved"
"""Where ``resolve-packages`` writes and config loading reads ``<environment>.packages.json``."""
LATEST_APPROVED: Literal["latest-approved"] = "latest-approved"
# ModelPackageGroupName (CreateModelPackageGroup): 1-63 chars, alphanumerics and hyphens.
GROUP_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
PACKAGE_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[a-zA-Z0-9-]{1,63}/\d+$"
)
RESOLVE_COMMAND = "hf-towers resolve-packages --config {config}"

GroupName = Annotated[str, StringConstraints(pattern=GROUP_PATTERN)]


class ResolvedPackage(Strict):
    """One tower's entry of the resolved file: what ``resolve-packages`` found in the registry."""

    group: GroupName
    version: int = Field(ge=1, description="ModelPackageVersion that deploys.")
    requested: Literal["latest-approved"] | Annotated[int, Field(ge=1)] = Field(
        description="The tower's model_package.version when it was resolved."
    )
    model_package_arn: Annotated[str, StringConstraints(pattern=PACKAGE_ARN_PATTERN)]
    model_data_url: Annotated[str, StringConstraints(pattern=S3_URI_PATTERN)] = Field(
        description="The package's InferenceSpecification.Containers[0].ModelDataUrl."
    )
    approval_status: Literal["Approved"]
    resolved_at: datetime


class ResolvedPackages(Strict):
    """``config/resolved/<environment>.packages.json``."""

    environment: Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
    towers: dict[Annotated[str, StringConstraints(pattern=NAME_PATTERN)], ResolvedPackage]

    def dumps(self) -> str:
        """The file's text: sorted keys, two-space indent, a final newline (stable diffs)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


class ModelPackage(Strict):
    """``towers.<name>.model_package``: deploy a registered, approved package version."""

    group: GroupName = Field(description="Model Package Group name, e.g. hf-towers-dual-encoder.")
    version: Literal["latest-approved"] | Annotated[int, Field(ge=1)] = Field(
        default=LATEST_APPROVED,
        description="'latest-approved' (newest Approved version at resolve time) or a version number.",
    )
    _resolved: ResolvedPackage | None = PrivateAttr(default=None)

    @property
    def resolved(self) -> ResolvedPackage:
        """The entry of the resolved file; config loading guarantees it for loaded configs."""
        if self._resolved is None:
            raise ValueError(
                f"model_package {self.group}/{self.version} is not resolved: load the config "
                "with load_config/parse_config, which read the resolved file"
            )
        return self._resolved

    def bound(self, entry: ResolvedPackage) -> ModelPackage:
        """A copy carrying ``entry`` (checked by ``check_entry``)."""
        copy = self.model_copy()
        copy._resolved = entry
        return copy

    def check_entry(self, entry: ResolvedPackage | None) -> str | None:
        """Why ``entry`` does not answer this reference (None when it does)."""
        if entry is None:
            return "has no entry in the resolved file"
        if entry.group != self.group:
            return f"was resolved for group {entry.group!r}, not {self.group!r}"
        if entry.requested != self.version:
            return f"was resolved for version {entry.requested!r}, not {self.version!r}"
        if isinstance(self.version, int) and entry.version != self.version:
            return f"was resolved to version {entry.version}, not the pinned {self.version}"
        return None


def resolved_path(environment: str, resolved_dir: Path = RESOLVED_DIR) -> Path:
    """``<resolved_dir>/<environment>.packages.json``."""
    return resolved_dir / f"{environment}.packages.json"


def read_resolved(path: Path, error: type[ValueError]) -> ResolvedPackages | None:
    """The resolved file at ``path`` (None when there is none); ``error`` for a bad one."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(
            f"{path}: not a readable JSON file ({exc}): run resolve-packages again to rewrite it"
        ) from None
    try:
        return ResolvedPackages.model_validate(data)
    except ValidationError as exc:
        raise error(
            format_errors("invalid resolved packages file", str(path), data, exc, {})
            + "\n  (written by `hf-towers resolve-packages`: run it again rather than editing)"
        ) from None
