"""Deterministic ``.tar.gz`` files of a folder, for assets whose hash must follow content only."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path


def deterministic_tarball(
    folder: Path, files: Sequence[Path], cache: str, *, compresslevel: int = 9
) -> Path:
    """``files`` (under ``folder``, in the given order) as a ``.tar.gz`` with owner 0 (``root``),
    mode 0644/0755 and mtime 0, no name in the gzip header, so equal content gives equal bytes and an unchanged
    folder keeps its asset hash. Written once to ``<tmp>/<cache>/<content digest>.tar.gz``
    (through a per-process partial file, so concurrent synths do not see a half-written one)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    out = Path(tempfile.gettempdir()) / cache / f"{digest.hexdigest()[:32]}.tar.gz"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(f".{os.getpid()}.part")
    with (
        partial.open("wb") as raw,
        # filename="": otherwise the gzip header names the partial file (with this pid).
        gzip.GzipFile(
            filename="", fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for path in files:
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            # The checkout's umask is not content: 0644, or 0755 for an executable file.
            info.mode = 0o755 if info.mode & 0o100 else 0o644
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    partial.replace(out)
    return out
