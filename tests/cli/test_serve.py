"""``serve``: registration, a served request over loopback, and a clean stop."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from hf_towers.cli import serve

REPO = Path(__file__).resolve().parents[2]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser()
    serve.add_parser(top.add_subparsers(dest="command", required=True))
    return top


def test_registers_serve_with_defaults() -> None:
    args = parser().parse_args(["serve", "--model_type", "text", "--model_dir", "/m"])
    assert args.func is serve.run
    assert (args.model_type, args.model_dir, args.port, args.host) == (
        "text",
        Path("/m"),
        8080,
        "127.0.0.1",
    )
    assert args.max_decompression_ratio == 100.0  # the repack's default
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--model_type", "audio", "--model_dir", "/m"])


def test_missing_model_dir_is_exit_2(tmp_path, capsys) -> None:
    args = parser().parse_args(
        ["serve", "--model_type", "text", "--model_dir", str(tmp_path / "x")]
    )
    assert args.func(args) == 2
    assert "is neither a directory nor a tar archive" in capsys.readouterr().err
    (tmp_path / "weights.bin").write_bytes(b"not a tar")
    args.model_dir = tmp_path / "weights.bin"
    assert args.func(args) == 2
    assert "weights.bin is neither a directory nor a tar archive" in capsys.readouterr().err


def test_an_unsafe_archive_is_exit_2_naming_the_member(tmp_path, capsys) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("model.safetensors")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    args = parser().parse_args(["serve", "--model_type", "text", "--model_dir", str(archive)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"serve: {archive} is not a usable model.tar.gz: ")
    assert "entry 'model.safetensors' at offset 0 is a symlink pointing outside the archive" in err


def bomb(path: Path) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 * 1024 * 1024
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    path.write_bytes(gzip.compress(raw.getvalue(), compresslevel=9, mtime=0))
    return path


def test_a_gzip_bomb_is_exit_2_with_the_reason(tmp_path: Path, capsys) -> None:
    from hf_towers.cli import main

    archive = bomb(tmp_path / "model.tar.gz")
    assert main(["serve", "--model_type", "text", "--model_dir", str(archive)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"serve: {archive} is not a usable model.tar.gz: ")
    assert "decompression ratio exceeds the bound of 100 " in err


BASE = ["serve", "--model_type", "text", "--model_dir", "/m"]


def test_max_decompression_ratio_flag(capsys) -> None:
    args = parser().parse_args([*BASE, "--max_decompression_ratio", "2000"])
    assert args.max_decompression_ratio == 2000.0
    for bad in ("1", "abc", "20000"):
        with pytest.raises(SystemExit) as exit_:
            parser().parse_args([*BASE, "--max_decompression_ratio", bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --max_decompression_ratio: {bad!r} is not a number above 1" in err
        assert "max_decompression_ratio (default 100)" in err


def test_importing_the_command_does_not_import_torch() -> None:
    code = "import sys, hf_towers.cli.serve; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.stdout.strip() == "False"


def test_serves_a_plain_checkpoint_over_loopback(tmp_path, monkeypatch, capsys) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    from hf_towers.serving import local_server
    from hf_towers.serving.toy_models import build_clip

    build_clip(tmp_path / "clip")
    servers: list[local_server.LocalServer] = []
    real_build = local_server.build_server

    def build(*args, **kwargs):
        servers.append(real_build(*args, **kwargs))
        return servers[-1]

    monkeypatch.setattr(local_server, "build_server", build)
    args = parser().parse_args(
        ["serve", "--model_type", "text", "--model_dir", str(tmp_path / "clip"), "--port", "0"]
    )
    exit_codes: list[int] = []
    thread = threading.Thread(target=lambda: exit_codes.append(args.func(args)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not servers and time.monotonic() < deadline:
        time.sleep(0.05)
    server = servers[0]
    try:
        request = urllib.request.Request(
            f"{server.url}/invocations",
            data=b'{"inputs": "hello"}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert len(answer["embeddings"][0]) == 16
        assert answer["truncated"] == [False]
    finally:
        server.shutdown()
        thread.join(10)
    assert exit_codes == [0]
    assert (
        f"Serving the text tower of {tmp_path / 'clip'} on {server.url}" in capsys.readouterr().out
    )
    assert not server.workdir.exists()


def test_task_models_need_hf_task_and_towers_refuse_it(tmp_path, capsys) -> None:
    from hf_towers.cli import main

    assert main(["serve", "--model_type", "task", "--model_dir", str(tmp_path)]) == 2
    assert "--model_type task needs --hf_task" in capsys.readouterr().err
    argv = ["serve", "--model_type", "text", "--hf_task", "question-answering"]
    assert main([*argv, "--model_dir", str(tmp_path)]) == 2
    assert "--hf_task is for --model_type task" in capsys.readouterr().err
