"""Repack into one ``model.tar.gz``: the fast path (server-side copy) or the stream path.

Fast path (source has no ``code/``): the output is a series of gzip members, part 1 written by
the function (empty gzip padding members, so the part reaches S3's 5 MiB minimum, then the ``code/``
entries without an end-of-archive marker), parts 2.. copied server-side from the source with
UploadPartCopy. The source's own end-of-archive marker ends the combined tar stream.

Stream path (source has ``code/``): the source is inflated once, old ``code/`` entries are dropped,
new ones are put first, and the result is cut into chunks compressed in parallel as independent
gzip members (stored when incompressible), uploaded as multipart parts.

Both are resumable across invocations, and neither re-reads what an earlier invocation read: the
validation scan (before the fast path's copy) and the stream path save a checkpoint of the source
read (``source.Checkpoint``: an inflater access point, the tar position, the validator's state) in
the state object, and stop before ``seconds_left()`` falls under ``MARGIN``.
"""

from __future__ import annotations

import tarfile
import time
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from . import codepack, gzstream
from .errors import RepackError
from .job import Clock, Job, copy_ranges, delete_state, fail_after_cleanup, load_state, save_state
from .props import MIN_PART_SIZE
from .s3io import COPY_READ_TIMEOUT, Multipart, S3Client, client, exists
from .source import Source
from .tarscan import End, Member
from .validate import in_code_dir, normalize

MARGIN = 90.0
"""Seconds kept in reserve at the end of an invocation (Lambda's remaining time:
https://docs.aws.amazon.com/lambda/latest/dg/python-context.html)."""
CHUNK = 4 * 1024 * 1024
"""Uncompressed bytes per gzip member on the stream path."""
MIN_CHUNK = 256 * 1024
"""Smallest member cut while winding down to a part boundary at the end of an invocation."""
COPY_WORKERS = 8
UPLOADS = 3
"""Stream-path parts uploaded at a time (the inflater does not wait on one part's PUT)."""
STATE_INTERVAL = 15.0
"""Seconds between writes of the stream path's state object (at most this much work is redone
after an invocation dies without winding down; a timed-out one always saves)."""
VALIDATING = "validating"
"""State mode while the source is validated and the fast path's copies already run."""


def scan_source(s3: S3Client, job: Job, *, stop_at_code: bool) -> bool:
    """Read the whole source once, validating it; return whether it has ``code/`` entries."""
    found = False
    source = Source(s3, job)
    try:
        for event in source.events():
            if isinstance(event, Member) and in_code_dir(normalize(event.name)):
                found = True
                if stop_at_code:
                    break
    finally:
        source.close()
    return found


class _Copies:
    """The fast path's ``UploadPartCopy`` parts (2..), at most ``COPY_WORKERS`` at a time.

    Only the caller's thread reads the clock and decides to start more (``top_up``); the pool's
    threads only wait on S3. Part 1 (the new ``code/``) is the first one started if missing.
    """

    def __init__(self, job: Job, upload: Multipart) -> None:
        ranges = copy_ranges(job.source_size, job.copy_part_size)
        self.job = job
        self.upload = upload
        self.total = len(ranges) + 1
        self.done = upload.parts()
        self.todo = [(1, 0, 0)] + [(n, a, b) for n, (a, b) in enumerate(ranges, start=2)]
        self.todo = [t for t in self.todo if t[0] not in self.done]
        # S3 answers UploadPartCopy once the range is copied: a longer read timeout than for reads.
        self.copier = Multipart(
            client(read_timeout=COPY_READ_TIMEOUT), upload.bucket, upload.key, upload.upload_id
        )
        self.pool = ThreadPoolExecutor(COPY_WORKERS)
        self.running: dict[Future[str], int] = {}
        self.started = False
        """Whether any part was started (else the upload is still empty)."""

    @property
    def complete(self) -> bool:
        return len(self.done) == self.total

    def _collect(self, finished: set[Future[str]]) -> None:
        for future in finished:
            self.done[self.running.pop(future)] = future.result()

    def top_up(self) -> None:
        """Collect finished copies (a failed one raises) and start more, up to the limit."""
        self._collect({f for f in self.running if f.done()})
        job = self.job
        while self.todo and len(self.running) < COPY_WORKERS:
            self.started = True
            n, first, last = self.todo.pop(0)
            if n == 1:
                part = codepack.first_part(job.code, min_size=MIN_PART_SIZE)
                future = self.pool.submit(self.upload.upload, 1, part)
            else:
                future = self.pool.submit(
                    self.copier.copy, n, job.source_bucket, job.source_key, first, last,
                    etag=job.source_etag,
                )  # fmt: skip
            self.running[future] = n

    def wait_one(self) -> None:
        finished, _ = wait(self.running, return_when=FIRST_COMPLETED)
        self._collect(finished)

    def close(self, *, collect: bool = True) -> None:
        """Wait for the copies under way (an upload is aborted only once none is running:
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_AbortMultipartUpload.html) and
        record them (``collect``: a failure raises) or drop them."""
        self.pool.shutdown(wait=True)
        if collect:
            self._collect(set(self.running))
        self.running.clear()


def _validate_copying(
    s3: S3Client, job: Job, upload: Multipart, state: dict[str, Any], seconds_left: Clock
) -> tuple[str | None, _Copies]:
    """Validate the source while the fast path's server-side copies already run into ``upload``.

    The copies go to a multipart upload that nothing can read before it is completed, and it is
    completed only after the whole source validated; a refusal aborts it (``run``). Returns the
    mode once validated (``fast``, with the copies still under way; ``stream``: the source has
    ``code/``, the copies are stopped) or None (out of time: copies stopped, checkpoint saved),
    and the copies.
    """
    copies = _Copies(job, upload)
    source = Source(s3, job, state.get("scan"))
    try:
        for event in source.events():
            if isinstance(event, Member) and in_code_dir(normalize(event.name)):
                source.close()
                copies.close(collect=False)
                return "stream", copies  # the stream path validates the rest as it goes
            if seconds_left() < MARGIN:
                checkpoint = source.checkpoint().to_json()
                source.close()  # stop reading first: the socket would keep filling meanwhile
                copies.close()
                save_state(s3, job, {**state, "scan": checkpoint})
                return None, copies
            copies.top_up()
    except BaseException:
        copies.close(collect=False)
        raise
    finally:
        source.close()
    return "fast", copies


def run(s3: S3Client, job: Job, seconds_left: Clock) -> bool:
    """Advance the job; True once ``job.out_key`` exists."""
    if exists(s3, job.out_bucket, job.out_key):
        return True
    state = load_state(s3, job) or {}
    upload = None
    if state.get("upload_id"):
        upload = Multipart.find(s3, job.out_bucket, job.out_key, state["upload_id"])
    fast_copies: _Copies | None = None
    mode = state.get("mode")
    fresh = False
    if mode in (None, VALIDATING):
        # Speculatively the fast path: its copies start while the validation read streams.
        if upload is None:
            upload = Multipart.create(s3, job.out_bucket, job.out_key, kms_key=job.kms_key)
            state = {"upload_id": upload.upload_id, "mode": VALIDATING, "scan": state.get("scan")}
            save_state(s3, job, state)
        speculative = upload
        try:
            mode, copies = _validate_copying(s3, job, speculative, state, seconds_left)
            # ``code/`` first (the usual order): the upload is still empty, the stream path
            # writes it; else the copies are dropped with their upload.
            fresh = mode == "stream" and (copies.started or bool(copies.done))
            if fresh:
                speculative.abort()
        except BaseException as exc:
            fail_after_cleanup(exc, speculative.abort, lambda: delete_state(s3, job))
        if mode is None:
            return False
        if fresh:
            upload = Multipart.create(s3, job.out_bucket, job.out_key, kms_key=job.kms_key)
        if mode == "fast":
            fast_copies = copies
        state = {"upload_id": upload.upload_id, "mode": mode, "parts": []}
        save_state(s3, job, state)
    elif upload is None:  # validated earlier, but its upload is gone: write the output again
        upload = Multipart.create(s3, job.out_bucket, job.out_key, kms_key=job.kms_key)
        state = {"upload_id": upload.upload_id, "mode": mode, "parts": []}
        save_state(s3, job, state)
    try:
        if state["mode"] == "fast":
            finished = _fast(job, upload, seconds_left, fast_copies)
        else:
            finished = _stream(s3, job, upload, state, seconds_left)
    except BaseException as exc:
        fail_after_cleanup(exc, upload.abort, lambda: delete_state(s3, job))
    if finished:
        delete_state(s3, job)
    return finished


def _fast(job: Job, upload: Multipart, seconds_left: Clock, copies: _Copies | None) -> bool:
    copies = copies or _Copies(job, upload)
    try:
        while True:
            if seconds_left() > MARGIN:
                copies.top_up()
            if not copies.running:
                break
            copies.wait_one()
    finally:
        copies.close()
    if not copies.complete:
        return False
    upload.complete(copies.done)
    return True


_deflate = gzstream.ZLIB  # zlib-ng's deflate when its wheel loads, else zlib's

SAMPLE = 65536
LZ_PAYS = 0.8
"""Level 6 when LZ77 at level 1 saves at least 20 % of a sample (text, tokenizers, configs)."""
HUFFMAN_PAYS = 0.97
"""Else Huffman-only when it saves at least 3 % (fp16/bf16 weights, whose exponent bytes are
skewed: ~8 % saved, at ~4x the speed of level 6 and the same ratio on them); else stored."""


def chunk_strategy(sample: bytes) -> tuple[int, int]:
    """The ``(level, strategy)`` a chunk is deflated with, chosen from its first bytes."""
    if len(_deflate.compress(sample, 1)) <= LZ_PAYS * len(sample):
        return 6, zlib.Z_DEFAULT_STRATEGY
    huffman = _deflate.compressobj(1, zlib.DEFLATED, -15, 9, zlib.Z_HUFFMAN_ONLY)
    if len(huffman.compress(sample) + huffman.flush()) <= HUFFMAN_PAYS * len(sample):
        return 1, zlib.Z_HUFFMAN_ONLY
    return 0, zlib.Z_DEFAULT_STRATEGY


def compress_chunk(data: bytes) -> bytes:
    """One deterministic gzip member (mtime 0) of ``data``, deflated as ``chunk_strategy`` says."""
    level, strategy = chunk_strategy(data[:SAMPLE])
    comp = _deflate.compressobj(level, zlib.DEFLATED, 31, 9, strategy)
    return bytes(comp.compress(data) + comp.flush())


@dataclass
class _Piece:
    data: bytes
    from_source: bool
    """False for the new ``code/`` entries, which come before the source's."""


class Output:
    """The new tar stream (new ``code/`` entries, then the source's entries except old ``code/``),
    cut into chunks; each chunk comes with the JSON resume record of the position after it."""

    def __init__(self, s3: S3Client, job: Job, resume: dict[str, Any] | None) -> None:
        resume = resume or {}
        self.job = job
        self.source = Source(s3, job, resume.get("source"))
        self.dropping = bool(resume.get("dropping", False))
        self.offset = int(resume.get("out", 0))
        """Offset in the output tar stream of the next byte."""
        skip = int(resume.get("skip", 0)) if resume.get("source") is None else self.source.skip
        self._pieces = self._generate(with_code=resume.get("source") is None)
        self._piece = _Piece(b"", False)
        self._view = memoryview(b"")
        self._used = 0
        self._skip = skip

    def close(self) -> None:
        self.source.close()

    def _generate(self, *, with_code: bool) -> Iterator[_Piece]:
        job = self.job
        if with_code:
            yield _Piece(codepack.tar_entries(job.code), False)
        for event in self.source.events():
            if isinstance(event, Member):
                self.dropping = in_code_dir(normalize(event.name))
                if (
                    not self.dropping
                    and event.type == tarfile.LNKTYPE
                    and in_code_dir(normalize(event.linkname))
                ):
                    raise RepackError(
                        job.source_uri,
                        f"entry {event.name!r} is a hard link into the replaced code/",
                    )
                if not self.dropping:
                    yield _Piece(event.raw, True)
            elif isinstance(event, End):
                yield _Piece(event.raw, True)
            elif not self.dropping:
                yield _Piece(event, True)

    def next_chunk(self, size: int) -> tuple[bytes, dict[str, Any]] | None:
        """Up to ``size`` bytes of the stream (None at its end) and the record to resume after."""
        # Views of the pieces, joined once: one copy of each byte here, not a copy per append.
        views: list[memoryview] = []
        length = 0
        while length < size:
            if self._used >= len(self._piece.data):
                piece = next(self._pieces, None)
                if piece is None:
                    break
                self._piece, self._used = piece, 0
                self._view = memoryview(piece.data)
                if self._skip:  # already output before this invocation
                    self._used = min(self._skip, len(piece.data))
                    self._skip -= self._used
                continue
            take = min(size - length, len(self._piece.data) - self._used)
            views.append(self._view[self._used : self._used + take])
            length += take
            self._used += take
        if not length:
            return None
        self.offset += length
        return b"".join(views), self._record()

    def _record(self) -> dict[str, Any]:
        if not self._piece.from_source:
            return {"source": None, "skip": self._used, "out": self.offset}
        checkpoint = self.source.checkpoint(self._used)
        return {
            "source": checkpoint.to_json(),
            "dropping": self.dropping,
            "out": self.offset,
        }


def _stream(
    s3: S3Client, job: Job, upload: Multipart, state: dict[str, Any], seconds_left: Clock
) -> bool:
    parts: list[list[Any]] = state["parts"]
    if state.get("last"):
        upload.complete({int(n): str(etag) for n, etag, *_ in parts})
        return True
    workers = 2
    buffer = bytearray()
    buffer_record: dict[str, Any] | None = None
    # Stay under S3's 10,000 parts whatever the size (stored output ~ source size).
    part_size = max(job.part_size, -(-job.source_size * 11 // 10 // 9_000))
    pending: deque[tuple[Future[bytes], dict[str, Any]]] = deque()
    # Parts under way, oldest first: (upload, [number, etag, out offset], resume record).
    sending: deque[tuple[Future[str], list[Any], dict[str, Any] | None]] = deque()
    progressed = False
    output = Output(s3, job, state.get("resume"))

    saved = time.monotonic()

    def finish_sending(*, keep: int = 0, last: bool = False, save: bool = False) -> None:
        """Record the parts under way, oldest first, until ``keep`` are left; write the state
        object when ``save``/``last``, or when the last write is ``STATE_INTERVAL`` old: a part
        uploaded but not recorded yet is uploaded again (same number, same bytes) by the
        invocation that resumes."""
        nonlocal saved
        while len(sending) > keep:
            future, meta, record = sending.popleft()
            meta[1] = future.result()
            parts.append(meta)
            state["resume"] = record
        if last:
            state["last"] = True
        if last or save or time.monotonic() - saved >= STATE_INTERVAL:
            state["parts"] = parts
            save_state(s3, job, state)
            saved = time.monotonic()

    def flush() -> None:
        """Send the buffer as the next part; at most ``UPLOADS`` parts are under way."""
        nonlocal buffer, progressed
        finish_sending(keep=UPLOADS - 1)
        if buffer:
            progressed = True
            number = len(parts) + len(sending) + 1
            data, buffer = buffer, bytearray()
            meta = [number, "", buffer_record["out"] if buffer_record else -1]
            sending.append((uploader.submit(upload.upload, number, data), meta, buffer_record))

    try:
        with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(UPLOADS) as uploader:

            def drain(limit: int, *, send: bool = True) -> None:
                """Collect compressed chunks in order; a part is sent once it is big enough."""
                nonlocal buffer_record
                while len(pending) > limit:
                    future, record = pending.popleft()
                    buffer.extend(future.result())
                    buffer_record = record
                    if send and len(buffer) >= part_size:
                        flush()

            winding_down = False
            while True:
                if not winding_down and seconds_left() < MARGIN:
                    winding_down = True
                if winding_down:
                    # Out of time: read no further than the next part boundary (>= 5 MiB), and
                    # stop reading (close the source) before waiting for the last uploads.
                    drain(0, send=False)
                    if len(buffer) >= MIN_PART_SIZE or (progressed and not buffer):
                        output.close()
                        flush()
                        finish_sending(save=True)
                        return False
                    size = min(max(MIN_PART_SIZE - len(buffer), MIN_CHUNK), CHUNK)
                else:
                    size = CHUNK
                item = output.next_chunk(size)
                if item is None:
                    break
                chunk, record = item
                pending.append((pool.submit(compress_chunk, chunk), record))
                if not winding_down:
                    drain(workers * 2)
            drain(0)
            flush()
            finish_sending(last=True)
    finally:
        output.close()
    upload.complete({int(n): str(etag) for n, etag, *_ in parts})
    return True
