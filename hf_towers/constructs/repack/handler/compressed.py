"""Repack into one ``model.tar.gz``: the fast path (server-side copy) or the stream path.

Fast path (source has no ``code/``): the output is a series of gzip members, part 1 written by
the function (a stored padding member, so the part reaches S3's 5 MiB minimum, then the ``code/``
entries without an end-of-archive marker), parts 2.. copied server-side from the source with
UploadPartCopy. The source's own end-of-archive marker ends the combined tar stream.

Stream path (source has ``code/``): the source is inflated once, old ``code/`` entries are dropped,
new ones are put first, and the result is cut into fixed-size chunks compressed in parallel as
independent gzip members (stored when incompressible), uploaded as multipart parts.

Both are resumable across invocations: the open upload (and, for the stream path, where each part
ends) is kept in a small state object; work stops before ``seconds_left()`` runs out.
"""

from __future__ import annotations

import tarfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from . import codepack
from .errors import RepackError, StreamError
from .gzstream import Inflater
from .job import Clock, Job, copy_ranges, delete_state, load_state, save_state
from .props import MIN_PART_SIZE
from .s3io import Multipart, S3Client, exists, read_chunks
from .tarscan import End, Member, scan
from .validate import Validator, in_code_dir, normalize

MARGIN = 90.0
"""Seconds kept in reserve at the end of an invocation."""
CHUNK = 4 * 1024 * 1024
"""Uncompressed bytes per gzip member on the stream path."""
COPY_WORKERS = 8


def validated_members(job: Job, chunks: Iterable[bytes]) -> Iterator[Member | bytes | End]:
    """Scan and validate a source stream; ``StreamError`` becomes ``RepackError``."""
    validator = Validator()
    try:
        for event in scan(Inflater(chunks, max_ratio=job.max_ratio)):
            if isinstance(event, Member):
                validator.check(event)
            yield event
    except StreamError as exc:
        raise RepackError(job.source_uri, str(exc)) from exc


def scan_source(s3: S3Client, job: Job, *, stop_at_code: bool) -> bool:
    """Read the source once, validating it; return whether it has ``code/`` entries."""
    chunks = read_chunks(s3, job.source_bucket, job.source_key, etag=job.source_etag)
    found = False
    try:
        for event in validated_members(job, chunks):
            if isinstance(event, Member) and in_code_dir(normalize(event.name)):
                found = True
                if stop_at_code:
                    break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return found


def run(s3: S3Client, job: Job, seconds_left: Clock) -> bool:
    """Advance the job; True once ``job.out_key`` exists."""
    if exists(s3, job.out_bucket, job.out_key):
        return True
    state = load_state(s3, job)
    upload = Multipart.find(s3, job.out_bucket, job.out_key, state["upload_id"]) if state else None
    if state is None or upload is None:
        mode = "stream" if scan_source(s3, job, stop_at_code=True) else "fast"
        upload = Multipart.create(s3, job.out_bucket, job.out_key, kms_key=job.kms_key)
        state = {"upload_id": upload.upload_id, "mode": mode, "parts": []}
        save_state(s3, job, state)
    try:
        if state["mode"] == "fast":
            finished = _fast(s3, job, upload, seconds_left)
        else:
            finished = _stream(s3, job, upload, state, seconds_left)
    except BaseException:
        upload.abort()
        delete_state(s3, job)
        raise
    if finished:
        delete_state(s3, job)
    return finished


def _fast(s3: S3Client, job: Job, upload: Multipart, seconds_left: Clock) -> bool:
    ranges = copy_ranges(job.source_size, job.copy_part_size)
    done = upload.parts()
    if 1 not in done:
        done[1] = upload.upload(1, codepack.first_part(job.code, min_size=MIN_PART_SIZE))
    todo = [(n, first, last) for n, (first, last) in enumerate(ranges, start=2) if n not in done]
    running: dict[Future[str], int] = {}
    with ThreadPoolExecutor(COPY_WORKERS) as pool:
        while todo or running:
            while todo and len(running) < COPY_WORKERS and seconds_left() > MARGIN:
                n, first, last = todo.pop(0)
                future = pool.submit(
                    upload.copy,
                    n,
                    job.source_bucket,
                    job.source_key,
                    first,
                    last,
                    etag=job.source_etag,
                )
                running[future] = n
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                done[running.pop(future)] = future.result()
    if len(done) < len(ranges) + 1:
        return False
    upload.complete(done)
    return True


def compress_chunk(data: bytes) -> bytes:
    """One gzip member: stored when a sample does not compress by 10%, else level 6."""
    sample = data[:65536]
    level = 0 if len(zlib.compress(sample, 1)) > 0.9 * len(sample) else 6
    return codepack.gzip_member(data, level=level)


def rechunk(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Fixed-size chunks (the last may be shorter) from pieces of any size."""
    buf = bytearray()
    for piece in pieces:
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _filtered(s3: S3Client, job: Job) -> Iterator[bytes]:
    """The new tar stream: new ``code/`` entries, then the source's entries except old ``code/``."""
    yield codepack.tar_entries(job.code)
    chunks = read_chunks(s3, job.source_bucket, job.source_key, etag=job.source_etag)
    dropping = False
    for event in validated_members(job, chunks):
        if isinstance(event, Member):
            path = normalize(event.name)
            dropping = in_code_dir(path)
            if (
                not dropping
                and event.type == tarfile.LNKTYPE
                and in_code_dir(normalize(event.linkname))
            ):
                raise RepackError(
                    job.source_uri, f"entry {event.name!r} is a hard link into the replaced code/"
                )
            if not dropping:
                yield event.raw
        elif isinstance(event, End):
            yield event.raw
        elif not dropping:
            yield event


def _stream(
    s3: S3Client, job: Job, upload: Multipart, state: dict[str, Any], seconds_left: Clock
) -> bool:
    parts: list[list[Any]] = state["parts"]
    if state.get("last"):
        upload.complete({int(n): str(etag) for n, etag, _ in parts})
        return True
    skip = int(parts[-1][2]) if parts else 0
    workers = 2
    buffer = bytearray()
    # Stay under S3's 10,000 parts whatever the size (stored output ~ source size).
    part_size = max(job.part_size, -(-job.source_size * 11 // 10 // 9_000))
    pending: deque[tuple[int, Future[bytes]]] = deque()
    sending: Future[str] | None = None
    sending_meta: list[Any] = []

    def finish_sending(*, last: bool = False) -> None:
        nonlocal sending
        if sending is not None:
            sending_meta[1] = sending.result()
            parts.append(sending_meta)
            sending = None
        if last:
            state["last"] = True
        state["parts"] = parts
        save_state(s3, job, state)

    def flush(next_chunk: int) -> None:
        nonlocal buffer, sending, sending_meta
        finish_sending()
        if buffer:
            number = len(parts) + 1
            data, buffer = buffer, bytearray()
            sending = uploader.submit(upload.upload, number, data)
            sending_meta = [number, "", next_chunk]

    with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as uploader:

        def drain(limit: int) -> bool:
            """Collect compressed chunks in order; False when the time is up at a part boundary."""
            while len(pending) > limit:
                index, future = pending.popleft()
                buffer.extend(future.result())
                if len(buffer) >= part_size:
                    flush(index + 1)
                    if seconds_left() < MARGIN:
                        return False
            return True

        for index, chunk in enumerate(rechunk(_filtered(s3, job), CHUNK)):
            if index < skip:
                continue
            pending.append((index, pool.submit(compress_chunk, chunk)))
            if not drain(workers * 2):
                finish_sending()
                return False
        if not drain(0):
            finish_sending()
            return False
        flush(-1)
        finish_sending(last=True)
    upload.complete({int(n): str(etag) for n, etag, _ in parts})
    return True
