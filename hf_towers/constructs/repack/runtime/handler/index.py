"""Entry points of the repack custom resource, for ``aws_cdk.custom_resources.Provider``.

``on_event`` resolves the inputs and names the output (content-addressed physical id, the owning
stack and logical resource id included, so no two resources share an artifact) within seconds; ``is_complete`` does the work, resuming across invocations until done. Delete never
touches the source; it removes the generated artifact unless ``RetainOnDelete`` is ``true``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

from . import compressed, prefix, props
from .codepack import load_zip
from .errors import RepackError, StreamError
from .heap import bound_large_buffers
from .job import Job, owner_of, state_key
from .s3io import S3Client, S3Error, abort_all, client, delete_prefix, describe, head, uri

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
MAX_CODE_ZIP = 64 * 1024 * 1024

# Before any large buffer exists: RSS otherwise grows with the artifact (see heap.py).
bound_large_buffers()


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).lower() == props.TRUE


def _read_code(s3: S3Client, properties: props.ResourceProperties) -> bytes:
    bucket, key = str(properties[props.CODE_BUCKET]), str(properties[props.CODE_KEY])
    where = uri(bucket, key)
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except S3Error:
        raise
    except ClientError as exc:
        raise S3Error(where, "GetObject", describe(exc)) from exc
    if int(response["ContentLength"]) > MAX_CODE_ZIP:
        raise RepackError(where, f"code bundle is larger than {MAX_CODE_ZIP} bytes")
    data: bytes = response["Body"].read()
    return data


def build_job(
    s3: S3Client,
    properties: props.ResourceProperties,
    *,
    pinned_etag: str | None = None,
    owner: str = "",
) -> Job:
    """Resolve the properties into a ``Job`` owned by ``owner``; bad inputs raise ``RepackError``."""
    entry_module = str(properties.get(props.ENTRY_MODULE, props.DEFAULT_ENTRY_MODULE))
    code_where = uri(str(properties[props.CODE_BUCKET]), str(properties[props.CODE_KEY]))
    try:
        code = load_zip(_read_code(s3, properties), entry_module=entry_module)
    except StreamError as exc:
        raise RepackError(code_where, str(exc)) from exc
    bucket, key = str(properties[props.SOURCE_BUCKET]), str(properties[props.SOURCE_KEY])
    is_compressed = _flag(properties.get(props.COMPRESSED), True)
    if key.endswith("/") or not key:
        if is_compressed:
            raise RepackError(uri(bucket, key), "a prefix source needs Compressed=false")
        objects = prefix.source_objects(s3, bucket, key)
        etag, size = prefix.listing_digest(objects, key), sum(int(o["Size"]) for o in objects)
    else:
        response = head(s3, bucket, key)
        etag, size = str(response["ETag"]), int(response["ContentLength"])
        if size == 0:
            raise RepackError(uri(bucket, key), "empty object (not a gzip file)")
    if pinned_etag is not None and etag != pinned_etag:
        raise RepackError(uri(bucket, key), "source changed since this deployment started")
    part_size = int(properties.get(props.PART_SIZE, props.DEFAULT_PART_SIZE))
    return Job(
        source_bucket=bucket,
        source_key=key,
        source_etag=etag,
        source_size=size,
        code=code,
        out_bucket=str(properties[props.OUTPUT_BUCKET]),
        tower=str(properties[props.OUTPUT_PREFIX]).strip("/"),
        kms_key=str(properties[props.KMS_KEY_ARN]),
        compressed=is_compressed,
        max_ratio=float(properties.get(props.MAX_RATIO, props.DEFAULT_MAX_RATIO)),
        part_size=max(part_size, props.MIN_PART_SIZE),
        owner=owner,
    )


def _owned(properties: props.ResourceProperties, physical_id: str) -> tuple[str, str, str] | None:
    """``(bucket, key, digest)`` when ``physical_id`` names an artifact this resource generated."""
    bucket = str(properties[props.OUTPUT_BUCKET])
    tower = re.escape(str(properties[props.OUTPUT_PREFIX]).strip("/"))
    match = re.fullmatch(
        rf"s3://{re.escape(bucket)}/({tower}/([0-9a-f]{{32}})/(?:model\.tar\.gz)?)", physical_id
    )
    return (bucket, match.group(1), match.group(2)) if match else None


def _delete(s3: S3Client, properties: props.ResourceProperties, physical_id: str) -> None:
    owned = _owned(properties, physical_id)
    if owned is None:
        LOG.info("nothing generated under %s; leaving it alone", physical_id)
        return
    bucket, key, digest = owned
    tower = str(properties[props.OUTPUT_PREFIX]).strip("/")
    artifact_dir = f"{tower}/{digest}/"
    abort_all(s3, bucket, artifact_dir)
    for extra in (state_key(tower, digest), f"{tower}/.repack/{digest}.done"):
        s3.delete_object(Bucket=bucket, Key=extra)
    if _flag(properties.get(props.RETAIN_ON_DELETE), True):
        LOG.info("retaining %s", physical_id)
        return
    if key.endswith("/"):
        delete_prefix(s3, bucket, artifact_dir)
    else:
        s3.delete_object(Bucket=bucket, Key=key)


def on_event(event: props.Event, context: Any) -> dict[str, Any]:
    """Create/Update: name the output (physical id) and return its attributes; Delete: clean up."""
    LOG.info("%s %s", event["RequestType"], event.get("PhysicalResourceId"))
    s3 = client()
    properties = event["ResourceProperties"]
    if event["RequestType"] == "Delete":
        _delete(s3, properties, str(event["PhysicalResourceId"]))
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    job = build_job(s3, properties, owner=owner_of(event))
    return {"PhysicalResourceId": job.out_uri, "Data": job.attributes()}


def is_complete(event: props.Event, context: Any) -> dict[str, Any]:
    """Do (part of) the work; ``IsComplete`` once the artifact exists."""
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    s3 = client()
    pinned = event.get("Data", {}).get(props.ATTR_SOURCE_ETAG)
    job = build_job(s3, event["ResourceProperties"], pinned_etag=pinned, owner=owner_of(event))
    if job.out_uri != event.get("PhysicalResourceId"):
        raise RepackError(job.source_uri, "inputs changed since this deployment started")

    def seconds_left() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000.0

    run = compressed.run if job.compressed else prefix.run
    if not run(s3, job, seconds_left):
        LOG.info("%s: not finished, resuming in the next invocation", job.out_uri)
        return {"IsComplete": False}
    return {"IsComplete": True, "Data": job.attributes()}
