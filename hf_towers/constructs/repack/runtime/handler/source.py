"""The source ``.tar.gz`` as validated tar events, resumable at any position of the tar stream.

``Source(s3, job, checkpoint).events()`` reads the source (ranged GET from the checkpoint's access
point), inflates it, scans and validates it, and yields ``Member`` / data ``bytes`` / ``End``
exactly as an uninterrupted read would from that position on. ``checkpoint(into)`` describes the
position ``into`` bytes into the last event yielded (default: after it) as JSON-able data:

* the inflater access point (``gzstream.Point``) at or before that position,
* the tar position and, when it lies inside an entry's data, how many data bytes are left there
  (those are passed through; the tar scanner itself restarts at the next header boundary),
* for a position inside an entry's header blocks: the header offset (the scan restarts there,
  without checking that entry twice) and ``skip``, the bytes of it the caller already used,
* the validator's state (``vars(validator)``, encoded generically: sets, tuples, dicts).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import RepackError, StreamError
from .gzstream import START, Inflater, Point
from .job import Job
from .s3io import S3Client, read_ranges
from .tarscan import BLOCK, REGULAR, End, Member, scan
from .validate import Validator


def encode(value: Any) -> Any:
    """JSON-able form of plain attribute values (sets sorted, tuples and non-str keys tagged)."""
    if isinstance(value, (set, frozenset)):
        return {"__set__": sorted((encode(v) for v in value), key=repr)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"__items__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    return value


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if "__set__" in value:
            return {_hashable(decode(v)) for v in value["__set__"]}
        if "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        if "__bytes__" in value:
            return bytes.fromhex(value["__bytes__"])
        if "__items__" in value:
            return {_hashable(decode(k)): decode(v) for k, v in value["__items__"]}
        return {k: decode(v) for k, v in value.items()}
    return value


def snapshot(attributes: dict[str, Any]) -> dict[str, Any]:
    """A copy of plain attribute values, cheap for large sets (taken at every stream chunk)."""
    return {
        name: set(value)
        if isinstance(value, set)
        else value
        if isinstance(value, (str, int, float, bool, frozenset, type(None)))
        else copy.deepcopy(value)
        for name, value in attributes.items()
    }


def restore_validator(state: dict[str, Any]) -> Validator:
    """A ``Validator`` with the attributes of a snapshot (a fresh one for an empty snapshot)."""
    validator = Validator()
    for name, value in copy.deepcopy(state).items():
        setattr(validator, name, value)
    return validator


@dataclass
class Checkpoint:
    point: Point = START
    tar: int = 0
    """Tar-stream offset to continue at."""
    data_left: int = 0
    """Data bytes (padding included) of the current entry left at ``tar``."""
    checked: int | None = None
    """Offset of the entry header at ``tar`` that was already validated."""
    skip: int = 0
    """Bytes of the first event after ``tar`` that the caller already consumed."""
    validator: dict[str, Any] = field(default_factory=dict)
    """Snapshot of ``vars(validator)`` (a deep copy; encoded only by ``to_json``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "point": self.point.to_json(),
            "tar": self.tar,
            "data_left": self.data_left,
            "checked": self.checked,
            "skip": self.skip,
            "validator": encode(self.validator),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            point=Point.from_json(data["point"]),
            tar=int(data["tar"]),
            data_left=int(data["data_left"]),
            checked=None if data.get("checked") is None else int(data["checked"]),
            skip=int(data.get("skip", 0)),
            validator=decode(data["validator"]),
        )


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


class Source:
    """Validated tar events of ``job``'s source from ``checkpoint`` (JSON form) on."""

    def __init__(self, s3: S3Client, job: Job, checkpoint: dict[str, Any] | None = None) -> None:
        self.s3 = s3
        self.job = job
        self.start = Checkpoint.from_json(checkpoint) if checkpoint else Checkpoint()
        self.validator = restore_validator(self.start.validator)
        self.skip = self.start.skip
        """Bytes of the first event the caller must drop (it consumed them before)."""
        self._inflater: Inflater | None = None
        self._chunks: Iterator[bytes] | None = None
        # The last event yielded: kind, tar offset, length, data left after it (entry data).
        self._kind = "start"
        self._pos = self.start.tar
        self._len = 0
        self._left = self.start.data_left

    @property
    def compressed_read(self) -> int:
        """Compressed bytes received in this invocation."""
        if self._inflater is None:
            return 0
        return self._inflater.compressed - self.start.point.read_from

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def events(self) -> Iterator[Member | bytes | End]:
        """Validated events; ``StreamError`` becomes ``RepackError`` naming the source."""
        job, start = self.job, self.start
        self._chunks = read_ranges(
            self.s3,
            job.source_bucket,
            job.source_key,
            size=job.source_size,
            etag=job.source_etag,
            start=start.point.read_from,
        )
        self._inflater = Inflater(self._chunks, max_ratio=job.max_ratio, start=start.point)
        try:
            yield from self._events(iter(self._inflater))
        except StreamError as exc:
            raise RepackError(job.source_uri, str(exc)) from exc
        finally:
            self.close()

    def _events(self, inflated: Iterator[bytes]) -> Iterator[Member | bytes | End]:
        start = self.start
        stream = _drop(inflated, start.tar - start.point.out)
        pos = start.tar
        left = start.data_left
        while left > 0:  # inside an entry's data: pass it through up to the next header
            piece = next(stream, None)
            if piece is None:
                raise StreamError(f"truncated tar archive (inside entry data at offset {pos})")
            if len(piece) > left:
                stream = itertools.chain([piece[left:]], stream)
                piece = piece[:left]
            left -= len(piece)
            self._kind, self._pos, self._len, self._left = "data", pos, len(piece), left
            pos += len(piece)
            yield piece
        if pos:  # a resumed scan: the stream must go on (scan() would call it "empty")
            first = next(stream, None)
            if first is None:
                raise StreamError(f"truncated tar archive (inside a header at offset {pos})")
            stream = itertools.chain([first], stream)
        for event in scan(stream, offset=pos):
            if isinstance(event, Member):
                if event.offset != start.checked:
                    self.validator.check(event)
                self._kind, self._pos, self._len = "member", event.offset, len(event.raw)
                self._left = _padded(event.size) if event.type in REGULAR else 0
            elif isinstance(event, End):
                self._kind, self._pos, self._len, self._left = (
                    "end",
                    event.offset,
                    len(event.raw),
                    0,
                )
            else:
                self._kind, self._pos, self._len = "data", self._pos + self._len, len(event)
                self._left -= len(event)
            yield event

    def checkpoint(self, into: int | None = None) -> Checkpoint:
        """The position ``into`` bytes into the last event yielded (default: just after it)."""
        kind, pos, length, left = self._kind, self._pos, self._len, self._left
        if into is None or into >= length:
            into = length
        skip = 0
        checked: int | None = None
        if kind == "start":  # nothing yielded yet: still where it started
            return self.start
        if kind == "data":
            tar, data_left = pos + into, left + (length - into)
        elif into == length and kind == "member":
            tar, data_left = pos + length, left
        else:  # inside (or at the start of) header blocks or the end-of-archive blocks
            tar, data_left, skip = pos, 0, into
            checked = pos if kind == "member" else None
        return self._at(tar, data_left, checked, skip)

    def _at(self, tar: int, data_left: int, checked: int | None, skip: int) -> Checkpoint:
        assert self._inflater is not None
        return Checkpoint(
            point=self._inflater.point_before(tar),
            tar=tar,
            data_left=data_left,
            checked=checked,
            skip=skip,
            validator=snapshot(vars(self.validator)),
        )


def _drop(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
    """``chunks`` without their first ``count`` bytes."""
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:] if count else chunk
        count = 0
        yield from chunks
        return
