"""The streaming tar parser: headers are read as every reader reads them, or refused."""

from __future__ import annotations

import gzip
import tarfile

import pytest

from hf_towers.constructs.repack.runtime.handler import compressed, prefix
from hf_towers.constructs.repack.runtime.handler.errors import RepackError, StreamError
from hf_towers.constructs.repack.runtime.handler.index import build_job
from hf_towers.constructs.repack.runtime.handler.s3io import client
from hf_towers.constructs.repack.runtime.handler.tarscan import Member, parse_pax, scan

from .conftest import World
from .rawtar import (
    END,
    GNU,
    base256,
    extended,
    file,
    header,
    long_name,
    pad,
    pax,
    pax_records,
    symlink,
)

A = b"a" * 10


def members(*pieces: bytes) -> list[Member]:
    return [e for e in scan([b"".join(pieces) + END]) if isinstance(e, Member)]


def refusal(*pieces: bytes) -> str:
    with pytest.raises(StreamError) as err:
        members(*pieces)
    return str(err.value)


ATTACK = (long_name("code/inference.py"), pax(("path", "weights/a.bin")), file("w", A))
"""Issue 11: validated as weights/a.bin, extracted as code/inference.py by Python and bsdtar."""


@pytest.mark.parametrize("mode", ["compressed", "uncompressed"])
def test_long_name_then_pax_path_fails_the_job_naming_uri_entry_and_offset(
    world: World, mode: str
) -> None:
    key = world.put_source(gzip.compress(b"".join((file("config.json", b"{}"), *ATTACK)) + END))
    job = build_job(client(), world.properties(key, Compressed=str(mode == "compressed").lower()))
    with pytest.raises(RepackError) as err:
        (compressed if mode == "compressed" else prefix).run(client(), job, lambda: 900.0)
    assert str(err.value).startswith(
        f"s3://{world.source_bucket}/{key}: entry 'weights/a.bin' at offset 1024 has both a GNU "
        "long name and a PAX path ('code/inference.py' vs 'weights/a.bin'): readers disagree"
    )
    assert world.open_uploads() == [] and world.out_keys() == []


@pytest.mark.parametrize(
    ("pieces", "problem"),
    [
        (ATTACK, "has both a GNU long name and a PAX path"),
        ((pax(("path", "w")), long_name("code/x"), file("w", A)), "both a GNU long name"),
        (
            (long_name("t", b"K"), pax(("linkpath", "u")), symlink("l", "v")),
            "both a GNU long link name and a PAX linkpath ('t' vs 'u')",
        ),
        ((pax(("mtime", "1")), long_name("n"), file("w", A)), "both GNU (long name or link)"),
        ((long_name("a"), long_name("b"), file("w", A)), "more than one GNU long name"),
        ((long_name("a", b"K"), long_name("b", b"K"), symlink("l", "c")), "more than one GNU long"),
        ((pax(("mtime", "1")), pax(("path", "b")), file("w", A)), "more than one PAX extended"),
        ((pax(("path", "code/x"), kind=b"g"), file("w", A)), "global PAX header keys ['path']"),
        ((pax(("linkpath", "x"), kind=b"g"), file("w", A)), "global PAX header keys ['linkpath']"),
        ((pax(("size", "1"), kind=b"g"), file("w", A)), "global PAX header keys ['size']"),
        ((long_name("n"), pax(("comment", "c"), kind=b"g"), file("w", A)), "comes between"),
        ((pax(("size", "3")), file("w", A)), "PAX size (3) that differs from its header's size"),
        ((pax(("size", " 10")), file("w", A)), "corrupt PAX size ' 10'"),
        ((long_name(b"code/x\0y"), file("w", A)), "has a NUL byte inside the name"),
        ((long_name(b""), file("w", A)), "GNU long name at offset 1024 is empty"),
        ((file("w", A, magic=GNU, prefix="code"),), "ustar prefix field (b'code')"),
        ((header("d/", b"0"),), "regular file whose name ends with '/'"),
        ((header("d/", b"7"),), "regular file whose name ends with '/'"),
        ((long_name("d/"), header("d", magic=GNU)), "regular file whose name ends with '/'"),
        ((header("f", size_field=base256(-512)),), "has a negative size (-512)"),
        ((header("s", b"2", size=10) + pad(A),), "non-file entry 's' at offset 1024 carries 10"),
        (
            (pax(("SCHILY.xattr.user.k", "v")), symlink("l", "f")),
            "is not a file or directory but has extended attributes ['SCHILY.xattr.user.k']",
        ),
        ((pax(("GNU.sparse.map", "0,1")), file("w", A)), "sparse entries are not supported"),
    ],
)
def test_headers_readers_apply_differently_are_refused(
    pieces: tuple[bytes, ...], problem: str
) -> None:
    message = refusal(file("first", A), *pieces)
    assert problem in message
    assert "offset 1024" in message


@pytest.mark.parametrize(
    ("pieces", "name", "kind", "size"),
    [
        ((header("f", size_field=base256(10)) + pad(A),), "f", tarfile.REGTYPE, 10),
        ((file("f", A, prefix="pre/fix"),), "pre/fix/f", tarfile.REGTYPE, 10),
        ((header("d/", b"\0"),), "d", tarfile.DIRTYPE, 0),
        ((pax(("size", "10")), header("f") + pad(A)), "f", tarfile.REGTYPE, 10),
        ((pax(("size", "10"), ("mtime", "1.5")), file("f", A)), "f", tarfile.REGTYPE, 10),
        ((pax(("comment", "git"), kind=b"g"), file("f", A)), "f", tarfile.REGTYPE, 10),
        ((long_name("n" * 200), file("short", A)), "n" * 200, tarfile.REGTYPE, 10),
        ((pax(("path", "é" * 80)), file("short", A)), "é" * 80, tarfile.REGTYPE, 10),
    ],
)
def test_headers_readers_agree_on_are_read_as_they_do(
    pieces: tuple[bytes, ...], name: str, kind: bytes, size: int
) -> None:
    (member,) = members(*pieces)
    assert (member.name, member.type, member.size) == (name, kind, size)


def test_long_link_and_pax_linkpath_apply_to_links() -> None:
    first, second = members(
        long_name("t" * 150, b"K"),
        symlink("l", "x"),
        pax(("linkpath", "u" * 150)),
        symlink("m", ""),
    )
    assert (first.linkname, second.linkname) == ("t" * 150, "u" * 150)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"+19 comment=hello\n", "corrupt PAX header record at byte 0"),
        (b"19 comment=hello\n\n", "corrupt PAX header record at byte 0"),
        (pax_records([("a", "1")]) + b"0x", "corrupt PAX header record at byte 6"),
        (pax_records([("a", "1"), ("a", "2")]), "PAX record 'a' appears twice"),
        (pax_records([("a", "1")]) + b"\0" + pax_records([("path", "x")]), "data after the last"),
        (b"9 =value\n", "corrupt PAX header record"),
    ],
)
def test_pax_records_are_parsed_strictly(payload: bytes, problem: str) -> None:
    with pytest.raises(StreamError, match=problem.replace("(", r"\(")):
        parse_pax(payload, 512)
    assert problem in refusal(file("first", A), extended(b"x", payload), file("w", A))


def test_pax_records_python_and_gnu_tar_write_are_read() -> None:
    records = pax_records([("path", "a b=c"), ("mtime", "1.5"), ("comment", "")])
    assert parse_pax(records + b"\0" * 7) == {"path": "a b=c", "mtime": "1.5", "comment": ""}


def test_extended_headers_over_one_mib_are_refused_as_bsdtar_and_go_refuse_them() -> None:
    big = ("comment", "x" * (1024 * 1024))
    assert "is larger than 1048576 bytes: readers disagree (bsdtar and Go" in refusal(
        pax(big), file("a.bin", A)
    )
    fits = ("comment", "x" * (1024 * 1024 - 64))
    assert [m.name for m in members(pax(fits), file("a.bin", A))] == ["a.bin"]
