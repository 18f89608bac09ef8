"""The local endpoint over real HTTP on loopback: same handler, same answers, same errors."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import shutil
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hf_towers.serving import local_server
from hf_towers.serving.handler_host import HandlerHost


def serve(server: local_server.LocalServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def text_server(clip_dir):
    server = local_server.build_server(clip_dir, "text", port=0)
    thread = serve(server)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def post(url: str, body: bytes, content_type: str | None, accept: str | None = None):
    headers = {k: v for k, v in {"Content-Type": content_type, "Accept": accept}.items() if v}
    request = urllib.request.Request(f"{url}/invocations", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_ping_and_text_invocation(text_server) -> None:
    with urllib.request.urlopen(f"{text_server.url}/ping", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "Healthy"}
    status, content_type, body = post(
        text_server.url, b'{"inputs": ["a", "b"]}', "application/json"
    )
    assert (status, content_type) == (200, "application/json")
    answer = json.loads(body)
    assert np.asarray(answer["embeddings"]).shape == (2, 16)
    assert answer["truncated"] == [False, False]


def test_same_answer_as_in_process_handler(text_server, clip_dir, tmp_path) -> None:
    from hf_towers.serving.handler_host import HandlerHost

    view = local_server.container_view(clip_dir, "text", tmp_path)
    host = HandlerHost(view)
    host.load()
    in_process = host.invoke(b"a query", "text/plain", "application/x-npy")
    status, content_type, body = post(
        text_server.url, b"a query", "text/plain", "application/x-npy"
    )
    assert (status, content_type) == (200, "application/x-npy")
    np.testing.assert_array_equal(np.load(io.BytesIO(body)), np.load(io.BytesIO(in_process.body)))


def test_client_error_over_http_then_serving_goes_on(text_server) -> None:
    status, _, body = post(text_server.url, b'{"inputs": 3}', "application/json")
    assert status == 400
    assert "must be a string or a list of strings" in json.loads(body)["message"]
    status, _, body = post(text_server.url, b"hello", "text/plain", "text/csv")
    assert status == 400
    assert "unsupported Accept" in json.loads(body)["message"]
    assert post(text_server.url, b"hello", "text/plain")[0] == 200


def test_routes_and_length(text_server) -> None:
    host, port = text_server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=10)
    connection.request("GET", "/nope")
    response = connection.getresponse()
    assert response.status == 404
    response.read()
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "text/plain")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 411
    assert "Content-Length" in json.loads(response.read())["message"]
    connection.close()
    too_big = local_server.MAX_BODY_BYTES + 1
    connection = http.client.HTTPConnection(str(host), port, timeout=10)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Length", str(too_big))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()


def test_vision_server_over_http(clip_dir) -> None:
    server = local_server.build_server(clip_dir, "vision", port=0)
    thread = serve(server)
    try:
        buffer = io.BytesIO()
        Image.new("RGB", (20, 20), (0, 90, 200)).save(buffer, "JPEG")
        status, _, raw = post(server.url, buffer.getvalue(), "image/jpeg")
        wrapped = json.dumps({"inputs": [base64.b64encode(buffer.getvalue()).decode()] * 2})
        status_json, _, batch = post(server.url, wrapped.encode(), "application/json")
        assert (status, status_json) == (200, 200)
        single = np.asarray(json.loads(raw)["embeddings"])
        np.testing.assert_allclose(
            np.asarray(json.loads(batch)["embeddings"]), np.repeat(single, 2, 0), atol=1e-5
        )
        status, _, body = post(server.url, b"\x89PNG broken", "image/png")
        assert status == 400
        assert "not a decodable" in json.loads(body)["message"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert not server.workdir.exists()


def test_container_view(clip_dir, tmp_path) -> None:
    view = local_server.container_view(clip_dir, "vision", tmp_path)
    assert (view / "code" / "inference.py").read_text() == (
        local_server.MODEL_CODE / "vision" / "inference.py"
    ).read_text()
    assert (view / "model.safetensors").resolve() == (clip_dir / "model.safetensors").resolve()
    repacked = tmp_path / "repacked"
    shutil.copytree(view, repacked, symlinks=False)
    assert local_server.container_view(repacked, "text", tmp_path / "unused") == repacked
    with pytest.raises(ValueError, match="model_type"):
        local_server.container_view(clip_dir, "audio", tmp_path)


def test_failed_load_leaves_no_temporary_folder(tmp_path, monkeypatch) -> None:
    created: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(**kwargs: str) -> str:
        created.append(Path(real_mkdtemp(dir=tmp_path, **kwargs)))
        return str(created[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError):
        local_server.build_server(tmp_path / "empty", "text", port=0)
    assert created
    assert not created[0].exists()


def tar_gz(path: Path, folder: Path, extra: dict[str, Path] | None = None) -> Path:
    """``folder``'s files at the archive root (as SageMaker expects), plus ``extra`` arcnames."""
    with tarfile.open(path, "w:gz") as tar:
        for entry in sorted(folder.iterdir()):
            tar.add(entry, arcname=entry.name)
        for arcname, source in (extra or {}).items():
            tar.add(source, arcname=arcname)
    return path


@pytest.mark.parametrize("with_code", [False, True])
def test_a_model_tar_gz_is_served_and_left_as_it_was(clip_dir, tmp_path, with_code) -> None:
    code = {"code": local_server.MODEL_CODE / "text"} if with_code else {}
    archive = tar_gz(tmp_path / "model.tar.gz", clip_dir, code)
    before = hashlib.sha256(archive.read_bytes()).hexdigest()
    server = local_server.build_server(archive, "text", port=0)
    thread = serve(server)
    try:
        assert (server.workdir / "artifact" / "config.json").is_file()
        status, _, body = post(server.url, b'{"inputs": "a boat"}', "application/json")
        assert status == 200, body
        (tmp_path / "view").mkdir()
        direct = HandlerHost(local_server.container_view(clip_dir, "text", tmp_path / "view"))
        direct.load()
        expected = direct.invoke(b'{"inputs": "a boat"}', "application/json").json()
        assert json.loads(body) == expected
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert not server.workdir.exists()
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == before


def test_an_internal_symlink_the_repack_accepts_is_served(clip_dir, tmp_path) -> None:
    """Weights stored once under ``weights/`` and linked from the root, as some exports do."""
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for entry in sorted(clip_dir.iterdir()):
            arcname = f"weights/{entry.name}" if entry.name == "model.safetensors" else entry.name
            tar.add(entry, arcname=arcname)
        link = tarfile.TarInfo("model.safetensors")
        link.type, link.linkname = tarfile.SYMTYPE, "weights/model.safetensors"
        tar.addfile(link)
    server = local_server.build_server(archive, "text", port=0)
    thread = serve(server)
    try:
        served = server.workdir / "artifact" / "model.safetensors"
        assert served.is_symlink() and served.readlink() == Path("weights/model.safetensors")
        status, _, body = post(server.url, b'{"inputs": "a boat"}', "application/json")
        assert status == 200, body
        (tmp_path / "view").mkdir()
        direct = HandlerHost(local_server.container_view(clip_dir, "text", tmp_path / "view"))
        direct.load()
        assert json.loads(body) == direct.invoke(b'{"inputs": "a boat"}', "application/json").json()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_gzip_bomb_is_refused_before_loading(tmp_path) -> None:
    archive = tmp_path / "model.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 * 1024 * 1024
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    archive.write_bytes(gzip.compress(raw.getvalue(), compresslevel=9, mtime=0))
    with pytest.raises(ValueError, match="decompression ratio exceeds the bound of 100") as error:
        local_server.build_server(archive, "text", port=0)
    assert str(archive) in str(error.value)
