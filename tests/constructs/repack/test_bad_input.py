"""Bad inputs end in a ``RepackError`` naming the artifact and the problem, with no upload left."""

from __future__ import annotations

import gzip
import tarfile
import time
from collections.abc import Callable
from typing import cast

import pytest
from botocore.exceptions import ClientError

from hf_towers.constructs.repack.runtime.handler import compressed, index, prefix
from hf_towers.constructs.repack.runtime.handler.errors import RepackError
from hf_towers.constructs.repack.runtime.handler.index import build_job
from hf_towers.constructs.repack.runtime.handler.props import Event
from hf_towers.constructs.repack.runtime.handler.s3io import client, describe

from .archives import check_archive, code_zip, tar_gz, weights
from .conftest import World

MIB = 1024 * 1024


def member(
    name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", data: bytes = b""
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


def gz(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


def truncated() -> bytes:
    good = tar_gz({"config.json": b"{}", "w.bin": weights(MIB)})
    return good[: len(good) // 2]


def corrupt() -> bytes:
    good = bytearray(tar_gz({"config.json": b"{}" * 1000}))
    good[len(good) // 2] ^= 0xFF
    return bytes(good)


def bomb() -> bytes:
    return tar_gz({"zeros.bin": bytes(64 * MIB)}, level=9)


def no_eoa() -> bytes:
    raw = gzip.decompress(tar_gz({"a.txt": b"a"}))
    return gz(raw[:1024])


CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "not gzip": (lambda: b"PK\x03\x04 definitely a zip" * 10, "not a gzip file"),
    "gzip but not tar": (lambda: gz(b"hello world, not a tar archive" * 50), "not a tar archive"),
    "truncated": (truncated, "truncated gzip stream"),
    "corrupt": (corrupt, "corrupt gzip stream"),
    "absolute path": (
        lambda: tar_gz({}, extra=[member("/etc/passwd", data=b"x")]),
        "absolute path",
    ),
    "dot-dot": (lambda: tar_gz({}, extra=[member("a/../../evil", data=b"x")]), "'..'"),
    "symlink outside": (
        lambda: tar_gz(
            {"a.txt": b"a"}, extra=[member("link", tarfile.SYMTYPE, "../../etc/passwd")]
        ),
        "symlink pointing outside",
    ),
    "absolute symlink": (
        lambda: tar_gz({"a.txt": b"a"}, extra=[member("link", tarfile.SYMTYPE, "/etc/passwd")]),
        "symlink pointing outside",
    ),
    "hardlink outside": (
        lambda: tar_gz({"a.txt": b"a"}, extra=[member("hard", tarfile.LNKTYPE, "../outside")]),
        "hard link pointing outside",
    ),
    "char device": (lambda: tar_gz({}, extra=[member("dev", tarfile.CHRTYPE)]), "character device"),
    "block device": (lambda: tar_gz({}, extra=[member("blk", tarfile.BLKTYPE)]), "block device"),
    "fifo": (lambda: tar_gz({}, extra=[member("pipe", tarfile.FIFOTYPE)]), "fifo"),
    "ratio bomb": (bomb, "decompression ratio exceeds"),
    "empty archive": (lambda: gz(b"\0" * 10240), "empty archive"),
    "empty gzip": (lambda: gz(b""), "empty archive"),
    "no end marker": (no_eoa, "truncated tar archive"),
    "trailing garbage": (lambda: tar_gz({"a": b"a"}) + b"garbage!", "trailing data"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_archive_fails_fast_and_cleanly(world: World, case: str) -> None:
    make, problem = CASES[case]
    key = world.put_source(make())
    etag = world.s3.head_object(Bucket=world.source_bucket, Key=key)["ETag"]
    started = time.monotonic()
    with pytest.raises(RepackError) as err:
        job = build_job(client(), world.properties(key))
        compressed.run(client(), job, lambda: 900.0)
    assert time.monotonic() - started < 10
    assert f"s3://{world.source_bucket}/{key}" in str(err.value)
    assert problem in str(err.value)
    assert world.open_uploads() == []
    assert world.out_keys() == []
    assert world.s3.head_object(Bucket=world.source_bucket, Key=key)["ETag"] == etag


def test_bad_entry_after_code_aborts_the_stream_upload(world: World) -> None:
    """A problem found late on the stream path aborts its multipart upload."""
    files = {"code/inference.py": b"old\n", "w.bin": weights(12 * MIB)}
    key = world.put_source(tar_gz(files, extra=[member("pipe", tarfile.FIFOTYPE)], level=1))
    job = build_job(client(), world.properties(key))
    with pytest.raises(RepackError, match="is a fifo"):
        compressed.run(client(), job, lambda: 900.0)
    assert world.open_uploads() == [] and world.out_keys() == []


def test_bad_archive_in_uncompressed_mode(world: World) -> None:
    key = world.put_source(tar_gz({"a": b"a"}, extra=[member("/abs", data=b"x")]))
    job = build_job(client(), world.properties(key, Compressed="false"))
    with pytest.raises(RepackError, match="absolute path"):
        prefix.run(client(), job, lambda: 900.0)
    assert world.open_uploads() == [] and world.out_keys() == []


def test_missing_key(world: World) -> None:
    with pytest.raises(
        RepackError,
        match=rf"s3://{world.source_bucket}/nope.tar.gz: HeadObject: object does not exist",
    ):
        build_job(client(), world.properties("nope.tar.gz"))


def test_missing_bucket(world: World) -> None:
    props = world.properties("m.tar.gz", SourceBucket="no-such-bucket-xyz")
    with pytest.raises(
        RepackError, match=r"s3://no-such-bucket-xyz/m\.tar\.gz: HeadBucket: bucket does not exist"
    ):
        build_job(client(), props)


def test_access_denied_is_named() -> None:
    exc = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")
    assert describe(exc) == "access denied"
    assert str(RepackError("s3://b/k", describe(exc))) == "s3://b/k: access denied"


@pytest.mark.parametrize(
    ("files", "entry", "problem"),
    [
        ({"handler.py": b"x"}, "inference.py", "code directory has no inference.py"),
        ({"inference.py": b"x"}, "serve.py", "code directory has no serve.py"),
    ],
)
def test_code_without_entry_module(
    world: World, files: dict[str, bytes], entry: str, problem: str
) -> None:
    key = world.put_source(tar_gz({"a": b"a"}))
    world.put_code(code_zip(files))
    with pytest.raises(RepackError) as err:
        build_job(client(), world.properties(key, EntryModule=entry))
    assert f"s3://{world.source_bucket}/{world.code_key}" in str(err.value)
    assert problem in str(err.value)


def test_on_event_raises_for_the_provider_to_report_failed(world: World) -> None:
    key = world.put_source(b"not gzip at all")
    event: Event = {"RequestType": "Create", "ResourceProperties": world.properties(key)}
    response = index.on_event(event, None)
    is_complete_event = cast(Event, {**event, **response})
    with pytest.raises(RepackError, match="not a gzip file"):
        index.is_complete(is_complete_event, _Context())
    assert world.open_uploads() == []


def test_hardlink_to_earlier_entry_is_fine_but_not_to_a_missing_one(world: World) -> None:
    ok = tar_gz({"a.txt": b"a"}, extra=[member("b.txt", tarfile.LNKTYPE, "a.txt")])
    key = world.put_source(ok)
    job = build_job(client(), world.properties(key))
    assert compressed.run(client(), job, lambda: 900.0)
    assert check_archive(world.get(job.out_key))["b.txt"] == b"a"
    bad = tar_gz({"a.txt": b"a"}, extra=[member("b.txt", tarfile.LNKTYPE, "zzz.txt")])
    key = world.put_source(bad, key="bad.tar.gz")
    with pytest.raises(RepackError, match="not an earlier entry"):
        compressed.run(client(), build_job(client(), world.properties(key)), lambda: 900.0)


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 900_000
