"""Streaming tar parser: headers (GNU long names, PAX records applied) and raw data passthrough.

``scan`` turns decompressed chunks into events: a ``Member`` (with the raw bytes of its header
blocks, extended headers included), then its data as ``bytes`` chunks (padding to 512 included),
and finally one ``End`` whose data is the end-of-archive marker and trailing zeros. Memory is one
chunk plus extended headers (bounded by ``max_extended``).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import StreamError

BLOCK = 512
MAX_EXTENDED = 16 * 1024 * 1024
"""Largest PAX / GNU long-name payload accepted (this tool's own padding header is ~5 MiB)."""

REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)


@dataclass
class Member:
    """One archive entry as it will be extracted (long names and PAX records applied)."""

    name: str
    linkname: str
    type: bytes
    size: int
    mode: int
    offset: int
    """Offset of its first header block (extended headers included) in the tar stream."""
    raw: bytes = field(repr=False)
    """Every header block of the entry, extended headers and their data included."""


@dataclass
class End:
    """End-of-archive marker reached; ``raw`` holds the zero blocks that followed."""

    raw: bytes = field(repr=False)
    offset: int = 0


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def parse_pax(data: bytes) -> dict[str, str]:
    """Records ``"<len> <key>=<value>\\n"`` -> dict (POSIX.1-2001)."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        if space < 0:
            raise StreamError(f"corrupt PAX header record at byte {pos}")
        try:
            length = int(data[pos:space])
        except ValueError as exc:
            raise StreamError(f"corrupt PAX header record at byte {pos}") from exc
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1] != 0x0A:
            raise StreamError(f"corrupt PAX header record at byte {pos}")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise StreamError(f"corrupt PAX header record at byte {pos}")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos = end
    return out


class _Blocks:
    """Exact reads over an iterator of chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = bytearray()
        self.offset = 0

    def _fill(self, n: int) -> bool:
        while len(self._buf) < n:
            chunk = next(self._it, None)
            if chunk is None:
                return False
            self._buf += chunk
        return True

    def read(self, n: int, what: str) -> bytes:
        if not self._fill(n):
            raise StreamError(f"truncated tar archive (inside {what} at offset {self.offset})")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.offset += n
        return out

    def at_eof(self) -> bool:
        return not self._fill(1)

    def stream(self, n: int, what: str) -> Iterator[bytes]:
        while n > 0:
            if not self._buf and not self._fill(1):
                raise StreamError(f"truncated tar archive (inside {what} at offset {self.offset})")
            take = min(n, len(self._buf))
            if take == len(self._buf):
                out = bytes(self._buf)
                self._buf.clear()
            else:
                out = bytes(self._buf[:take])
                del self._buf[:take]
            self.offset += take
            n -= take
            yield out

    def rest(self) -> Iterator[bytes]:
        if self._buf:
            out = bytes(self._buf)
            self._buf.clear()
            self.offset += len(out)
            yield out
        for chunk in self._it:
            self.offset += len(chunk)
            yield chunk


def _header(block: bytes, offset: int) -> tarfile.TarInfo:
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        if offset == 0:
            raise StreamError(f"not a tar archive ({exc})") from exc
        raise StreamError(f"corrupt tar header at offset {offset} ({exc})") from exc


def scan(
    chunks: Iterable[bytes], *, max_extended: int = MAX_EXTENDED, offset: int = 0
) -> Iterator[Member | bytes | End]:
    """Yield ``Member``, its data chunks, ..., then ``End``. Raises ``StreamError``.

    ``offset``: where ``chunks`` start in the tar stream (a header boundary), for a resumed scan.
    """
    blocks = _Blocks(chunks)
    blocks.offset = offset
    if blocks.at_eof():
        raise StreamError("empty archive (no data)")
    while True:
        start = blocks.offset
        raw: list[bytes] = []
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            block = blocks.read(BLOCK, "a header")
            if block.count(0) == BLOCK:
                if start == 0 and not raw:
                    raise StreamError("empty archive (no entries)")
                if raw:
                    raise StreamError(f"extended header without an entry at offset {start}")
                trailer = [block]
                for chunk in blocks.rest():
                    if chunk.count(0) != len(chunk):
                        raise StreamError(f"data after the end-of-archive marker at offset {start}")
                    trailer.append(chunk)
                yield End(raw=b"".join(trailer), offset=start)
                return
            info = _header(block, blocks.offset - BLOCK)
            raw.append(block)
            kind = info.type
            if kind in EXTENDED:
                if info.size > max_extended:
                    raise StreamError(
                        f"extended header too large ({info.size} bytes) at offset {start}"
                    )
                data = blocks.read(_padded(info.size), "an extended header")
                raw.append(data)
                payload = data[: info.size]
                if kind == tarfile.GNUTYPE_LONGNAME:
                    long_name = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                elif kind == tarfile.GNUTYPE_LONGLINK:
                    long_link = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                elif kind == tarfile.XHDTYPE:
                    pax.update(parse_pax(payload))
                else:
                    bad = {"path", "linkpath", "size"} & parse_pax(payload).keys()
                    if bad:
                        raise StreamError(
                            f"unsupported global PAX header keys {sorted(bad)} at offset {start}"
                        )
                continue
            break
        if any(k.startswith("GNU.sparse") for k in pax) or kind == tarfile.GNUTYPE_SPARSE:
            raise StreamError(f"sparse entries are not supported ({info.name!r} at offset {start})")
        name = pax.get("path", long_name if long_name is not None else info.name)
        linkname = pax.get("linkpath", long_link if long_link is not None else info.linkname)
        size = info.size
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError as exc:
                raise StreamError(f"corrupt PAX size for {name!r} at offset {start}") from exc
        member = Member(
            name=name,
            linkname=linkname,
            type=kind,
            size=size,
            mode=info.mode,
            offset=start,
            raw=b"".join(raw),
        )
        yield member
        if kind in REGULAR:
            yield from blocks.stream(_padded(size), f"the data of {name!r}")
        elif size:
            raise StreamError(f"non-file entry {name!r} carries {size} data bytes")
