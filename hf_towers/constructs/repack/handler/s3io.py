"""S3 access: the client, streamed reads, and multipart uploads that never stay open on failure.

The endpoint comes from boto3's defaults (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` are
honoured natively), which is how tests point the handler at a local S3 server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]
from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

from .errors import RepackError

READ_CHUNK = 1024 * 1024
S3Client = Any


def client() -> S3Client:
    """An S3 client with a connection pool sized for parallel part copies."""
    return boto3.client(
        "s3",
        config=Config(max_pool_connections=32, retries={"max_attempts": 8, "mode": "adaptive"}),
    )


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe(exc: ClientError) -> str:
    """Human wording of an S3 error for a FAILED reason."""
    code = error_code(exc)
    if code in ("NoSuchBucket",):
        return "bucket does not exist"
    if code in ("NoSuchKey", "404", "NotFound"):
        return "object does not exist"
    if code in ("AccessDenied", "403", "Forbidden"):
        return "access denied"
    if code in ("PreconditionFailed", "412"):
        return "object changed while being read"
    return f"S3 error {code or exc}"


def head(s3: S3Client, bucket: str, key: str) -> dict[str, Any]:
    """HeadObject, with bad-input errors turned into ``RepackError``."""
    try:
        response: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NotFound", "NoSuchKey"):
            # HEAD has no body: tell a missing bucket from a missing key.
            try:
                s3.head_bucket(Bucket=bucket)
            except ClientError as bexc:
                if error_code(bexc) in ("404", "NoSuchBucket", "NotFound"):
                    raise RepackError(uri(bucket, key), "bucket does not exist") from exc
        raise RepackError(uri(bucket, key), describe(exc)) from exc
    return response


def exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NotFound", "NoSuchKey"):
            return False
        raise
    return True


def read_chunks(
    s3: S3Client, bucket: str, key: str, *, etag: str | None = None, chunk: int = READ_CHUNK
) -> Iterator[bytes]:
    """Stream an object in chunks; ``etag`` pins the version that was validated."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if etag:
        args["IfMatch"] = etag
    try:
        body = s3.get_object(**args)["Body"]
    except ClientError as exc:
        raise RepackError(uri(bucket, key), describe(exc)) from exc
    try:
        yield from body.iter_chunks(chunk)
    finally:
        body.close()


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
        except ClientError as exc:
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
        except ClientError as exc:
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
        raise RepackError(uri(bucket, prefix), describe(exc)) from exc
