"""``serve``: registration, a served request over loopback, and a clean stop."""

from __future__ import annotations

import argparse
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
    assert "not a usable model.tar.gz: model.safetensors is a link" in capsys.readouterr().err


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
