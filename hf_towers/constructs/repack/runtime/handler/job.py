"""A repack job: resolved inputs, the content hash that names the output, and its S3 state."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

from . import props
from .codepack import CodeBundle
from .errors import RepackError
from .s3io import S3Client, S3Error, error_code, sse, uri

LOG = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Seconds left before the invocation must return."""

COPY_PART_SIZE = 512 * 1024 * 1024
MAX_COPY_PART = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000


@dataclass(frozen=True)
class Job:
    source_bucket: str
    source_key: str
    source_etag: str
    """ETag of the source object (compressed) or a digest of the source listing (prefix)."""
    source_size: int
    code: CodeBundle
    out_bucket: str
    tower: str
    kms_key: str
    compressed: bool
    max_ratio: float
    part_size: int
    owner: str = ""
    """``<StackId> <LogicalResourceId>`` of the custom resource: part of the content hash, so two
    resources with identical properties (in two stacks, or twice in one) never share an artifact
    and one's Delete cannot remove what the other still uses. Both come with every request:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requests.html
    """
    copy_part_size: int = COPY_PART_SIZE

    @property
    def source_uri(self) -> str:
        return uri(self.source_bucket, self.source_key)

    @property
    def source_is_prefix(self) -> bool:
        return self.source_key.endswith("/") or self.source_key == ""

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (
            props.FORMAT_VERSION,
            self.source_uri,
            self.source_etag,
            self.code.digest,
            "gz" if self.compressed else "prefix",
            str(self.part_size),
            self.owner,
        ):
            h.update(part.encode() + b"\0")
        return h.hexdigest()[:32]

    @property
    def out_key(self) -> str:
        """``<tower>/<hash>/model.tar.gz``, or the prefix ``<tower>/<hash>/`` when uncompressed."""
        base = f"{self.tower}/{self.digest}/"
        return base + "model.tar.gz" if self.compressed else base

    @property
    def out_uri(self) -> str:
        return uri(self.out_bucket, self.out_key)

    @property
    def state_key(self) -> str:
        return state_key(self.tower, self.digest)

    def attributes(self) -> dict[str, str]:
        return {
            props.ATTR_MODEL_DATA_URL: self.out_uri,
            props.ATTR_S3_URI: self.out_uri,
            props.ATTR_KEY: self.out_key,
            props.ATTR_SOURCE_ETAG: self.source_etag,
        }


def state_key(tower: str, digest: str) -> str:
    """Progress of an unfinished job, outside the artifact's own prefix."""
    return f"{tower}/.repack/{digest}.json"


def load_state(s3: S3Client, job: Job) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=job.out_bucket, Key=job.state_key)["Body"].read()
    except (ClientError, S3Error) as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    state: dict[str, Any] = json.loads(body)
    return state


def save_state(s3: S3Client, job: Job, state: dict[str, Any]) -> None:
    s3.put_object(
        Bucket=job.out_bucket,
        Key=job.state_key,
        Body=json.dumps(state, separators=(",", ":")).encode(),
        ContentType="application/json",
        **sse(job.kms_key),
    )


def delete_state(s3: S3Client, job: Job) -> None:
    s3.delete_object(Bucket=job.out_bucket, Key=job.state_key)


def copy_ranges(size: int, part: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges covering ``size`` in at most ``MAX_PARTS - 1`` parts."""
    part = min(max(part, -(-size // (MAX_PARTS - 1))), MAX_COPY_PART)
    return [(start, min(start + part, size) - 1) for start in range(0, size, part)]


def owner_of(event: props.Event) -> str:
    """The owning stack and resource of a custom resource request (empty when absent)."""
    return f"{event.get('StackId', '')} {event.get('LogicalResourceId', '')}".strip()


def fail_after_cleanup(exc: BaseException, *steps: Callable[[], object]) -> NoReturn:
    """Run the cleanup ``steps`` after ``exc``, then raise ``exc`` (the FAILED reason).

    A cleanup step that fails too does not replace the original error: its message is appended
    (``<original>; cleanup also failed: <cause>``).
    """
    failures: list[str] = []
    for step in steps:
        try:
            step()
        except Exception as cleanup_exc:
            LOG.exception("cleanup after %r failed", exc)
            failures.append(str(cleanup_exc) or type(cleanup_exc).__name__)
    if not failures or not isinstance(exc, Exception):
        raise exc
    also = "; cleanup also failed: " + "; ".join(failures)
    if isinstance(exc, RepackError):
        raise RepackError(exc.artifact, exc.problem + also) from exc
    raise RuntimeError(f"{type(exc).__name__}: {exc}{also}") from exc
