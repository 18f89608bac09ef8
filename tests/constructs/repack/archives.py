"""Builders and checkers of test archives (tar.gz bytes, code zips, extracted trees)."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

INFERENCE = b"def model_fn(model_dir):\n    return model_dir\n"
REQUIREMENTS = b"numpy\n"


def tar_gz(
    files: dict[str, bytes],
    *,
    extra: list[tuple[tarfile.TarInfo, bytes | None]] | None = None,
    level: int = 6,
) -> bytes:
    """A ``.tar.gz`` of ``files`` (sorted, in order) plus raw ``extra`` members."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs: set[str] = set()
        for name in sorted(files):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
        for info, data in extra or []:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue(), compresslevel=level, mtime=0)


def code_zip(files: dict[str, bytes] | None = None) -> bytes:
    """Zip of a code directory (default: ``inference.py`` and ``requirements.txt``)."""
    files = (
        files
        if files is not None
        else {"inference.py": INFERENCE, "requirements.txt": REQUIREMENTS}
    )
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    return raw.getvalue()


def weights(size: int, seed: int = 0) -> bytes:
    """Incompressible bytes (like model weights)."""
    return os.urandom(size) if seed == 0 else bytes((i * seed) % 251 for i in range(size))


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: file contents, ``None`` for directories."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = None if path.is_dir() else path.read_bytes()
    return out


def expected_tree(files: dict[str, bytes]) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for name, data in files.items():
        parts = name.split("/")
        for i in range(1, len(parts)):
            out["/".join(parts[:i])] = None
        out[name] = data
    return dict(sorted(out.items()))


def check_archive(data: bytes) -> dict[str, bytes | None]:
    """Extract with GNU tar and Python tarfile, ``gzip -t`` it; both trees must be equal.

    Returns the tree. Fails on any warning printed by GNU tar or gzip.
    """
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "model.tar.gz"
        archive.write_bytes(data)
        gz = subprocess.run(
            ["gzip", "-t", str(archive)], capture_output=True, text=True, check=False
        )
        assert gz.returncode == 0 and not gz.stderr, gz.stderr
        gnu = Path(tmp) / "gnu"
        gnu.mkdir()
        res = subprocess.run(
            ["tar", "-xzf", str(archive), "-C", str(gnu)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.returncode == 0 and not res.stderr, res.stderr
        py = Path(tmp) / "py"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(py, filter="data")
        gnu_tree, py_tree = tree(gnu), tree(py)
        assert gnu_tree == py_tree
        return gnu_tree
