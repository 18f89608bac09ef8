"""The tower's code directory (a zip asset) turned into deterministic ``code/`` tar entries.

Entries are written in GNU format with fixed owner and mtime, so the same files always give the
same bytes (and the same content digest), whatever the zip's timestamps.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import Literal

from .errors import StreamError
from .validate import CODE_DIR, normalize

MTIME = 946_684_800
"""2000-01-01T00:00:00Z, the mtime of every generated entry."""
MAX_CODE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class CodeFile:
    path: str
    """Relative to ``code/``."""
    data: bytes
    executable: bool


@dataclass(frozen=True)
class CodeBundle:
    files: tuple[CodeFile, ...]

    @property
    def digest(self) -> str:
        """sha256 over paths, exec bits and contents (hex)."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(f"{f.path}\0{int(f.executable)}\0{len(f.data)}\0".encode())
            h.update(f.data)
        return h.hexdigest()

    def directories(self) -> list[str]:
        dirs = {
            "/".join(f.path.split("/")[:i])
            for f in self.files
            for i in range(1, f.path.count("/") + 1)
        }
        return sorted(dirs)


def load_zip(data: bytes, *, entry_module: str) -> CodeBundle:
    """Read a zip of the code directory; ``entry_module`` must be at its top (``StreamError``)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise StreamError(f"code bundle is not a zip file ({exc})") from exc
    files: list[CodeFile] = []
    total = 0
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename.replace("\\", "/")
            if name.startswith("/") or ".." in name.split("/"):
                raise StreamError(f"code bundle entry {info.filename!r} escapes the code directory")
            total += info.file_size
            if total > MAX_CODE_BYTES:
                raise StreamError(f"code bundle is larger than {MAX_CODE_BYTES} bytes")
            mode = (info.external_attr >> 16) & 0o777
            files.append(CodeFile(normalize(name), archive.read(info), bool(mode & 0o111)))
    files.sort(key=lambda f: f.path)
    if not any(f.path == normalize(entry_module) for f in files):
        raise StreamError(f"code directory has no {entry_module}")
    return CodeBundle(tuple(files))


def _info(name: str, *, kind: bytes, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def tar_entries(bundle: CodeBundle, *, fmt: Literal[0, 1, 2] = tarfile.GNU_FORMAT) -> bytes:
    """``code/`` directory entries and files, WITHOUT an end-of-archive marker."""
    out = [_info(CODE_DIR + "/", kind=tarfile.DIRTYPE, mode=0o755).tobuf(tarfile.USTAR_FORMAT)]
    for d in bundle.directories():
        out.append(_info(f"{CODE_DIR}/{d}/", kind=tarfile.DIRTYPE, mode=0o755).tobuf(fmt, "utf-8"))
    for f in bundle.files:
        info = _info(
            f"{CODE_DIR}/{f.path}",
            kind=tarfile.REGTYPE,
            size=len(f.data),
            mode=0o755 if f.executable else 0o644,
        )
        out.append(info.tobuf(fmt, "utf-8"))
        out.append(_padded(f.data))
    return b"".join(out)


def gzip_member(data: bytes, *, level: int) -> bytes:
    """One deterministic gzip member (mtime 0)."""
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


# Padding members (RFC 1952, https://www.rfc-editor.org/rfc/rfc1952 section 2.3): ID1 ID2, CM=8
# (deflate), FLG=FEXTRA, MTIME=0, XFL=0, OS=255 (unknown); then XLEN and one subfield; an empty
# deflate stream (one final fixed-Huffman block, 03 00); CRC32=0 and ISIZE=0 of no data.
_PAD_HEAD = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff"
_PAD_TAIL = b"\x03\x00" + b"\x00" * 8
PAD_SUBFIELD_ID = b"hf"
"""SI1 SI2 of the padding subfield (unregistered; readers skip subfields they do not know)."""
MAX_SUBFIELD = 0xFFFF - 4
"""XLEN is 16 bits and holds the subfield's SI1, SI2 and LEN (4 bytes) before its data."""
PAD_OVERHEAD = len(_PAD_HEAD) + 2 + 4 + len(_PAD_TAIL)
"""Bytes of a padding member besides its subfield data (26)."""
MAX_PAD_MEMBER = PAD_OVERHEAD + MAX_SUBFIELD


def _pad_member(size: int) -> bytes:
    """One empty gzip member of exactly ``size`` bytes (``PAD_OVERHEAD`` to ``MAX_PAD_MEMBER``)."""
    data_len = size - PAD_OVERHEAD
    if not 0 <= data_len <= MAX_SUBFIELD:
        raise ValueError(
            f"a padding member is {PAD_OVERHEAD} to {MAX_PAD_MEMBER} bytes, not {size}"
        )
    xlen = 4 + data_len
    subfield = PAD_SUBFIELD_ID + data_len.to_bytes(2, "little") + b"\0" * data_len
    return _PAD_HEAD + xlen.to_bytes(2, "little") + subfield + _PAD_TAIL


def padding(size: int) -> bytes:
    """Empty gzip members carrying ``max(size, PAD_OVERHEAD)`` bytes in all, in ``FEXTRA`` fields.

    They decompress to nothing, so the padding never reaches the tar stream: no reader sees an
    extra header or entry (bsdtar / libarchive 3.6 and Go's ``archive/tar`` refuse tar special
    headers over 1 MiB, and the validator refuses repeated PAX headers). Every gzip reader skips
    ``FEXTRA`` (RFC 1952 section 2.3.1.1) and reads a file as a series of members (section 2.2).
    """
    total = max(size, PAD_OVERHEAD)
    count = -(-total // MAX_PAD_MEMBER)
    base, extra = divmod(total, count)
    return b"".join(_pad_member(base + (i < extra)) for i in range(count))


def first_part(bundle: CodeBundle, *, min_size: int) -> bytes:
    """Padding members up to ``min_size`` bytes in all, then the gzip member of the code entries.

    S3 needs every part but the last to be at least 5 MiB
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html); the parts after this one
    are the source, copied server-side. Deterministic: the same bundle gives the same bytes.
    """
    code = gzip_member(tar_entries(bundle), level=9)
    missing = min_size - len(code)
    if missing <= 0:
        return code
    return padding(missing) + code
