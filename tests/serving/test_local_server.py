"""The local endpoint over real HTTP on loopback: same handler, same answers, same errors."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import shutil
import socket
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
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


def _raw(server: local_server.LocalServer, payload: bytes, timeout: float = 10) -> bytes:
    """Send ``payload`` as it is and read until the server closes the connection."""
    import socket

    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_every_error_is_json_put_and_unknown_methods_included(text_server) -> None:
    host, port = text_server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=10)
    connection.request("PUT", "/invocations", body=b"{}")
    response = connection.getresponse()
    assert (response.status, response.getheader("Allow")) == (405, "POST")
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(response.read())["message"] == "PUT /invocations: use POST"
    connection.close()
    answer = _raw(text_server, b"BREW /invocations HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501") and b"Content-Type: application/json" in head
    assert json.loads(body)["code"] == 501  # was an HTML page


def test_a_stalled_upload_is_closed_after_the_socket_timeout(clip_dir, monkeypatch) -> None:
    """A client that stops mid-body used to keep its thread forever (no socket timeout)."""
    import time

    monkeypatch.setattr(local_server._RequestHandler, "timeout", 1.0)
    server = local_server.build_server(clip_dir, "text", port=0)
    thread = serve(server)
    try:
        started = time.monotonic()
        answer = _raw(
            server,
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"inputs"',
        )
        assert time.monotonic() - started < 5
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        assert "no body byte for 1 s" in json.loads(body)["message"]
        # The connection's slot is free again.
        assert server.connections.acquire(blocking=False)
        server.connections.release()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_two_hundred_concurrent_clients_all_get_an_answer(clip_dir) -> None:
    """With socketserver's backlog of 5, 27 of 200 concurrent connections were reset. Now the
    ones over the connection bound wait in the backlog for a slot and are served too."""
    from concurrent.futures import ThreadPoolExecutor

    server = local_server.build_server(clip_dir, "text", port=0)
    thread = serve(server)
    body = json.dumps({"inputs": "a photo of a cat"}).encode()

    def one(_: int) -> int:
        status, content_type, _answer = post(server.url, body, "application/json")
        assert content_type == "application/json"
        return int(status)

    try:
        with ThreadPoolExecutor(200) as pool:
            statuses = list(pool.map(one, range(200)))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert statuses == [200] * 200


def test_a_connection_that_finds_no_slot_in_time_gets_a_json_503(clip_dir, monkeypatch) -> None:
    import socket

    monkeypatch.setattr(local_server, "QUEUE_SECONDS", 0.5)
    monkeypatch.setattr(local_server._RequestHandler, "timeout", 5.0)
    model = local_server.build_server(clip_dir, "text", port=0)
    model.server_close()  # only its loaded handler is reused
    server = local_server.LocalServer(
        ("127.0.0.1", 0), model.host, model.workdir, max_connections=1
    )
    thread = serve(server)
    host, port = server.server_address[:2]
    try:
        with socket.create_connection((str(host), port)) as holder:  # takes the only slot
            holder.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n")
            answer = _raw(server, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head
        assert json.loads(body)["message"] == "busy: 1 connections in service: retry shortly"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_malloc_arenas_are_bounded_on_glibc() -> None:
    import platform

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert local_server.bound_malloc_arenas() is expected


def test_a_task_model_is_served_by_the_toolkit_pipeline(tmp_path, monkeypatch) -> None:
    """kind: task towers could not be tried locally (serve took vision or text only)."""
    from hf_towers.serving.toy_models import build_distilbert_qa

    build_distilbert_qa(tmp_path)
    monkeypatch.delenv("HF_TASK", raising=False)
    with pytest.raises(ValueError, match="pass --hf_task"):
        local_server.build_server(tmp_path, "task", port=0)
    monkeypatch.setenv("HF_TASK", "question-answering")
    server = local_server.build_server(tmp_path, "task", port=0)
    thread = serve(server)
    context = "paris is the capital of france"
    body = json.dumps({"inputs": {"question": "capital of france?", "context": context}})
    try:
        status, content_type, answer = post(server.url, body.encode(), "application/json")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert (status, content_type) == (200, "application/json")
    found = json.loads(answer)
    assert found["answer"] == context[found["start"] : found["end"]]


def test_memory_stays_flat_under_concurrent_large_images(clip_dir) -> None:
    """Three rounds of 24 large JPEGs from 12 concurrent clients: after the first round has
    warmed the allocator, RSS stays within 120 MiB of it. (Four rounds of 48 1800x1800 JPEGs
    from 16 clients, one process each: 478 -> 550 MiB with the arena cap, 610 -> 670 MiB
    without it.)"""
    from concurrent.futures import ThreadPoolExecutor

    import psutil

    server = local_server.build_server(clip_dir, "vision", port=0)
    thread = serve(server)
    pixels = np.random.default_rng(0).integers(0, 255, (1400, 1400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=70)
    image = buffer.getvalue()
    process = psutil.Process()
    rss: list[int] = []
    try:
        for _ in range(3):
            with ThreadPoolExecutor(12) as pool:
                statuses = set(
                    pool.map(lambda _: post(server.url, image, "image/jpeg")[0], range(24))
                )
            assert statuses == {200}
            rss.append(process.memory_info().rss)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert max(rss) - rss[0] < 120 * 1024 * 1024, [r // 2**20 for r in rss]


def test_accepted_connections_have_nagle_off(clip_dir) -> None:
    """Headers and body leave in two writes; with Nagle on, the body waited for the client's
    delayed ACK (40-50 ms a request on Linux)."""
    server = local_server.build_server(clip_dir, "text", port=0)  # not serving: we accept
    client = socket.create_connection(("127.0.0.1", int(server.server_address[1])), timeout=5)
    try:
        connection, _ = server.get_request()
        assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        connection.close()
    finally:
        client.close()
        server.server_close()


def test_concurrent_clients_share_batches_and_get_their_own_rows(clip_dir) -> None:
    server = local_server.build_server(clip_dir, "text", port=0)
    thread = serve(server)
    texts = [f"text number {i}" for i in range(12)]
    try:
        alone = {t: json.loads(post(server.url, t.encode(), "text/plain")[2]) for t in texts}
        server.batcher.batch_sizes.clear()
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda t: post(server.url, t.encode(), "text/plain"), texts))
        for text, (status, _, body) in zip(texts, answers, strict=True):
            assert status == 200
            np.testing.assert_allclose(
                json.loads(body)["embeddings"], alone[text]["embeddings"], atol=1e-5
            )
        assert sum(server.batcher.batch_sizes) == 12
        assert max(server.batcher.batch_sizes) <= server.batcher.settings.max_requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
