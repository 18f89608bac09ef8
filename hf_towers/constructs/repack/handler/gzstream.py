"""Streaming gzip decompression of a series of members (RFC 1952) with bounded memory.

Output comes in chunks of at most ``out_chunk`` bytes whatever the input, so a gzip bomb never
inflates more than one chunk at a time; the decompression ratio is checked as data flows.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from .errors import StreamError

GZIP_MAGIC = b"\x1f\x8b"
OUT_CHUNK = 1024 * 1024
RATIO_SLACK = 16 * 1024 * 1024
"""Decompressed bytes allowed beyond ``max_ratio * compressed`` (small archives of text)."""


class Inflater:
    """Decompress ``chunks``; ``compressed`` and ``decompressed`` count bytes so far."""

    def __init__(
        self, chunks: Iterable[bytes], *, max_ratio: float, out_chunk: int = OUT_CHUNK
    ) -> None:
        self._chunks = iter(chunks)
        self._max_ratio = max_ratio
        self._out_chunk = out_chunk
        self.compressed = 0
        self.decompressed = 0
        self.members = 0

    def _check_ratio(self) -> None:
        if self.decompressed > self._max_ratio * self.compressed + RATIO_SLACK:
            raise StreamError(
                f"decompression ratio exceeds the bound of {self._max_ratio:g} "
                f"({self.decompressed} bytes from {self.compressed})"
            )

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        dec: zlib._Decompress | None = None
        started = False
        while True:
            if not pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self.compressed += len(chunk)
                pending = chunk
            if dec is None:
                # A new member starts here: need at least the two magic bytes to judge.
                while len(pending) < 2:
                    more = next(self._chunks, None)
                    if more is None:
                        break
                    self.compressed += len(more)
                    pending += more
                if pending[:2] != GZIP_MAGIC:
                    if not started:
                        raise StreamError("not a gzip file (bad magic bytes)")
                    raise StreamError("trailing data after the last gzip member")
                dec = zlib.decompressobj(wbits=31)
                started = True
                self.members += 1
            data = pending
            pending = b""
            while True:
                try:
                    out = dec.decompress(data, self._out_chunk)
                except zlib.error as exc:
                    raise StreamError(f"corrupt gzip stream ({exc})") from exc
                data = dec.unconsumed_tail
                if out:
                    self.decompressed += len(out)
                    self._check_ratio()
                    yield out
                if dec.eof:
                    pending = dec.unused_data + data
                    dec = None
                    break
                if not data and len(out) < self._out_chunk:
                    break
        if dec is not None or not started:
            if not started:
                raise StreamError("empty object (not a gzip file)")
            raise StreamError("truncated gzip stream (ends inside a member)")
