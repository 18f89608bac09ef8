"""Streaming tar parser: headers (GNU long names, PAX records applied) and raw data passthrough.

``scan`` turns decompressed chunks into events: a ``Member`` (with the raw bytes of its header
blocks, extended headers included), then its data as ``bytes`` chunks (padding to 512 included),
and finally one ``End`` whose data is the end-of-archive marker and trailing zeros. Memory is one
chunk plus extended headers (bounded by ``max_extended``).

Headers are applied only where every real reader applies them alike (GNU tar, Python ``tarfile``,
bsdtar, Go's ``archive/tar``, 7-Zip; ``tests/constructs/repack/test_differential.py``): an entry
whose extended headers they would resolve to different names, links or sizes is refused with a
``StreamError`` naming the entry, its offset and what the readers do.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import StreamError

BLOCK = 512
MAX_EXTENDED = 1024 * 1024
"""Largest PAX / GNU long-name payload accepted: libarchive (bsdtar) and Go's ``archive/tar``
refuse special headers over 1 MiB, so a larger one is an archive readers disagree on."""

REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
POSIX_MAGIC = b"ustar\x0000"
"""Magic and version of a POSIX ustar header (the only kind whose prefix field is read by all)."""
XATTR_KEYS = ("SCHILY.xattr.", "LIBARCHIVE.xattr.")
"""PAX keys of extended attributes (restored by bsdtar only; macOS tar writes them)."""
TREE_KEYS = ("path", "linkpath", "size")
"""PAX keys that change which path an entry has or how much data it carries."""


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


def parse_pax(data: bytes, offset: int = 0) -> dict[str, str]:
    """Records ``"<len> <key>=<value>\\n"`` -> dict (POSIX.1-2001), read strictly.

    Lengths are ASCII digits, the records fill the payload (only NUL bytes after the last one) and
    a key appears once: Python 3.11's ``tarfile`` silently stops at the first record it cannot
    parse (later records are ignored there, applied by other readers) and readers differ on which
    of two values for one key wins, so anything looser would be read differently.
    """
    out: dict[str, str] = {}
    pos = 0
    where = f"in the PAX header at offset {offset}"
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 21)
        digits = data[pos:space] if space > pos else b""
        if not digits.isdigit():
            raise StreamError(f"corrupt PAX header record at byte {pos} {where}")
        length = int(digits)
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1] != 0x0A:
            raise StreamError(f"corrupt PAX header record at byte {pos} {where}")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq or not key:
            raise StreamError(f"corrupt PAX header record at byte {pos} {where}")
        name = key.decode("utf-8", "surrogateescape")
        if name in out:
            raise StreamError(
                f"PAX record {name!r} appears twice {where}: readers disagree on which applies"
            )
        out[name] = value.decode("utf-8", "surrogateescape")
        pos = end
    if data.count(0, pos) != len(data) - pos:
        raise StreamError(f"data after the last PAX record at byte {pos} {where}")
    return out


def _sparse(key: str) -> bool:
    return key.startswith("GNU.sparse.") or key in ("SCHILY.realsize", "SUN.holesdata")


def _long_name(payload: bytes, what: str, offset: int) -> str:
    """The name held by a GNU ``L``/``K`` header: NUL-terminated, no NUL inside."""
    name = payload.rstrip(b"\0")
    if b"\0" in name:
        raise StreamError(
            f"{what} at offset {offset} has a NUL byte inside the name ({name!r}): "
            "readers disagree on where the name ends"
        )
    if not name:
        raise StreamError(f"{what} at offset {offset} is empty")
    return name.decode("utf-8", "surrogateescape")


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


def _check_header(
    block: bytes, info: tarfile.TarInfo, name: str, pax: dict[str, str], *, overridden: bool
) -> None:
    """Refuse header fields that the five readers (GNU tar, Python ``tarfile``, bsdtar, Go's
    ``archive/tar``, 7-Zip) interpret differently; ``name`` is the final name (PAX/long applied)."""
    where = f"entry {name!r} at offset {info.offset}"
    if info.size < 0:
        raise StreamError(f"{where} has a negative size ({info.size})")
    if block[345] != 0 and block[257:265] != POSIX_MAGIC:
        prefix = block[345:500].split(b"\0", 1)[0]
        raise StreamError(
            f"{where} has a ustar prefix field ({prefix!r}) in a header that is not POSIX ustar "
            f"(magic {bytes(block[257:265])!r}): readers disagree on whether it is part of the "
            "name (Python tarfile always puts it in front, GNU tar and bsdtar only for POSIX "
            "ustar headers)"
        )
    raw_kind = block[156:157]
    if raw_kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
        field_slash = block[:100].split(b"\0", 1)[0].endswith(b"/")
        old_style_dir = raw_kind == tarfile.AREGTYPE and field_slash and not overridden
        if name.endswith("/") or (field_slash and not old_style_dir):
            raise StreamError(
                f"{where} is a regular file whose name ends with '/': readers disagree on "
                "whether it is a file or a directory (GNU tar, bsdtar and 7-Zip make a directory, "
                "Python tarfile and Go a file)"
            )
    if "size" in pax:
        value = pax["size"]
        if not (value.isascii() and value.isdigit()):
            raise StreamError(
                f"{where} has a corrupt PAX size {value!r}: Python tarfile reads it as 0, "
                "other readers fail"
            )
        if info.size not in (0, int(value)):
            # Writers put 0 (Python, GNU tar) in the header when the size needs the PAX record.
            raise StreamError(
                f"{where} has a PAX size ({value}) that differs from its header's size field "
                f"({info.size}): a reader that does not apply PAX records reads a different "
                "amount of data and every later header differently"
            )


def scan(
    chunks: Iterable[bytes], *, max_extended: int = MAX_EXTENDED, offset: int = 0
) -> Iterator[Member | bytes | End]:
    """Yield ``Member``, its data chunks, ..., then ``End``. Raises ``StreamError``.

    Every entry whose headers real readers would apply differently is refused (see
    ``docs/repack.md``): more than one GNU long name, long link or PAX header for one entry, a
    long name together with a PAX path (or a long link with a PAX linkpath), PAX global headers
    that set a path, link or size, PAX sizes that differ from the header's, ustar prefixes outside
    POSIX headers, regular files whose name ends with ``/``.

    ``offset``: where ``chunks`` start in the tar stream (a header boundary), for a resumed scan.
    """
    blocks = _Blocks(chunks)
    blocks.offset = offset
    if blocks.at_eof():
        raise StreamError("empty archive (no data)")
    while True:
        start = blocks.offset
        raw: list[bytes] = []
        pax: dict[str, str] | None = None
        long_name: str | None = None
        long_link: str | None = None
        extended = 0
        twice = ""
        while True:
            at = blocks.offset
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
            info = _header(block, at)
            info.offset = start
            raw.append(block)
            kind = info.type
            if kind not in EXTENDED:
                break
            if not 0 <= info.size <= max_extended:
                raise StreamError(
                    f"extended header of {info.size} bytes at offset {at} is larger than "
                    f"{max_extended} bytes: readers disagree (bsdtar and Go's archive/tar refuse "
                    "special headers over 1 MiB)"
                )
            data = blocks.read(_padded(info.size), "an extended header")
            raw.append(data)
            payload = data[: info.size]
            if kind == tarfile.XGLTYPE:
                if extended:
                    raise StreamError(
                        f"PAX global header at offset {at} comes between the extended headers "
                        f"of one entry (offset {start}): readers disagree on what applies"
                    )
                bad = sorted(k for k in parse_pax(payload, at) if k in TREE_KEYS or _sparse(k))
                if bad:
                    raise StreamError(
                        f"unsupported global PAX header keys {bad} at offset {at}: a global "
                        "path, linkpath or size applies to every later entry in Python tarfile "
                        "and GNU tar, is ignored by others"
                    )
                continue
            extended += 1
            if kind == tarfile.GNUTYPE_LONGNAME:
                twice = twice or ("GNU long name" if long_name is not None else "")
                long_name = _long_name(payload, "GNU long name", at)
            elif kind == tarfile.GNUTYPE_LONGLINK:
                twice = twice or ("GNU long link name" if long_link is not None else "")
                long_link = _long_name(payload, "GNU long link name", at)
            else:
                twice = twice or ("PAX extended header" if pax is not None else "")
                records = parse_pax(payload, at)
                pax = records if pax is None else {**pax, **records}
        pax = pax or {}
        name = pax.get("path", long_name if long_name is not None else info.name)
        linkname = pax.get("linkpath", long_link if long_link is not None else info.linkname)
        where = f"entry {name!r} at offset {start}"
        if twice:
            raise StreamError(
                f"{where} has more than one {twice}: readers disagree on which applies "
                "(Python tarfile takes the first, the others the last or fail)"
            )
        if long_name is not None and "path" in pax:
            raise StreamError(
                f"{where} has both a GNU long name and a PAX path ({long_name!r} vs "
                f"{pax['path']!r}): readers disagree on which applies (GNU tar and 7-Zip take "
                "the PAX path, Python tarfile and bsdtar the header that comes first, Go the "
                "long name)"
            )
        if long_link is not None and "linkpath" in pax:
            raise StreamError(
                f"{where} has both a GNU long link name and a PAX linkpath ({long_link!r} vs "
                f"{pax['linkpath']!r}): readers disagree on which applies"
            )
        if pax and (long_name is not None or long_link is not None):
            raise StreamError(
                f"{where} has both GNU (long name or link) and PAX extended headers: readers "
                "disagree on which applies (bsdtar turns a PAX path with a GNU long link into a "
                "regular file)"
            )
        xattrs = sorted(k for k in pax if k.startswith(XATTR_KEYS))
        if xattrs and kind not in (*REGULAR, tarfile.DIRTYPE):
            raise StreamError(
                f"{where} is not a file or directory but has extended attributes {xattrs}: bsdtar "
                "fails to set them on it, the other readers ignore them"
            )
        if any(_sparse(k) for k in pax) or kind == tarfile.GNUTYPE_SPARSE:
            raise StreamError(f"sparse entries are not supported ({name!r} at offset {start})")
        _check_header(block, info, name, pax, overridden=long_name is not None or "path" in pax)
        size = int(pax["size"]) if "size" in pax else info.size
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
            raise StreamError(
                f"non-file entry {name!r} at offset {start} carries {size} data bytes: readers "
                "disagree on whether they are data or the next header"
            )
