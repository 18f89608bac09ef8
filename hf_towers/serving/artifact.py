"""Extract a ``model.tar.gz`` for ``serve`` with the repack handler's own rules.

What the repack custom resource accepts, ``serve`` serves, and what it refuses, ``serve`` refuses:
the archive is read once through the handler's ``Inflater`` (gzip members, decompression-ratio
bound), ``tarscan.scan`` (headers, long names and PAX records applied) and ``Validator`` (paths,
link targets, entry types), and exactly the validated members are written, from the scanned stream
itself, never through a second reader. Writing never follows a link: files are created with
``O_NOFOLLOW``, and no entry is written below a symlink an earlier entry made.

The handler package (``hf_towers/constructs/repack/runtime/handler/``, stdlib only) is loaded from its
files on its own, as Lambda loads it: importing it through ``hf_towers.constructs.repack`` would
import the CDK construct and start the jsii Node runtime, which ``serve`` does not need.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import stat
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, BinaryIO

HANDLER_DIR = Path(__file__).resolve().parents[1] / "constructs" / "repack" / "runtime" / "handler"
HANDLER_PACKAGE = "hf_towers_repack_handler"
"""Name the handler package is loaded under here (its modules import each other relatively)."""
READ_CHUNK = 1024 * 1024


def _handler_module(name: str) -> ModuleType:
    """``handler.<name>`` loaded from ``HANDLER_DIR`` (once per process)."""
    if HANDLER_PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            HANDLER_PACKAGE,
            HANDLER_DIR / "__init__.py",
            submodule_search_locations=[str(HANDLER_DIR)],
        )
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[HANDLER_PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{HANDLER_PACKAGE}.{name}")


if TYPE_CHECKING:
    from hf_towers.constructs.repack.runtime.handler import (
        errors,
        gzstream,
        props,
        tarscan,
        validate,
    )
else:
    errors = _handler_module("errors")
    gzstream = _handler_module("gzstream")
    props = _handler_module("props")
    tarscan = _handler_module("tarscan")
    validate = _handler_module("validate")

DEFAULT_MAX_RATIO: float = props.DEFAULT_MAX_RATIO
"""The repack's default bound (``max_decompression_ratio`` of a tower)."""


def _chunks(archive: Path) -> Iterator[bytes]:
    with archive.open("rb") as stream:
        while chunk := stream.read(READ_CHUNK):
            yield chunk


class _Writer:
    """Writes validated members under ``root``; refuses to go through a link or replace a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.file: BinaryIO | None = None
        self.remaining = 0

    @staticmethod
    def _where(member: tarscan.Member) -> str:
        return f"entry {member.name!r} at offset {member.offset}"

    def _parent(self, path: str, member: tarscan.Member, *, create: bool = True) -> Path:
        """The folder ``path`` goes into, made of real folders (created unless ``create`` is
        False): never through a symlink."""
        folder = self.root
        for part in path.split("/")[:-1]:
            folder = folder / part
            try:
                mode = os.lstat(folder).st_mode
            except FileNotFoundError:
                if not create:
                    raise
                folder.mkdir(mode=0o755)
                continue
            if stat.S_ISLNK(mode):
                where = self._where(member)
                raise errors.StreamError(
                    f"{where} would be written through the symlink "
                    f"{folder.relative_to(self.root).as_posix()!r}"
                )
            if not stat.S_ISDIR(mode):
                raise errors.StreamError(
                    f"{self._where(member)} would be written below the file "
                    f"{folder.relative_to(self.root).as_posix()!r}"
                )
        return folder

    def _clear(self, dest: Path, member: tarscan.Member) -> None:
        """A later entry replaces an earlier one, as tar does, but never a folder."""
        try:
            mode = os.lstat(dest).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            raise errors.StreamError(f"{self._where(member)} would replace a folder")
        dest.unlink()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def member(self, member: tarscan.Member, path: str) -> None:
        self.close()
        if not path:  # the archive's root folder itself (``./``)
            return
        dest = self._parent(path, member) / path.rsplit("/", 1)[-1]
        kind = member.type
        if kind == tarfile.DIRTYPE:
            try:
                mode = os.lstat(dest).st_mode
            except FileNotFoundError:
                dest.mkdir(mode=0o755)
                return
            if not stat.S_ISDIR(mode):
                raise errors.StreamError(f"{self._where(member)} would replace a file or link")
            return
        self._clear(dest, member)
        if kind in tarscan.REGULAR:
            mode = 0o755 if member.mode & 0o100 else 0o644
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            self.file = os.fdopen(os.open(dest, flags, mode), "wb")
            self.remaining = member.size
        elif kind == tarfile.SYMTYPE:
            dest.symlink_to(member.linkname)
        elif kind == tarfile.LNKTYPE:
            source = validate.normalize(member.linkname)
            origin = self._parent(source, member, create=False) / source.rsplit("/", 1)[-1]
            if stat.S_ISDIR(os.lstat(origin).st_mode):
                raise errors.StreamError(
                    f"{self._where(member)} is a hard link to the folder {member.linkname!r}"
                )
            os.link(origin, dest, follow_symlinks=False)
        else:  # the validator admits nothing else
            raise errors.StreamError(f"{self._where(member)} has an unsupported type {kind!r}")

    def data(self, chunk: bytes) -> None:
        if self.file is not None:
            take = min(len(chunk), self.remaining)  # data arrives padded to 512 bytes
            self.file.write(chunk[:take])
            self.remaining -= take


def extract(archive: Path, target: Path, *, max_ratio: float = DEFAULT_MAX_RATIO) -> None:
    """Validate and extract ``archive`` into the empty folder ``target`` in one pass.

    Raises the handler's ``StreamError`` (the reason, as the repack words it) or ``OSError``.
    """
    validator = validate.Validator()
    writer = _Writer(target)
    try:
        for event in tarscan.scan(gzstream.Inflater(_chunks(archive), max_ratio=max_ratio)):
            if isinstance(event, tarscan.Member):
                writer.member(event, validator.check(event))
            elif isinstance(event, tarscan.End):
                break
            else:
                writer.data(event)
    finally:
        writer.close()


def unpack_artifact(archive: Path, workdir: Path, *, max_ratio: float = DEFAULT_MAX_RATIO) -> Path:
    """Extract a ``model.tar.gz`` into ``workdir/artifact`` as SageMaker extracts it into
    ``/opt/ml/model``, with the repack's rules and ratio bound; the archive itself is only read.

    Raises ``ValueError`` naming the archive and the reason; nothing extracted is left behind.
    """
    target = workdir / "artifact"
    target.mkdir()
    try:
        extract(archive, target, max_ratio=max_ratio)
    except (errors.StreamError, OSError) as error:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        raise ValueError(f"{archive} is not a usable model.tar.gz: {error}") from error
    return target
