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


def pax_comment_header(payload_size: int) -> bytes:
    """A PAX extended header holding only a ``comment`` record of about ``payload_size`` bytes.

    Readers ignore ``comment`` (POSIX.1-2001); the record applies to the entry that follows,
    which must be ``code/`` so that no original entry is affected.
    """
    value_len = max(payload_size, 1)
    # No digits: Python < 3.12 scans PAX data with a regex that is quadratic on digit runs.
    body = b" comment=" + b"x" * value_len + b"\n"
    length = len(body)
    while len(str(length).encode()) + len(body) != length:
        length = len(str(length).encode()) + len(body)
    record = str(length).encode() + body
    info = _info("././@PaxHeader", kind=tarfile.XHDTYPE, size=len(record))
    return info.tobuf(tarfile.USTAR_FORMAT) + _padded(record)


def first_part(bundle: CodeBundle, *, min_size: int) -> bytes:
    """Gzip members of the code entries, preceded by a stored padding member up to ``min_size``."""
    code = gzip_member(tar_entries(bundle), level=9)
    missing = min_size - len(code)
    if missing <= 0:
        return code
    # Level 0 stores blocks: the member is never shorter than its input.
    pad = gzip_member(pax_comment_header(missing), level=0)
    return pad + code
