"""The resumable inflater: output identical to zlib, restart at any access point, checked trailers."""

from __future__ import annotations

import gzip
import itertools
import random
import struct
import zlib
from collections.abc import Iterator

import pytest

from hf_towers.constructs.repack.runtime.handler import gzstream
from hf_towers.constructs.repack.runtime.handler.errors import StreamError
from hf_towers.constructs.repack.runtime.handler.gzstream import Inflater, Point

KIB = 1024
ZLIB = gzstream.load_backend(prefer_zlib_ng=False)
ZLIB_NG = gzstream.load_backend()


@pytest.fixture(autouse=True, params=["zlib-ng", "zlib"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both C inflaters (zlib-ng is pinned in the function's asset; the
    system zlib is the fallback when its wheel does not load)."""
    chosen = ZLIB_NG if request.param == "zlib-ng" else ZLIB
    assert chosen is not None and chosen.name == request.param, "both must load here"
    monkeypatch.setattr(gzstream, "_Z", chosen)
    return str(request.param)


def mixed(size: int) -> bytes:
    """Random and text-like runs: deflate blocks of every kind, boundaries at odd bit offsets."""
    rnd = random.Random(7)
    out = bytearray()
    while len(out) < size:
        out += rnd.randbytes(rnd.randint(1, 64) * KIB)
        out += b" ".join(
            rnd.choice([b"weights", b"tokenizer", b"model", b"x"]) for _ in range(9000)
        )
    return bytes(out[:size])


def chunks(data: bytes, start: int = 0, size: int = 50_000) -> Iterator[bytes]:
    for i in range(start, len(data), size):
        yield data[i : i + size]


def points_of(gz: bytes, span: int) -> tuple[bytes, list[Point]]:
    inflater = Inflater(chunks(gz), max_ratio=1000, span=span)
    out = b"".join(inflater)
    return out, list(inflater._points)


@pytest.mark.parametrize("members", [1, 3])
def test_resuming_at_any_access_point_gives_the_rest_of_the_output(members: int) -> None:
    data = mixed(3 * 1024 * KIB)
    cut = [len(data) * i // members for i in range(members + 1)]
    gz = b"".join(gzip.compress(data[a:b], 6, mtime=0) for a, b in itertools.pairwise(cut))
    out, points = points_of(gz, span=128 * KIB)
    assert out == data == gzip.decompress(gz)
    assert len(points) > 10
    assert any(p.bits for p in points), "no access point at an odd bit offset was exercised"
    assert sum(p.at_member for p in points) >= min(members, 2)
    for point in points:
        point = Point.from_json(point.to_json())
        resumed = Inflater(chunks(gz, point.read_from), max_ratio=1000, start=point)
        assert b"".join(resumed) == data[point.out :], point.out


def test_point_before_returns_the_newest_point_not_after_the_offset() -> None:
    gz = gzip.compress(mixed(2 * 1024 * KIB), 6)
    inflater = Inflater(chunks(gz), max_ratio=1000, span=64 * KIB)
    it = iter(inflater)
    produced = len(next(it)) + len(next(it))
    point = inflater.point_before(produced - 1)
    assert 0 < point.out <= produced - 1
    assert all(p.out > produced - 1 for p in list(inflater._points)[1:])


def _trailer(gz: bytes, crc_delta: int = 0, size_delta: int = 0) -> bytes:
    crc, size = struct.unpack("<II", gz[-8:])
    return gz[:-8] + struct.pack("<II", (crc + crc_delta) & 0xFFFFFFFF, size + size_delta)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda gz: _trailer(gz, crc_delta=1), "corrupt gzip stream (incorrect data check)"),
        (lambda gz: _trailer(gz, size_delta=1), "corrupt gzip stream (incorrect length check)"),
        (lambda gz: gz[: len(gz) // 2], "truncated gzip stream"),
        (lambda gz: gz[:-3], "truncated gzip stream"),
        (lambda gz: gz + b"junk", "trailing data after the last gzip member"),
        (lambda gz: b"PK" + gz, "not a gzip file"),
        (lambda gz: gz[:2] + b"\x07" + gz[3:], "unknown compression method"),
        (lambda gz: b"", "empty object"),
    ],
)
def test_bad_streams_are_refused(make: object, problem: str) -> None:
    gz = gzip.compress(mixed(300 * KIB))
    with pytest.raises(StreamError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        b"".join(Inflater(chunks(make(gz)), max_ratio=1000))  # type: ignore[operator]


def test_corrupt_deflate_data_is_refused() -> None:
    raw = bytearray(gzip.compress(mixed(300 * KIB)))
    raw[len(raw) // 2] ^= 0xFF
    with pytest.raises(StreamError, match="corrupt gzip stream"):
        b"".join(Inflater(chunks(bytes(raw)), max_ratio=1000))


def test_header_fields_are_skipped() -> None:
    body = mixed(100 * KIB)
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = comp.compress(body) + comp.flush()
    extra = b"AB\x02\x00hi"
    header = b"\x1f\x8b\x08" + bytes([4 | 8 | 16]) + b"\0\0\0\0\0\x03"
    header += struct.pack("<H", len(extra)) + extra + b"name.tar\0" + b"comment\0"
    gz = header + deflated + struct.pack("<II", zlib.crc32(body), len(body))
    assert b"".join(Inflater(chunks(gz, size=7), max_ratio=1000)) == body


def test_without_ctypes_zlib_the_fallback_resumes_at_member_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gzstream, "_Z", None)
    data = mixed(1024 * KIB)
    gz = gzip.compress(data[:300_000], mtime=0) + gzip.compress(data[300_000:], mtime=0)
    out, points = points_of(gz, span=64 * KIB)
    assert out == data
    assert [p.out for p in points] == [0, 300_000] and all(p.at_member for p in points)
    resumed = Inflater(chunks(gz, points[1].read_from), max_ratio=1000, start=points[1])
    assert b"".join(resumed) == data[300_000:]
    with pytest.raises(StreamError, match="incorrect data check"):
        b"".join(Inflater(chunks(_trailer(gz, crc_delta=1)), max_ratio=1000))


def test_access_points_of_one_inflater_resume_on_the_other(backend: str) -> None:
    """A checkpoint saved by an invocation on one inflater resumes on the other (a deploy that
    changes the function's asset mid-job, or zlib-ng failing to load)."""
    data = mixed(2 * 1024 * KIB)
    gz = gzip.compress(data, 6, mtime=0)
    _, points = points_of(gz, span=96 * KIB)
    assert any(p.bits for p in points)
    other = ZLIB if backend == "zlib-ng" else ZLIB_NG
    gzstream._Z = other  # the fixture's monkeypatch restores it
    for point in points[1::3]:
        resumed = Inflater(chunks(gz, point.read_from), max_ratio=1000, start=point)
        assert b"".join(resumed) == data[point.out :], point.out


def test_zlib_ng_is_the_inflater_where_its_wheel_is_installed() -> None:
    assert ZLIB_NG is not None and ZLIB_NG.name == "zlib-ng", "zlib-ng is pinned for the tests"
    assert ZLIB_NG.version.startswith("2."), ZLIB_NG.version
    assert ZLIB is not None and ZLIB.name == "zlib"
