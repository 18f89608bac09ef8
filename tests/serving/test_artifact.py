"""``serve``'s extraction of a ``model.tar.gz``: the repack handler's rules, nothing else."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from hf_towers.constructs.repack.runtime.handler import validate as validate_module
from hf_towers.serving import artifact
from tests.constructs.repack.archives import code_zip

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


Entry = tuple[tarfile.TarInfo, bytes | None]


def entry(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, linkname: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Entry:
    return entry(name, kind=kind, linkname=target)


def tar_gz(path: Path, entries: list[Entry], *, level: int = 6) -> Path:
    """The entries in order (GNU format), gzip-compressed at ``level``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(gzip.compress(raw.getvalue(), compresslevel=level, mtime=0))
    return path


def bomb(path: Path, size: int = 64 * MIB) -> Path:
    """``config.json`` and ``size`` zero bytes: gzip -9 inflates them about 1029:1."""
    return tar_gz(path, [entry("config.json", b"{}"), entry("zeros.bin", bytes(size))], level=9)


def test_extracts_files_folders_and_links_the_repack_accepts(tmp_path: Path) -> None:
    archive = tar_gz(
        tmp_path / "model.tar.gz",
        [
            entry("config.json", b'{"a": 1}'),
            entry("weights/model.safetensors", b"w" * 1000),
            link("model.safetensors", "weights/model.safetensors"),
            link("weights/current", "model.safetensors"),
            link("copy.safetensors", "weights/model.safetensors", tarfile.LNKTYPE),
        ],
    )
    before = hashlib.sha256(archive.read_bytes()).hexdigest()
    target = artifact.unpack_artifact(archive, tmp_path)
    assert (target / "config.json").read_bytes() == b'{"a": 1}'
    assert (target / "model.safetensors").readlink() == Path("weights/model.safetensors")
    assert (target / "weights" / "current").readlink() == Path("model.safetensors")
    assert (target / "model.safetensors").read_bytes() == b"w" * 1000
    copy = target / "copy.safetensors"
    assert not copy.is_symlink() and copy.samefile(target / "weights" / "model.safetensors")
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == before  # only read


def test_a_1029_to_1_bomb_is_refused_with_the_archive_and_the_reason(tmp_path: Path) -> None:
    archive = bomb(tmp_path / "model.tar.gz")
    assert 64 * MIB / archive.stat().st_size > 1000
    with pytest.raises(ValueError) as error:
        artifact.unpack_artifact(archive, tmp_path)
    message = str(error.value)
    assert message.startswith(f"{archive} is not a usable model.tar.gz: ")
    assert "decompression ratio exceeds the bound of 100 " in message
    assert not list((tmp_path / "artifact").iterdir())  # what was written is removed


def test_the_bound_is_the_towers_max_decompression_ratio(tmp_path: Path) -> None:
    archive = bomb(tmp_path / "model.tar.gz")
    target = artifact.unpack_artifact(archive, tmp_path, max_ratio=2000)
    assert (target / "zeros.bin").stat().st_size == 64 * MIB


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        (
            [entry("../escaped.json", b"x")],
            r"entry '\.\./escaped\.json' at offset 1024 has a path with '\.\.'",
        ),
        ([entry("{scratch}/abs.json", b"x")], r"abs\.json' at offset 1024 has an absolute path"),
        (
            [link("up", "..")],
            r"entry 'up' at offset 1024 is a symlink pointing outside the archive",
        ),
        (
            [link("pw", "/etc/passwd")],
            r"'pw' at offset 1024 is a symlink pointing outside the archive",
        ),
        (
            [link("pw", "/etc/passwd", tarfile.LNKTYPE)],
            r"'pw' at offset 1024 is a hard link pointing outside the archive",
        ),
        ([entry("pipe", kind=tarfile.FIFOTYPE)], r"entry 'pipe' at offset 1024 is a fifo"),
        (
            [entry("weights/a.bin", b"a"), link("w", "weights"), entry("w/evil.bin", b"evil")],
            r"entry 'w/evil\.bin' at offset \d+ lies below the symlink 'w': readers disagree",
        ),
    ],
    ids=["dotdot", "absolute", "symlink-up", "symlink-abs", "hardlink-abs", "fifo", "through-link"],
)
def test_an_entry_the_repack_refuses_is_refused(
    tmp_path: Path, entries: list[Entry], reason: str
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for info, _ in entries:
        info.name = info.name.format(scratch=scratch)
    archive = tar_gz(tmp_path / "model.tar.gz", [entry("config.json", b"{}"), *entries])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ValueError, match=reason) as error:
        artifact.unpack_artifact(archive, work)
    assert str(error.value).startswith(f"{archive} is not a usable model.tar.gz: ")
    assert not list((work / "artifact").iterdir())  # what was written before is removed
    assert not (work / "escaped.json").exists() and not list(scratch.iterdir())
    assert not (tmp_path / "weights").exists()


def test_a_later_entry_replaces_a_symlink_without_writing_through_it(tmp_path: Path) -> None:
    entries = [entry("config.json", b"{}"), link("model.bin", "config.json")]
    archive = tar_gz(tmp_path / "model.tar.gz", [*entries, entry("model.bin", b"weight")])
    try:
        target = artifact.unpack_artifact(archive, tmp_path)
    except ValueError as error:  # a validator that refuses duplicate names may stop it earlier
        assert "model.bin" in str(error)
        return
    assert (target / "config.json").read_bytes() == b"{}"
    assert not (target / "model.bin").is_symlink()
    assert (target / "model.bin").read_bytes() == b"weight"


def test_not_gzip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar"
    with tarfile.open(archive, "w") as tar:
        tar.addfile(tarfile.TarInfo("config.json"), io.BytesIO(b""))
    with pytest.raises(ValueError, match=r"model\.tar is not a usable model\.tar\.gz: not a gzip"):
        artifact.unpack_artifact(archive, tmp_path)


def test_loading_the_rules_imports_neither_the_cdk_nor_torch() -> None:
    # The rules are the repack handler's own files, not a copy.
    loaded = sys.modules[f"{artifact.HANDLER_PACKAGE}.validate"].__file__
    assert loaded == str(artifact.HANDLER_DIR / "validate.py")
    assert Path(validate_module.__file__).parent == artifact.HANDLER_DIR
    code = (
        "import sys, hf_towers.serving.artifact; "
        "print(sorted(m for m in ('aws_cdk', 'jsii', 'torch') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.stdout.strip() == "[]"


def test_a_fast_path_repacked_artifact_is_extracted_whole(tmp_path: Path) -> None:
    """The repack's own output (padding members, code member, source) reads back exactly."""
    from hf_towers.constructs.repack.runtime.handler import codepack

    bundle = codepack.load_zip(
        code_zip({"inference.py": b"def model_fn(d):\n    return d\n"}),
        entry_module="inference.py",
    )
    source = tar_gz(tmp_path / "source.tar.gz", [entry("config.json", b"{}")]).read_bytes()
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(codepack.first_part(bundle, min_size=5 * MIB) + source)
    target = artifact.unpack_artifact(archive, tmp_path)
    got = sorted(p.relative_to(target).as_posix() for p in target.rglob("*"))
    assert got == ["code", "code/inference.py", "config.json"]
    assert (target / "code" / "inference.py").read_bytes() == b"def model_fn(d):\n    return d\n"
