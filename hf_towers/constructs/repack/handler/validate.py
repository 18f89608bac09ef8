"""Safety rules for archive entries: what may be extracted into a model directory."""

from __future__ import annotations

import posixpath
import tarfile

from .errors import StreamError
from .tarscan import REGULAR, Member

CODE_DIR = "code"
DEVICE_TYPES = {
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
}
ALLOWED = (*REGULAR, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE)


def normalize(name: str) -> str:
    """Archive path as extracted: ``./a//b/`` -> ``a/b``; ``""`` for the root itself."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def in_code_dir(path: str) -> bool:
    """Whether a normalized path is ``code`` or lies under ``code/``."""
    return path == CODE_DIR or path.startswith(CODE_DIR + "/")


class Validator:
    """Checks members one by one; remembers the paths seen so hard links can be resolved."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.links: set[str] = set()
        self.files = 0

    def _resolves_inside(self, path: str, target: str) -> bool:
        """Lexical resolution of a symlink target that never walks through another symlink."""
        stack = [p for p in posixpath.dirname(path).split("/") if p]
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    return False
                stack.pop()
                continue
            stack.append(part)
            if "/".join(stack) in self.links:
                return False
        return True

    def check(self, member: Member) -> str:
        """Return the normalized path of ``member`` or raise ``StreamError``."""
        name = member.name
        where = f"entry {name!r} at offset {member.offset}"
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise StreamError(f"{where} has an absolute path")
        if "\0" in name or ".." in name.split("/"):
            raise StreamError(f"{where} has a path with '..'")
        if member.type in DEVICE_TYPES:
            raise StreamError(f"{where} is a {DEVICE_TYPES[member.type]}")
        if member.type not in ALLOWED:
            raise StreamError(f"{where} has an unsupported type {member.type!r}")
        path = normalize(name)
        if member.type == tarfile.SYMTYPE:
            target = member.linkname
            if not target or target.startswith("/") or not self._resolves_inside(path, target):
                raise StreamError(f"{where} is a symlink pointing outside the archive ({target!r})")
            self.links.add(path)
        elif member.type == tarfile.LNKTYPE:
            target = member.linkname
            if target.startswith("/") or ".." in target.split("/"):
                raise StreamError(
                    f"{where} is a hard link pointing outside the archive ({target!r})"
                )
            if normalize(target) not in self.seen:
                raise StreamError(f"{where} is a hard link to {target!r}, not an earlier entry")
        if member.type in REGULAR:
            self.files += 1
        self.seen.add(path)
        return path
