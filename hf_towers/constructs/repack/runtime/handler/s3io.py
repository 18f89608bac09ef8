"""S3 access: the client, streamed reads that survive the network, and multipart uploads.

The endpoint comes from boto3's defaults (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` are
honoured natively), which is how tests point the handler at a local S3 server.

Every failure raised from here reads ``s3://bucket/key: Operation (detail): cause`` (``S3Error``,
a ``RepackError``), so a FAILED reason always names the object and the call that failed.
"""

from __future__ import annotations

import http.client
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]
from botocore.exceptions import (  # type: ignore[import-untyped,unused-ignore]
    BotoCoreError,
    ClientError,
)

from .errors import RepackError

LOG = logging.getLogger(__name__)
READ_CHUNK = 256 * 1024
S3Client = Any

CONNECT_TIMEOUT = float(os.environ.get("REPACK_S3_CONNECT_TIMEOUT", "10"))
READ_TIMEOUT = float(os.environ.get("REPACK_S3_READ_TIMEOUT", "20"))
"""Seconds without a byte before a read is abandoned (botocore's default is 60 s).

A stalled source read costs at most ``READ_ATTEMPTS`` such waits plus the backoff, which stays
inside the handler's 90 s margin. ``connect_timeout``/``read_timeout`` are botocore ``Config``
options: https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
"""
COPY_READ_TIMEOUT = 300.0
"""UploadPartCopy answers only once S3 has copied the range (up to 5 GiB): a longer wait."""
READ_ATTEMPTS = 4
"""Consecutive failed attempts (no byte received in between) before a streamed read gives up."""
RANGE_PIECE = 8 * 1024 * 1024
"""Bytes per ranged GET of ``read_ranges``."""
RANGE_WORKERS = 4
"""Concurrent ranged GETs of ``read_ranges``."""
RANGES_FROM = 64 * 1024 * 1024
"""``read_ranges`` reads less than this as one stream: the read-ahead (up to ``RANGE_WORKERS``
pieces) that a checkpoint stop or a refusal discards stays small next to what was read."""
BACKOFF = float(os.environ.get("REPACK_S3_BACKOFF", "1"))
"""First retry delay of a streamed read in seconds, doubled on each consecutive failure."""

RETRYABLE = ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "500", "503")
"""S3 error codes a streamed read retries itself (its client has botocore's retries off)."""
_STREAM_ERRORS: tuple[type[BaseException], ...] = (
    BotoCoreError,  # ReadTimeoutError, ResponseStreamingError, IncompleteReadError, ...
    http.client.HTTPException,  # IncompleteRead
    OSError,  # ConnectionResetError, TimeoutError
)
try:  # urllib3 is botocore's transport; its errors can escape StreamingBody.read
    from urllib3.exceptions import HTTPError as _Urllib3Error

    _STREAM_ERRORS = (*_STREAM_ERRORS, _Urllib3Error)
except ImportError:  # pragma: no cover - botocore always ships with urllib3
    pass


class S3Error(RepackError):
    """An S3 call that failed: ``s3://bucket/key: Operation (detail): cause``; ``code`` is S3's."""

    def __init__(self, where: str, operation: str, cause: str, *, code: str = "") -> None:
        super().__init__(where, f"{operation}: {cause}")
        self.operation = operation
        self.code = code


def _config(read_timeout: float) -> Any:
    return Config(
        max_pool_connections=32,
        retries={"max_attempts": 8, "mode": "adaptive"},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=read_timeout,
    )


def client(*, read_timeout: float | None = None) -> S3Client:
    """An S3 client (pool sized for parallel part copies) whose failures raise ``S3Error``."""
    timeout = READ_TIMEOUT if read_timeout is None else read_timeout
    return NamedClient(boto3.client("s3", config=_config(timeout)))


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def error_code(exc: BaseException) -> str:
    if isinstance(exc, S3Error):
        return exc.code
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def describe(exc: BaseException) -> str:
    """Human wording of an S3 error for a FAILED reason."""
    if isinstance(exc, S3Error):
        return exc.problem
    if not isinstance(exc, ClientError):
        return str(exc) or type(exc).__name__
    code = error_code(exc)
    if code in ("NoSuchBucket",):
        return "bucket does not exist"
    if code in ("NoSuchKey", "404", "NotFound"):
        return "object does not exist"
    if code in ("AccessDenied", "403", "Forbidden"):
        return "access denied"
    if code in ("PreconditionFailed", "412"):
        return "object changed while being read"
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return f"S3 error {code or exc}" + (f" ({message})" if message and code else "")


def _detail(kwargs: dict[str, Any]) -> str:
    bits = []
    if "PartNumber" in kwargs:
        bits.append(f"part {kwargs['PartNumber']}")
    for name in ("Range", "CopySourceRange"):
        if name in kwargs:
            bits.append(str(kwargs[name]).replace("=", " "))
    return f" ({', '.join(bits)})" if bits else ""


def _where(kwargs: dict[str, Any]) -> str:
    return uri(str(kwargs.get("Bucket", "")), str(kwargs.get("Key", kwargs.get("Prefix", ""))))


class NamedClient:
    """A boto3 S3 client whose failures raise ``S3Error`` naming the object and the operation."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.meta = raw.meta
        self._reader: Any = None

    @property
    def reader(self) -> Any:
        """A plain client without botocore's own retries, for ``read_chunks`` (which retries
        from the byte it reached: with botocore's 8 attempts a stall would cost 8 read timeouts
        per attempt)."""
        if self._reader is None:
            config = _config(self.raw.meta.config.read_timeout).merge(
                Config(retries={"total_max_attempts": 1})
            )
            self._reader = boto3.client("s3", config=config)
        return self._reader

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.raw, name)
        operation = self.raw.meta.method_to_api_mapping.get(name)
        if operation is None or not callable(method):
            return method

        def call(**kwargs: Any) -> Any:
            try:
                return method(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise S3Error(
                    _where(kwargs),
                    operation + _detail(kwargs),
                    describe(exc),
                    code=error_code(exc),
                ) from exc

        return call

    def get_paginator(self, name: str) -> Any:
        return _NamedPaginator(
            self.raw.get_paginator(name), self.raw.meta.method_to_api_mapping[name]
        )


class _NamedPaginator:
    def __init__(self, paginator: Any, operation: str) -> None:
        self._paginator = paginator
        self._operation = operation

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        try:
            yield from self._paginator.paginate(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise S3Error(
                _where(kwargs), self._operation, describe(exc), code=error_code(exc)
            ) from exc


NOT_FOUND = ("404", "NotFound", "NoSuchKey")


def head(s3: S3Client, bucket: str, key: str) -> dict[str, Any]:
    """HeadObject, with bad-input errors turned into ``RepackError``."""
    try:
        response: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
    except (ClientError, S3Error) as exc:
        if error_code(exc) in NOT_FOUND:
            # HEAD has no body: tell a missing bucket from a missing key.
            try:
                s3.head_bucket(Bucket=bucket)
            except (ClientError, S3Error) as bexc:
                if error_code(bexc) in ("404", "NoSuchBucket", "NotFound"):
                    raise S3Error(
                        uri(bucket, key), "HeadBucket", "bucket does not exist", code="NoSuchBucket"
                    ) from exc
        if isinstance(exc, S3Error):
            raise
        raise S3Error(uri(bucket, key), "HeadObject", describe(exc), code=error_code(exc)) from exc
    return response


def exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except (ClientError, S3Error) as exc:
        if error_code(exc) in NOT_FOUND:
            return False
        raise
    return True


def read_chunks(
    s3: S3Client,
    bucket: str,
    key: str,
    *,
    etag: str | None = None,
    start: int = 0,
    end: int | None = None,
    chunk: int = READ_CHUNK,
    attempts: int = READ_ATTEMPTS,
) -> Iterator[bytes]:
    """Stream an object from byte ``start`` (to byte ``end``, inclusive, if given) in chunks,
    resuming after a reset or a stall.

    ``etag`` pins the version that was validated (``If-Match``); a resumed read asks for
    ``Range: bytes=<next byte>-`` of that same version, so the bytes join up exactly, and an
    object replaced meanwhile fails with 412 (a distinct error) instead of mixing versions.
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html (Range, If-Match)
    After ``attempts`` consecutive failures without a byte received in between, the read fails
    with ``s3://bucket/key: GetObject (bytes N-): <cause>``.
    """
    where = uri(bucket, key)
    position = start
    failures = 0
    raw: Any = getattr(s3, "reader", s3)  # errors are retried here, from the position reached
    while True:
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag:
            args["IfMatch"] = etag
        if position or end is not None:
            args["Range"] = f"bytes={position}-{'' if end is None else end}"
        operation = f"GetObject (bytes {position}-{'' if end is None else end})"
        body = None
        try:
            body = raw.get_object(**args)["Body"]
            for data in body.iter_chunks(chunk):
                if data:
                    position += len(data)
                    failures = 0
                    yield data
            if end is not None and position != end + 1:
                raise http.client.IncompleteRead(b"", end + 1 - position)
            return
        except ClientError as exc:
            code = error_code(exc)
            if code in RETRYABLE and failures + 1 < attempts:
                failures += 1
                LOG.warning("%s: %s: %s; retrying", where, operation, describe(exc))
                time.sleep(BACKOFF * 2 ** (failures - 1))
                continue
            if code in ("PreconditionFailed", "412"):
                raise S3Error(
                    where,
                    operation,
                    f"the object changed since it was validated (ETag is no longer {etag})",
                    code=code,
                ) from exc
            raise S3Error(where, operation, describe(exc), code=code) from exc
        except _STREAM_ERRORS as exc:
            failures += 1
            cause = f"{type(exc).__name__}: {exc}"
            if failures >= attempts:
                raise S3Error(
                    where, operation, f"{cause} (gave up after {failures} attempts)"
                ) from exc
            delay = BACKOFF * 2 ** (failures - 1)
            LOG.warning("%s: %s: %s; resuming in %.1f s", where, operation, cause, delay)
            time.sleep(delay)
        finally:
            if body is not None:
                body.close()


def read_ranges(
    s3: S3Client,
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str | None = None,
    start: int = 0,
    piece: int = RANGE_PIECE,
    workers: int = RANGE_WORKERS,
) -> Generator[bytes, None, None]:
    """``read_chunks`` of the object (``size`` bytes) from ``start``, fetched as ``workers``
    concurrent ranged GETs of ``piece`` bytes and yielded in order (at most ``workers`` pieces in
    memory). One S3 connection delivers on the order of 100 MB/s; "make concurrent requests for
    byte ranges of an object at the granularity of 8-16 MB" to go beyond it
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance-guidelines.html).
    Each range is a ``read_chunks`` of its own: pinned to ``etag``, resumed after a reset or a
    stall. Reads under ``RANGES_FROM`` (or two pieces) are one plain stream."""
    if size - start < max(2 * piece, RANGES_FROM):
        yield from read_chunks(s3, bucket, key, etag=etag, start=start)
        return

    def fetch(first: int, last: int) -> list[bytes]:
        return list(read_chunks(s3, bucket, key, etag=etag, start=first, end=last))

    ranges = iter([(a, min(a + piece, size) - 1) for a in range(start, size, piece)])
    pool = ThreadPoolExecutor(workers)
    pending: deque[Future[list[bytes]]] = deque()
    try:
        for first, last in itertools.islice(ranges, workers):
            pending.append(pool.submit(fetch, first, last))
        while pending:
            chunks = pending.popleft().result()
            following = next(ranges, None)
            if following is not None:
                pending.append(pool.submit(fetch, *following))
            while chunks:
                yield chunks.pop(0)
    finally:  # closed early (a checkpoint, a refusal): start nothing more
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def sse(kms_key: str) -> dict[str, str]:
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key}


class Multipart:
    """One multipart upload: create or resume, add parts, complete; ``abort()`` on failure."""

    def __init__(self, s3: S3Client, bucket: str, key: str, upload_id: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.upload_id = upload_id

    @classmethod
    def create(cls, s3: S3Client, bucket: str, key: str, *, kms_key: str) -> Multipart:
        response = s3.create_multipart_upload(Bucket=bucket, Key=key, **sse(kms_key))
        return cls(s3, bucket, key, str(response["UploadId"]))

    @classmethod
    def find(cls, s3: S3Client, bucket: str, key: str, upload_id: str) -> Multipart | None:
        """The upload ``upload_id`` if it is still open."""
        try:
            s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=1)
        except (ClientError, S3Error) as exc:
            if error_code(exc) in ("NoSuchUpload", "404"):
                return None
            raise
        return cls(s3, bucket, key, upload_id)

    def parts(self) -> dict[int, str]:
        """Uploaded part numbers -> ETag."""
        done: dict[int, str] = {}
        paginator = self.s3.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id):
            for part in page.get("Parts", []):
                done[int(part["PartNumber"])] = str(part["ETag"])
        return done

    def upload(self, number: int, data: bytes | bytearray) -> str:
        response = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        return str(response["ETag"])

    def copy(self, number: int, bucket: str, key: str, first: int, last: int, *, etag: str) -> str:
        # https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPartCopy.html
        response = self.s3.upload_part_copy(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            CopySource={"Bucket": bucket, "Key": key},
            CopySourceRange=f"bytes={first}-{last}",
            CopySourceIfMatch=etag,
        )
        return str(response["CopyPartResult"]["ETag"])

    def complete(self, parts: dict[int, str]) -> None:
        self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": parts[n]} for n in sorted(parts)]},
        )

    def abort(self) -> None:
        try:
            self.s3.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
        except (ClientError, S3Error) as exc:
            if error_code(exc) not in ("NoSuchUpload", "404"):
                raise


def abort_all(s3: S3Client, bucket: str, prefix: str) -> int:
    """Abort every open multipart upload under ``prefix``; returns how many."""
    count = 0
    paginator = s3.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            Multipart(s3, bucket, str(upload["Key"]), str(upload["UploadId"])).abort()
            count += 1
    return count


def delete_prefix(s3: S3Client, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix``; returns how many."""
    count = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            count += len(keys)
    return count


def list_objects(s3: S3Client, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    paginator = s3.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])
    except ClientError as exc:
        raise S3Error(
            uri(bucket, prefix), "ListObjectsV2", describe(exc), code=error_code(exc)
        ) from exc
