"""A repack job: resolved inputs, the content hash that names the output, and its S3 state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

from . import props
from .codepack import CodeBundle
from .s3io import S3Client, error_code, sse, uri

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
    except ClientError as exc:
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
