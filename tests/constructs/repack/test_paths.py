"""Fast path, stream path and uncompressed output against a real (moto) S3 endpoint."""

from __future__ import annotations

import dataclasses
import gzip
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hf_towers.constructs.repack.runtime.handler import compressed, prefix
from hf_towers.constructs.repack.runtime.handler.errors import RepackError
from hf_towers.constructs.repack.runtime.handler.index import build_job
from hf_towers.constructs.repack.runtime.handler.job import load_state, save_state
from hf_towers.constructs.repack.runtime.handler.props import MIN_PART_SIZE
from hf_towers.constructs.repack.runtime.handler.s3io import Multipart, client
from hf_towers.constructs.repack.runtime.handler.source import Source

from .archives import (
    INFERENCE,
    REQUIREMENTS,
    check_archive,
    code_zip,
    expected_tree,
    tar_gz,
    weights,
)
from .conftest import World

MIB = 1024 * 1024
CONFIG = b'{"model_type": "clip"}'


def forever() -> float:
    return 900.0


def model_files(size: int = 2 * MIB) -> dict[str, bytes]:
    return {
        "config.json": CONFIG,
        "tokenizer/tokenizer.json": b'{"vocab": {}}' * 100,
        "model.safetensors": weights(size),
    }


def with_code(files: dict[str, bytes]) -> dict[str, bytes]:
    return {**files, "code/inference.py": INFERENCE, "code/requirements.txt": REQUIREMENTS}


def parts_of(world: World, key: str) -> list[int]:
    sizes = []
    n = 1
    while True:
        head = world.s3.head_object(Bucket=world.out_bucket, Key=key, PartNumber=n)
        sizes.append(int(head["ContentLength"]))
        if n >= int(head.get("PartsCount", 1)):
            return sizes
        n += 1


def test_fast_path_adds_code_without_rewriting_the_source(world: World) -> None:
    files = model_files()
    source = tar_gz(files)
    key = world.put_source(source)
    job = build_job(client(), world.properties(key))
    assert compressed.run(client(), job, forever)
    out = world.get(job.out_key)
    assert out.endswith(source)  # the original bytes, copied server-side, end the artifact
    assert check_archive(out) == expected_tree(with_code(files))
    sizes = parts_of(world, job.out_key)
    assert sizes[0] >= MIN_PART_SIZE and sizes[0] < MIN_PART_SIZE + MIB
    assert sum(sizes[1:]) == len(source)
    assert world.open_uploads() == [] and load_state(client(), job) is None
    head = world.s3.head_object(Bucket=world.out_bucket, Key=job.out_key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert job.out_key == f"text/{job.digest}/model.tar.gz"


def test_fast_path_copies_several_ranges_and_is_idempotent(world: World) -> None:
    files = model_files(12 * MIB)
    source = tar_gz(files, level=1)
    key = world.put_source(source)
    job = dataclasses.replace(build_job(client(), world.properties(key)), copy_part_size=5 * MIB)
    assert compressed.run(client(), job, forever)
    sizes = parts_of(world, job.out_key)
    assert len(sizes) == 1 + 3 and sizes[1] == 5 * MIB
    out = world.get(job.out_key)
    assert check_archive(out) == expected_tree(with_code(files))
    etag = world.s3.head_object(Bucket=world.out_bucket, Key=job.out_key)["ETag"]
    assert compressed.run(client(), job, forever)  # retry: nothing rewritten
    assert world.s3.head_object(Bucket=world.out_bucket, Key=job.out_key)["ETag"] == etag


def open_parts(world: World) -> list[int]:
    """Part numbers of the one open multipart upload."""
    (upload,) = world.open_uploads()
    parts = world.s3.list_parts(
        Bucket=world.out_bucket, Key=upload["Key"], UploadId=upload["UploadId"]
    ).get("Parts", [])
    return sorted(int(p["PartNumber"]) for p in parts)


def test_fast_path_copies_while_the_source_is_validated(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server-side copies start while the validation read streams, not after it."""
    files = model_files(12 * MIB)
    key = world.put_source(tar_gz(files, level=1))
    job = dataclasses.replace(build_job(client(), world.properties(key)), copy_part_size=5 * MIB)
    copying = threading.Event()
    seen_while_validating: list[bool] = []
    real_copy, real_events = Multipart.copy, Source.events

    def copy(self: Multipart, *args: Any, **kwargs: Any) -> str:
        copying.set()
        return real_copy(self, *args, **kwargs)

    def events(self: Source) -> Iterator[Any]:
        yield from real_events(self)
        # The scan's last event was consumed: has a copy started before validation ended?
        seen_while_validating.append(copying.wait(10))

    monkeypatch.setattr(Multipart, "copy", copy)
    monkeypatch.setattr(Source, "events", events)
    assert compressed.run(client(), job, forever)
    assert seen_while_validating == [True]
    assert check_archive(world.get(job.out_key)) == expected_tree(with_code(files))


def test_fast_path_resumes_when_time_runs_out_during_validation(world: World) -> None:
    files = model_files(12 * MIB)
    key = world.put_source(tar_gz(files, level=1))
    job = dataclasses.replace(build_job(client(), world.properties(key)), copy_part_size=5 * MIB)
    calls = iter([900.0] * 3)

    def clock() -> float:  # three scan events, then out of time
        return next(calls, 10.0)

    assert not compressed.run(client(), job, clock)
    state = load_state(client(), job)
    assert state is not None and state["mode"] == compressed.VALIDATING
    assert state["scan"] is not None  # resumes the read where it stopped
    assert open_parts(world)[0] == 1  # parts started before the stop were finished, and kept
    assert compressed.run(client(), job, forever)
    assert check_archive(world.get(job.out_key)) == expected_tree(with_code(files))
    assert world.open_uploads() == [] and load_state(client(), job) is None


def test_fast_path_resumes_when_time_runs_out_while_copying(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = model_files(12 * MIB)
    key = world.put_source(tar_gz(files, level=1))
    job = dataclasses.replace(build_job(client(), world.properties(key)), copy_part_size=5 * MIB)
    monkeypatch.setattr(compressed, "COPY_WORKERS", 1)
    validated = threading.Event()
    real_copy = Multipart.copy

    def copy(self: Multipart, *args: Any, **kwargs: Any) -> str:
        validated.wait(10)  # no copy finishes before the validation
        return real_copy(self, *args, **kwargs)

    def clock() -> float:  # time until the source is validated, then none
        state = load_state(client(), job) or {}
        if state.get("mode") == "fast":
            validated.set()
            return 10.0
        return 900.0

    monkeypatch.setattr(Multipart, "copy", copy)
    assert not compressed.run(client(), job, clock)
    state = load_state(client(), job)
    assert state is not None and state["mode"] == "fast"
    parts = open_parts(world)  # part 1, and the copy under way when time ran out (if any)
    assert parts in ([1], [1, 2]), parts
    assert compressed.run(client(), job, forever)
    assert check_archive(world.get(job.out_key)) == expected_tree(with_code(files))
    assert world.open_uploads() == [] and load_state(client(), job) is None


def test_refused_source_aborts_the_copies_under_way(world: World) -> None:
    """A bad entry after the weights: the copies that already ran are aborted with the upload."""
    import tarfile

    info = tarfile.TarInfo("pipe")
    info.type = tarfile.FIFOTYPE
    key = world.put_source(tar_gz(model_files(12 * MIB), extra=[(info, None)], level=1))
    job = dataclasses.replace(build_job(client(), world.properties(key)), copy_part_size=5 * MIB)
    with pytest.raises(RepackError, match="is a fifo"):
        compressed.run(client(), job, forever)
    assert world.open_uploads() == [] and world.out_keys() == []
    assert load_state(client(), job) is None


def test_stream_path_with_code_first_reuses_the_empty_upload(world: World) -> None:
    files = model_files(3 * MIB)
    key = world.put_source(tar_gz({"code/inference.py": b"old\n", **files}))
    job = build_job(client(), world.properties(key))
    created: list[str] = []
    real_create = Multipart.create.__func__  # type: ignore[attr-defined]

    def create(cls: type[Multipart], *args: Any, **kwargs: Any) -> Multipart:
        upload: Multipart = real_create(cls, *args, **kwargs)
        created.append(upload.upload_id)
        return upload

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Multipart, "create", classmethod(create))
        assert compressed.run(client(), job, forever)
    assert len(created) == 1  # the speculative upload, never aborted
    assert check_archive(world.get(job.out_key)) == expected_tree(with_code(files))


def test_stream_path_replaces_old_code(world: World) -> None:
    files = model_files(3 * MIB)
    old = {**files, "code/inference.py": b"old = True\n", "code/old_helper.py": b"x = 1\n"}
    key = world.put_source(tar_gz(old))
    job = build_job(client(), world.properties(key))
    assert compressed.run(client(), job, forever)
    tree = check_archive(world.get(job.out_key))
    assert tree == expected_tree(with_code(files))
    assert "code/old_helper.py" not in tree
    assert world.open_uploads() == [] and load_state(client(), job) is None


def test_stream_path_multipart_and_resume(world: World) -> None:
    files = model_files(14 * MIB)
    files["zeros.bin"] = bytes(8 * MIB)  # compressible: a gzip member at level 6
    key = world.put_source(tar_gz(with_code(files) | {"code/inference.py": b"old\n"}, level=1))
    job = build_job(client(), world.properties(key))
    budget = iter([900.0] * 1 + [10.0] * 100)
    assert not compressed.run(client(), job, lambda: next(budget))
    state = load_state(client(), job)
    assert state is not None and state["mode"] == "stream"
    done_before = len(state["parts"])
    assert done_before >= 1
    assert compressed.run(client(), job, forever)
    out = world.get(job.out_key)
    assert check_archive(out) == expected_tree(with_code(files))
    sizes = parts_of(world, job.out_key)
    assert len(sizes) > done_before and all(s >= MIN_PART_SIZE for s in sizes[:-1])
    assert world.open_uploads() == []


def test_uncompressed_from_tar_gz(world: World) -> None:
    files = model_files(6 * MIB) | {"code/stale.py": b"stale\n"}
    key = world.put_source(tar_gz(files))
    job = build_job(client(), world.properties(key, Compressed="false"))
    assert job.out_key.endswith("/")
    assert prefix.run(client(), job, forever)
    got = {
        k[len(job.out_key) :]: world.get(k) for k in world.out_keys() if k.startswith(job.out_key)
    }
    want = {k: v for k, v in with_code(files).items() if k != "code/stale.py"}
    assert got == want
    assert prefix.run(client(), job, forever)


def test_uncompressed_from_prefix_is_copied_server_side(world: World) -> None:
    files = {
        "config.json": CONFIG,
        "weights/model.safetensors": weights(MIB),
        "code/inference.py": b"old\n",
    }
    for name, data in files.items():
        world.s3.put_object(Bucket=world.source_bucket, Key=f"models/llm/{name}", Body=data)
    job = build_job(client(), world.properties("models/llm/", Compressed="false"))
    assert prefix.run(client(), job, forever)
    got = {
        k[len(job.out_key) :]: world.get(k) for k in world.out_keys() if k.startswith(job.out_key)
    }
    assert got == with_code({k: v for k, v in files.items() if not k.startswith("code/")})


def test_multi_member_source_is_accepted(world: World) -> None:
    files = model_files(MIB)
    raw = gzip.decompress(tar_gz(files))
    source = gzip.compress(raw[:4096], mtime=0) + gzip.compress(raw[4096:], mtime=0)
    key = world.put_source(source)
    job = build_job(client(), world.properties(key))
    assert compressed.run(client(), job, forever)
    assert check_archive(world.get(job.out_key)) == expected_tree(with_code(files))


def test_content_hash_changes_with_code_and_source(world: World) -> None:
    key = world.put_source(tar_gz(model_files(MIB)))
    first = build_job(client(), world.properties(key))
    assert build_job(client(), world.properties(key)).out_key == first.out_key
    world.put_code(code_zip({"inference.py": b"v = 2\n"}))
    assert build_job(client(), world.properties(key)).out_key != first.out_key
    world.put_code(code_zip())
    world.put_source(tar_gz(model_files(MIB)))
    changed: Any = build_job(client(), world.properties(key))
    assert changed.out_key != first.out_key


def test_stream_path_writes_its_state_every_interval_not_every_part(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = model_files(20 * MIB)
    key = world.put_source(tar_gz({"code/inference.py": b"old\n", **files}, level=1))
    job = dataclasses.replace(build_job(client(), world.properties(key)), part_size=MIN_PART_SIZE)
    writes: list[dict[str, Any]] = []
    real_save = save_state

    def recording_save(s3: Any, job_: Any, state: dict[str, Any]) -> None:
        writes.append(dict(state))
        real_save(s3, job_, state)

    monkeypatch.setattr(compressed, "save_state", recording_save)
    monkeypatch.setattr(compressed, "STATE_INTERVAL", 3600.0)
    assert compressed.run(client(), job, forever)
    assert len(parts_of(world, job.out_key)) >= 3
    # The speculative upload, the stream mode, and the last part: not one write per part.
    assert [w.get("mode") for w in writes] == [compressed.VALIDATING, "stream", "stream"]
    assert writes[-1]["last"] is True
    assert check_archive(world.get(job.out_key)) == expected_tree(with_code(files))
