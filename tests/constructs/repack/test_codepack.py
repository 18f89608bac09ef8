"""The fast path's first part: padding that every gzip and tar reader skips, and nothing else."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib

import pytest

from hf_towers.constructs.repack.runtime.handler import codepack
from hf_towers.constructs.repack.runtime.handler.gzstream import Inflater
from hf_towers.constructs.repack.runtime.handler.props import MIN_PART_SIZE
from hf_towers.constructs.repack.runtime.handler.tarscan import End, Member, scan
from hf_towers.constructs.repack.runtime.handler.validate import Validator
from tests.tar_readers import READERS, extract_all

from .archives import INFERENCE, REQUIREMENTS, check_archive, code_zip, expected_tree, tar_gz

FEXTRA = 0x04


def bundle() -> codepack.CodeBundle:
    return codepack.load_zip(code_zip(), entry_module="inference.py")


def gzip_members(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(header through FEXTRA, decompressed data)`` of every member, split with zlib itself."""
    out = []
    while data:
        assert data[:3] == b"\x1f\x8b\x08", "not a gzip member"
        flags = data[3]
        header = data[:10]
        if flags & FEXTRA:
            xlen = int.from_bytes(data[10:12], "little")
            header = data[: 12 + xlen]
        dec = zlib.decompressobj(wbits=31)
        inflated = dec.decompress(data)
        assert dec.eof
        out.append((header, inflated))
        data = dec.unused_data
    return out


def reader_tree(files: dict[str, bytes]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for path, data in expected_tree(files).items():
        out[path] = ("dir", "") if data is None else ("file", hashlib.sha256(data).hexdigest())
    return out


def test_first_part_is_min_size_exactly_and_deterministic() -> None:
    first = codepack.first_part(bundle(), min_size=MIN_PART_SIZE)
    assert len(first) == MIN_PART_SIZE
    assert codepack.first_part(bundle(), min_size=MIN_PART_SIZE) == first
    # A bundle that is already big enough gets no padding at all.
    code = codepack.gzip_member(codepack.tar_entries(bundle()), level=9)
    assert codepack.first_part(bundle(), min_size=len(code)) == code


def test_padding_members_decompress_to_nothing_and_carry_well_formed_fextra() -> None:
    first = codepack.first_part(bundle(), min_size=MIN_PART_SIZE)
    members = gzip_members(first)
    *pads, (code_header, code_tar) = members
    assert len(pads) == -(-MIN_PART_SIZE // codepack.MAX_PAD_MEMBER)
    for header, inflated in pads:
        assert inflated == b""
        assert header[3] == FEXTRA  # FEXTRA only: no name, comment or header CRC
        assert header[4:8] == b"\0\0\0\0"  # MTIME 0
        xlen = int.from_bytes(header[10:12], "little")
        assert xlen <= 0xFFFF
        subfield = header[12:]
        # One subfield (RFC 1952 2.3.1.1): SI1 SI2, LEN, LEN bytes; SI2 != 0 (0 is reserved).
        assert subfield[:2] == codepack.PAD_SUBFIELD_ID and subfield[1] != 0
        assert int.from_bytes(subfield[2:4], "little") + 4 == xlen == len(subfield)
    assert code_header[3] & FEXTRA == 0
    assert code_tar == codepack.tar_entries(bundle())


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        codepack.PAD_OVERHEAD,
        codepack.MAX_PAD_MEMBER,
        codepack.MAX_PAD_MEMBER + 1,
        2 * codepack.MAX_PAD_MEMBER + 1,
        MIN_PART_SIZE,
    ],
)
def test_padding_size_is_exact(size: int) -> None:
    pad = codepack.padding(size)
    assert len(pad) == max(size, codepack.PAD_OVERHEAD)
    assert gzip.decompress(pad) == b""  # Python's gzip reads every member and finds no data
    assert all(inflated == b"" for _, inflated in gzip_members(pad))


def test_the_handler_reads_the_first_part_as_exactly_the_code_entries() -> None:
    source_files = {"a.txt": b"a", "weights/w.bin": b"\x01" * 5000}
    source = tar_gz(source_files)
    body = codepack.first_part(bundle(), min_size=MIN_PART_SIZE) + source
    inflater = Inflater([body[i : i + 65536] for i in range(0, len(body), 65536)], max_ratio=100)
    tar_stream = bytearray()
    validator = Validator()
    names = []
    for event in scan(inflater):
        if isinstance(event, Member):
            validator.check(event)
            names.append(event.name)
            tar_stream += event.raw
        elif isinstance(event, End):
            tar_stream += event.raw
        else:
            tar_stream += event
    # Padding adds compressed bytes only: the tar stream is the code entries, then the source.
    assert bytes(tar_stream) == codepack.tar_entries(bundle()) + gzip.decompress(source)
    assert inflater.decompressed == len(tar_stream)
    assert names[:3] == ["code", "code/inference.py", "code/requirements.txt"]
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        assert all(not m.pax_headers for m in tar.getmembers())  # no PAX header reaches tar


def test_every_reader_extracts_first_part_plus_source_to_the_expected_tree() -> None:
    source_files = {"config.json": b"{}", "weights/w.bin": bytes(range(256)) * 64}
    body = codepack.first_part(bundle(), min_size=MIN_PART_SIZE) + tar_gz(source_files)
    want_files = {
        **source_files,
        "code/inference.py": INFERENCE,
        "code/requirements.txt": REQUIREMENTS,
    }
    assert check_archive(body) == expected_tree(want_files)  # gzip -t and GNU tar: no warning
    results = extract_all(body)
    assert set(results) == set(READERS)
    for reader, extraction in results.items():
        assert extraction.ok, f"{reader}: {extraction.error}"
        assert extraction.tree == reader_tree(want_files), reader
        assert not extraction.escaped, reader
