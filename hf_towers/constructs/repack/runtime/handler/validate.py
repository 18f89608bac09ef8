"""Safety rules for archive entries: what may be extracted into a model directory.

An entry is accepted only when the five readers the tests check against (GNU tar, Python
``tarfile`` with the ``data`` filter, bsdtar, Go's ``archive/tar``, 7-Zip) extract it to the same
thing, inside the folder; ``tests/constructs/repack/test_differential.py`` checks it on a corpus of
hostile archives. The reasons quoted in the messages are what those readers were seen doing.
"""

from __future__ import annotations

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

DIR, FILE, LINKED, SYMLINK = "dir", "file", "linked", "symlink"
"""Kinds of path: a directory, a regular file, a file sharing its data with a hard link, a
symlink."""
DESCRIBED = {DIR: "directory", FILE: "file", LINKED: "hard-linked file", SYMLINK: "symlink"}


def normalize(name: str) -> str:
    """Archive path as extracted: ``./a//b/`` -> ``a/b``; ``""`` for the root itself."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def in_code_dir(path: str) -> bool:
    """Whether a normalized path is ``code`` or lies under ``code/``."""
    return path == CODE_DIR or path.startswith(CODE_DIR + "/")


def _utf8(text: str) -> bool:
    """Names are decoded with ``surrogateescape``: bytes that are not UTF-8 became surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(member: Member) -> str:
    if member.type == tarfile.DIRTYPE:
        return DIR
    if member.type == tarfile.SYMTYPE:
        return SYMLINK
    if member.type == tarfile.LNKTYPE:
        return LINKED
    return FILE


class Validator:
    """Checks members one by one; remembers what each path is so later entries can be judged.

    The state is plain JSON-able attributes (dicts of str, an int), so it can be checkpointed.
    """

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}
        """Normalized path -> ``dir``/``file``/``linked``/``symlink``; implicit parents included."""
        self.spelling: dict[str, str] = {}
        """Normalized path -> the name its first entry used (a directory's trailing ``/`` off)."""
        self.files = 0

    def check(self, member: Member) -> str:
        """Return the normalized path of ``member`` or raise ``StreamError``."""
        name = member.name
        where = f"entry {name!r} at offset {member.offset}"
        self._check_name(name, where)
        if member.type in DEVICE_TYPES:
            raise StreamError(f"{where} is a {DEVICE_TYPES[member.type]}")
        if member.type not in ALLOWED:
            raise StreamError(f"{where} has an unsupported type {member.type!r}")
        path = normalize(name)
        kind = _kind(member)
        if not path:
            if kind == DIR:
                return path
            raise StreamError(f"{where} names the extraction folder itself but is not a directory")
        if path == CODE_DIR and kind != DIR:
            raise StreamError(
                f"{where} is a {DESCRIBED[kind]} named 'code': it must be a directory (the "
                "tower's code/ replaces it)"
            )
        spelled = name.rstrip("/") if kind == DIR else name
        first = self.spelling.setdefault(path, spelled)
        if first != spelled:
            raise StreamError(
                f"{where} is the path of the earlier entry {first!r} written differently: "
                "refused so that each path has one name (readers that pick members by name, "
                "such as `tar -x NAME` or Python tarfile's getmember, see two entries)"
            )
        self._check_parents(path, where)
        before = self.kinds.get(path)
        if before is not None and not (before == kind and kind in (DIR, FILE)):
            raise StreamError(
                f"{where} replaces the earlier {DESCRIBED[before]} {path!r} with a "
                f"{DESCRIBED[kind]}: readers disagree (Python tarfile writes through a symlink "
                "or into every hard link of a file, 7-Zip, GNU tar and bsdtar replace it or fail)"
            )
        if kind == SYMLINK:
            self._check_symlink(member, path, where)
        elif kind == LINKED:
            self.kinds[self._hard_link_target(member, where)] = LINKED
        if member.type in REGULAR:
            self.files += 1
        self.kinds[path] = kind
        return path

    @staticmethod
    def _check_name(name: str, where: str) -> None:
        if not name:
            raise StreamError(f"{where} has an empty name")
        if "\0" in name:
            raise StreamError(
                f"{where} has a NUL byte in its name: readers disagree on where the name ends"
            )
        if not _utf8(name):
            # S3 object keys are UTF-8 (uncompressed mode writes one object per file):
            # https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html
            raise StreamError(f"{where} has a name that is not valid UTF-8")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise StreamError(f"{where} has an absolute path")
        if ".." in name.split("/"):
            raise StreamError(f"{where} has a path with '..'")

    def _check_parents(self, path: str, where: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            kind = self.kinds.setdefault(parent, DIR)
            if kind == SYMLINK:
                raise StreamError(
                    f"{where} lies below the symlink {parent!r}: readers disagree (GNU tar and "
                    "Python tarfile write through the symlink, bsdtar, Go and 7-Zip refuse)"
                )
            if kind != DIR:
                raise StreamError(
                    f"{where} lies below {parent!r}, which is a {DESCRIBED[kind]}: readers fail "
                    "to extract it"
                )

    def _check_symlink(self, member: Member, path: str, where: str) -> None:
        target = member.linkname
        if not target or "\0" in target:
            raise StreamError(f"{where} is a symlink with an empty target or a NUL byte in it")
        if target.startswith("/"):
            raise StreamError(f"{where} is a symlink pointing outside the archive ({target!r})")
        stack = path.split("/")[:-1]
        dotdot = False
        via = ""
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    raise StreamError(
                        f"{where} is a symlink pointing outside the archive ({target!r})"
                    )
                stack.pop()
                dotdot = True
                continue
            stack.append(part)
            if not via and self.kinds.get("/".join(stack)) == SYMLINK:
                via = "/".join(stack)
        if via:
            raise StreamError(
                f"{where} is a symlink to {target!r}, which goes through the earlier symlink "
                f"{via!r}: 7-Zip refuses a link via another link (the other readers create it); "
                f"point it at the file itself, or put it before {via!r} in the archive"
            )
        if dotdot:
            raise StreamError(
                f"{where} is a symlink to {target!r}, which has '..': 7-Zip refuses to create it "
                "('dangerous link path'; the other readers create it); use a target below the "
                "symlink's own folder"
            )

    def _hard_link_target(self, member: Member, where: str) -> str:
        target = member.linkname
        if not target or "\0" in target:
            raise StreamError(f"{where} is a hard link with an empty target or a NUL byte in it")
        if target.startswith("/") or ".." in target.split("/"):
            raise StreamError(f"{where} is a hard link pointing outside the archive ({target!r})")
        path = normalize(target)
        kind = self.kinds.get(path)
        if kind is None or target.endswith("/"):
            raise StreamError(f"{where} is a hard link to {target!r}, not an earlier entry")
        if kind == DIR:
            raise StreamError(
                f"{where} is a hard link to the directory {target!r}: readers disagree (Python "
                "tarfile makes a directory, the others fail)"
            )
        if kind == SYMLINK:
            raise StreamError(
                f"{where} is a hard link to the symlink {target!r}: readers disagree (7-Zip "
                "writes an empty file, the others link the symlink)"
            )
        return path
