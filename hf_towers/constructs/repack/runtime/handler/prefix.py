"""Repack into an uncompressed S3 prefix: ``<tower>/<hash>/`` with the code under ``code/``.

A prefix source is copied object by object server-side (CopyObject, or UploadPartCopy above
5 GiB). A ``.tar.gz`` source is validated, then extracted by streaming each file into its own
object. Either way the source's own ``code/`` is left out and the new code written last; a
``<tower>/.repack/<hash>.done`` marker says the prefix is complete. Objects already present are
skipped, so an invocation that runs out of time is resumed by the next one.

A ``.tar.gz`` source is read from a checkpoint (``source.Checkpoint``) kept in the job's state
object: the validation read resumes where it stopped, and so does the extraction, at the header
of the first file not yet written (with the files and links seen so far).
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from typing import Any

from .compressed import MARGIN
from .errors import RepackError
from .job import (
    MAX_COPY_PART,
    Clock,
    Job,
    copy_ranges,
    delete_state,
    fail_after_cleanup,
    load_state,
    save_state,
)
from .s3io import COPY_READ_TIMEOUT, Multipart, S3Client, client, exists, list_objects, sse
from .source import Source
from .tarscan import End, Member
from .validate import in_code_dir, normalize


def done_key(job: Job) -> str:
    return f"{job.tower}/.repack/{job.digest}.done"


def listing_digest(objects: list[dict[str, Any]], prefix: str) -> str:
    """ETag-like digest of a prefix: keys, sizes and ETags of every object under it."""
    h = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: str(o["Key"])):
        h.update(f"{obj['Key'][len(prefix) :]}\0{obj['Size']}\0{obj['ETag']}\n".encode())
    return h.hexdigest()


def source_objects(s3: S3Client, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Objects under a source prefix, validated (non-empty, no ``..``); raises ``RepackError``."""
    objects = [o for o in list_objects(s3, bucket, prefix) if not str(o["Key"]).endswith("/")]
    where = f"s3://{bucket}/{prefix}"
    if not objects:
        raise RepackError(where, "empty prefix (no objects)")
    for obj in objects:
        rel = str(obj["Key"])[len(prefix) :]
        if rel.startswith("/") or ".." in rel.split("/"):
            raise RepackError(where, f"object {obj['Key']!r} has a path with '..' or '/'")
    return objects


def run(s3: S3Client, job: Job, seconds_left: Clock) -> bool:
    """Advance the job; True once the prefix is complete."""
    if exists(s3, job.out_bucket, done_key(job)):
        return True
    present = {str(o["Key"]): int(o["Size"]) for o in list_objects(s3, job.out_bucket, job.out_key)}
    if job.source_is_prefix:
        finished = _copy_prefix(s3, job, present, seconds_left)
    else:
        finished = _extract(s3, job, present, seconds_left)
    if not finished:
        return False
    for f in job.code.files:
        s3.put_object(
            Bucket=job.out_bucket,
            Key=f"{job.out_key}code/{f.path}",
            Body=f.data,
            **sse(job.kms_key),
        )
    s3.put_object(Bucket=job.out_bucket, Key=done_key(job), Body=b"", **sse(job.kms_key))
    if not job.source_is_prefix:
        delete_state(s3, job)
    return True


def _copy_object(s3: S3Client, job: Job, src_key: str, size: int, etag: str, dst_key: str) -> None:
    if size <= MAX_COPY_PART:
        s3.copy_object(
            Bucket=job.out_bucket,
            Key=dst_key,
            CopySource={"Bucket": job.source_bucket, "Key": src_key},
            CopySourceIfMatch=etag,
            **sse(job.kms_key),
        )
        return
    upload = Multipart.create(s3, job.out_bucket, dst_key, kms_key=job.kms_key)
    try:
        parts = {
            n: upload.copy(n, job.source_bucket, src_key, first, last, etag=etag)
            for n, (first, last) in enumerate(copy_ranges(size, job.copy_part_size), start=1)
        }
        upload.complete(parts)
    except BaseException as exc:
        fail_after_cleanup(exc, upload.abort)


def _copy_prefix(s3: S3Client, job: Job, present: dict[str, int], seconds_left: Clock) -> bool:
    objects = source_objects(s3, job.source_bucket, job.source_key)
    # S3 answers a copy once it is done (up to 5 GiB): a longer read timeout than for reads.
    s3 = client(read_timeout=COPY_READ_TIMEOUT)
    for obj in objects:
        rel = normalize(str(obj["Key"])[len(job.source_key) :])
        dst = job.out_key + rel
        if in_code_dir(rel) or present.get(dst) == int(obj["Size"]):
            continue
        if seconds_left() < MARGIN:
            return False
        _copy_object(s3, job, str(obj["Key"]), int(obj["Size"]), str(obj["ETag"]), dst)
    return True


def _extract(s3: S3Client, job: Job, present: dict[str, int], seconds_left: Clock) -> bool:
    """Validate a ``.tar.gz`` (whole), then stream-extract it into one object per file."""
    state = load_state(s3, job) or {}
    try:
        return _extract_from(s3, job, state, present, seconds_left)
    except BaseException as exc:
        fail_after_cleanup(exc, lambda: delete_state(s3, job))


def _extract_from(
    s3: S3Client, job: Job, state: dict[str, Any], present: dict[str, int], seconds_left: Clock
) -> bool:
    if not state.get("validated"):
        source = Source(s3, job, state.get("scan"))
        try:
            for _ in source.events():
                if seconds_left() < MARGIN:
                    checkpoint = source.checkpoint().to_json()
                    source.close()  # stop reading before the state is written
                    save_state(s3, job, {"scan": checkpoint})
                    return False
        finally:
            source.close()
        state = {"validated": True}
        save_state(s3, job, state)
    files: dict[str, int] = dict(state.get("files", {}))
    links: list[tuple[str, str]] = [(str(a), str(b)) for a, b in state.get("links", [])]
    writer: _FileWriter | None = None
    source = Source(s3, job, state.get("extract"))
    try:
        for event in source.events():
            if isinstance(event, Member):
                if writer is not None:
                    writer.close()
                    writer = None
                path = normalize(event.name)
                if in_code_dir(path) or not path:
                    continue
                if event.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                    target = event.linkname
                    if event.type == tarfile.SYMTYPE:
                        target = posixpath.join(posixpath.dirname(path), target)
                    links.append((path, normalize(posixpath.normpath(target))))
                elif event.type != tarfile.DIRTYPE:
                    dst = job.out_key + path
                    if present.get(dst) != event.size:
                        if seconds_left() < MARGIN:
                            # Resume at this entry's header (already validated).
                            state["extract"] = source.checkpoint(0).to_json()
                            state["files"], state["links"] = files, links
                            source.close()
                            save_state(s3, job, state)
                            return False
                        writer = _FileWriter(s3, job, dst, event.size)
                    files[path] = event.size
            elif isinstance(event, End):
                break
            elif writer is not None:
                writer.write(event)
        if writer is not None:
            writer.close()
            writer = None
    except BaseException as exc:
        if writer is not None:
            fail_after_cleanup(exc, writer.abort)
        raise
    finally:
        source.close()
    for path, target in links:
        if target not in files:
            raise RepackError(
                job.source_uri, f"link {path!r} -> {target!r} is not a regular file of the archive"
            )
        if present.get(job.out_key + path) != files[target]:
            s3.copy_object(
                Bucket=job.out_bucket,
                Key=job.out_key + path,
                CopySource={"Bucket": job.out_bucket, "Key": job.out_key + target},
                **sse(job.kms_key),
            )
    return True


class _FileWriter:
    """One extracted file: data arrives padded to 512 bytes; parts of ``job.part_size``."""

    def __init__(self, s3: S3Client, job: Job, key: str, size: int) -> None:
        self.s3, self.job, self.key = s3, job, key
        self.remaining = size
        self.buf = bytearray()
        self.upload: Multipart | None = None
        self.parts: dict[int, str] = {}

    def write(self, data: bytes) -> None:
        take = min(len(data), self.remaining)
        self.buf += data[:take]
        self.remaining -= take
        if len(self.buf) >= self.job.part_size and self.remaining > 0:
            if self.upload is None:
                self.upload = Multipart.create(
                    self.s3, self.job.out_bucket, self.key, kms_key=self.job.kms_key
                )
            n = len(self.parts) + 1
            self.parts[n] = self.upload.upload(n, bytes(self.buf))
            self.buf.clear()

    def close(self) -> None:
        if self.upload is None:
            self.s3.put_object(
                Bucket=self.job.out_bucket,
                Key=self.key,
                Body=bytes(self.buf),
                **sse(self.job.kms_key),
            )
        else:
            n = len(self.parts) + 1
            self.parts[n] = self.upload.upload(n, bytes(self.buf))
            self.upload.complete(self.parts)
        self.buf.clear()

    def abort(self) -> None:
        if self.upload is not None:
            self.upload.abort()
