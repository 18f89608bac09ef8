"""``deterministic_tarball``: bytes follow the files' names and content, not their times."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

import pytest

from hf_towers.constructs.tarball import deterministic_tarball


def _folder(root: Path, mtime: int) -> tuple[Path, list[Path]]:
    root.mkdir()
    (root / "pkg").mkdir()
    files = [root / "a.py", root / "pkg" / "b.txt"]
    for index, path in enumerate(files):
        path.write_text(f"file {index}\n")
        os.utime(path, (mtime, mtime))
    return root, files


def test_equal_content_gives_equal_bytes_whatever_the_mtimes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = deterministic_tarball(*_folder(tmp_path / "one", 1_000_000), "first")
    second = deterministic_tarball(*_folder(tmp_path / "two", 2_000_000), "second")
    assert first.parent.name == "first" and second.parent.name == "second"
    assert first.name == second.name  # named by content
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a.py", "pkg/b.txt"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (0, 0, 0, "root", "root")
    }


def test_a_cached_tarball_is_reused_and_other_content_gets_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder, files = _folder(tmp_path / "src", 1_000_000)
    first = deterministic_tarball(folder, files, "cache", compresslevel=6)
    assert deterministic_tarball(folder, files, "cache", compresslevel=6) == first
    files[0].write_text("changed\n")
    assert deterministic_tarball(folder, files, "cache", compresslevel=6) != first
    assert not list(first.parent.glob("*.part"))


def test_bytes_do_not_depend_on_the_process_or_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # a fresh cache
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "a.py").write_text("x = 1\n")
    (folder / "a.py").chmod(0o664)
    first = deterministic_tarball(folder, [folder / "a.py"], "tarball-pid-a").read_bytes()
    (folder / "a.py").chmod(0o644)
    monkeypatch.setattr(os, "getpid", lambda: 424242)
    second = deterministic_tarball(folder, [folder / "a.py"], "tarball-pid-b").read_bytes()
    assert first == second
    assert first[3] & 0x08 == 0  # gzip FLG: no FNAME (it named the partial file, with the pid)
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert [m.mode for m in tar.getmembers()] == [0o644]
