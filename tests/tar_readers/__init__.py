"""The five real tar readers the repack handler's verdicts are checked against.

Each reader extracts a ``.tar.gz`` into its own folder, and the result is a ``Tree``: every path
under the folder as a file (sha256), a directory or a symlink (its target), as ``os.lstat`` sees
it. The readers are GNU tar, Python ``tarfile`` with the ``data`` filter, bsdtar (libarchive, the
default ``tar`` of macOS and Windows), Go's ``archive/tar`` (``main.go`` here, built once per
machine) and 7-Zip. ``make test`` installs the Debian packages (``make readers``); a missing reader
fails ``require_readers()`` with the package to install, it is never skipped.

Hostile archives may try to write outside the folder: each extraction runs in
``<scratch>/<reader>/a/b/dest`` so ``..`` paths land inside ``<scratch>/<reader>``, and anything
written there outside ``dest`` is reported in ``Extraction.escaped``. Absolute targets in test
archives must point into the test's own scratch folder, never at system paths: the tests run as root
in CI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
GO_SOURCE = HERE / "main.go"

READERS = ("gnu-tar", "python-tarfile", "bsdtar", "go-archive-tar", "7zip")
"""Every reader, by the name tests and messages use."""

PACKAGES = {
    "gnu-tar": ("tar", "tar"),
    "bsdtar": ("bsdtar", "libarchive-tools"),
    "go-archive-tar": ("go", "golang-go"),
    "7zip": ("7z", "p7zip-full"),
}
"""Reader -> (command it needs on PATH, Debian package that provides it)."""

TIMEOUT = 120

Node = tuple[str, str]
"""``("file", sha256)``, ``("dir", "")`` or ``("symlink", target)``."""
Tree = dict[str, Node]
"""Relative POSIX path -> node."""


@dataclass
class Extraction:
    reader: str
    ok: bool
    """The reader exited 0 (warnings on stderr do not count as failure)."""
    tree: Tree = field(default_factory=dict)
    """What it wrote into its folder (also when it failed half-way)."""
    escaped: list[str] = field(default_factory=list)
    """Paths it wrote outside its folder (relative to the reader's scratch folder)."""
    error: str = ""


def missing_readers() -> list[str]:
    """``"<reader>: install the Debian package <pkg> (command <cmd> not found)"`` per gap."""
    out = []
    for reader, (command, package) in PACKAGES.items():
        if shutil.which(command) is None:
            out.append(
                f"{reader}: command {command!r} not found; install the Debian package {package} "
                "(`make readers` does)"
            )
    return out


def require_readers() -> None:
    """Fail (never skip) when a reader is missing, naming the package to install."""
    import pytest

    missing = missing_readers()
    if missing:
        pytest.fail("tar readers missing:\n  " + "\n  ".join(missing), pytrace=False)


def _cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hf_towers"
    root.mkdir(parents=True, exist_ok=True)
    return root


def go_reader() -> Path:
    """The Go reader binary, built from ``main.go`` once per content (offline: stdlib only)."""
    digest = hashlib.sha256(GO_SOURCE.read_bytes()).hexdigest()[:16]
    binary = _cache_dir() / f"go-tar-reader-{digest}"
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "GOCACHE": str(Path(tmp) / "gocache"),
            "GOPATH": str(Path(tmp) / "gopath"),
            "GO111MODULE": "off",
            "GOFLAGS": "",
            "CGO_ENABLED": "0",
        }
        partial = binary.with_suffix(f".{os.getpid()}.part")
        subprocess.run(
            ["go", "build", "-o", str(partial), str(GO_SOURCE)],
            check=True,
            env=env,
            capture_output=True,
            timeout=300,
        )
        partial.replace(binary)
    return binary


def tree(root: Path) -> Tree:
    """Every path under ``root`` (not following symlinks)."""
    out: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("symlink", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", "")
            elif path.is_file():
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                out[rel] = ("special", "")
    return out


_PYTHON_READER = """
import sys, tarfile
with tarfile.open(sys.argv[1], "r:gz") as tar:
    tar.extractall(sys.argv[2], filter="data")
"""


def _command(reader: str, archive: Path, dest: Path, work: Path) -> list[str] | None:
    if reader == "gnu-tar":
        return [
            "tar",
            "--no-same-owner",
            "--no-same-permissions",
            "-xzf",
            str(archive),
            "-C",
            str(dest),
        ]
    if reader == "python-tarfile":
        return [sys.executable, "-c", _PYTHON_READER, str(archive), str(dest)]
    if reader == "bsdtar":
        return ["bsdtar", "-xf", str(archive), "-C", str(dest)]
    if reader == "go-archive-tar":
        return None  # stdin
    if reader == "7zip":
        return None  # two steps
    raise ValueError(f"unknown reader {reader!r}")


def extract(reader: str, archive: Path, scratch: Path) -> Extraction:
    """Extract ``archive`` with ``reader`` under ``scratch/<reader>/``."""
    base = scratch / reader
    dest = base / "a" / "b" / "dest"
    dest.mkdir(parents=True)
    work = scratch / f".{reader}-work"
    work.mkdir()
    result: subprocess.CompletedProcess[bytes]
    if reader == "go-archive-tar":
        with archive.open("rb") as stdin:
            result = subprocess.run(
                [str(go_reader()), str(dest)], stdin=stdin, capture_output=True, timeout=TIMEOUT
            )
    elif reader == "7zip":
        inner = work / "inner.tar"
        with inner.open("wb") as out:
            result = subprocess.run(
                ["7z", "x", "-tgzip", "-so", str(archive)],
                stdout=out,
                stderr=subprocess.PIPE,
                timeout=TIMEOUT,
            )
        if result.returncode == 0:
            result = subprocess.run(
                ["7z", "x", "-ttar", "-y", "-snl", f"-o{dest}", str(inner)],
                capture_output=True,
                timeout=TIMEOUT,
            )
    else:
        command = _command(reader, archive, dest, work)
        assert command is not None
        result = subprocess.run(command, capture_output=True, timeout=TIMEOUT)
    escaped = [
        path
        for path in tree(base)
        if not (path + "/").startswith("a/b/dest/") and path not in ("a", "a/b", "a/b/dest")
    ]
    shutil.rmtree(work, ignore_errors=True)
    return Extraction(
        reader=reader,
        ok=result.returncode == 0,
        tree=tree(dest),
        escaped=escaped,
        error=(result.stderr or b"").decode(errors="replace").strip()[-2000:],
    )


def extract_all(archive: Path | bytes, scratch: Path | None = None) -> dict[str, Extraction]:
    """Every reader's extraction of ``archive`` (a path or the ``.tar.gz`` bytes)."""
    require_readers()
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        root = Path(tmp)
        if isinstance(archive, bytes):
            path = root / "archive.tar.gz"
            path.write_bytes(archive)
        else:
            path = archive
        return {reader: extract(reader, path, root) for reader in READERS}


def python_reads(archive: Path) -> list[str]:
    """Member names as Python's ``tarfile`` lists them (a quick cross-check helper)."""
    with tarfile.open(archive, "r:gz") as tar:
        return tar.getnames()
