"""Differential test: what the handler validates is what every real tar reader extracts.

For each archive of a corpus of awkward and hostile ones (hand-written cases, then archives
generated from a seeded random choice of header kinds, names, orders and formats), the handler's
validation (``scan`` + ``Validator`` over ``Inflater``, as ``compressed.validated_members`` runs
them) either refuses it, or accepts it, and then the tree it believes will be extracted must be
exactly what GNU tar, Python ``tarfile`` (data filter), bsdtar, Go's ``archive/tar`` and 7-Zip
extract, with no reader failing and nothing written outside. Missing readers fail the test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hf_towers.constructs.repack.runtime.handler import codepack
from hf_towers.constructs.repack.runtime.handler.errors import StreamError
from hf_towers.constructs.repack.runtime.handler.gzstream import Inflater
from hf_towers.constructs.repack.runtime.handler.tarscan import End, Member, scan
from hf_towers.constructs.repack.runtime.handler.validate import Validator, in_code_dir, normalize
from tests.tar_readers import Tree, extract_all, go_reader, require_readers

from .archives import INFERENCE, code_zip
from .rawtar import (
    GNU,
    POSIX,
    V7,
    archive,
    base256,
    directory,
    extended,
    file,
    hardlink,
    header,
    long_name,
    pad,
    pax,
    pax_records,
    symlink,
)

A = b"a" * 10
B = b"b" * 700


def handler_view(data: bytes) -> Tree | str:
    """The tree the handler believes ``data`` extracts to, or its refusal message."""
    validator = Validator()
    out: Tree = {}
    current: tuple[str, hashlib._Hash, int] | None = None

    def finish() -> None:
        nonlocal current
        if current is not None:
            path, digest, _ = current
            out[path] = ("file", digest.hexdigest())
            current = None

    try:
        for event in scan(Inflater([data], max_ratio=1000)):
            if isinstance(event, Member):
                finish()
                path = validator.check(event)
                if not path:
                    continue
                parts = path.split("/")
                for i in range(1, len(parts)):
                    out["/".join(parts[:i])] = ("dir", "")
                if event.type == tarfile.DIRTYPE:
                    out[path] = ("dir", "")
                elif event.type == tarfile.SYMTYPE:
                    out[path] = ("symlink", event.linkname)
                elif event.type == tarfile.LNKTYPE:
                    out[path] = out[normalize(event.linkname)]
                else:
                    current = (path, hashlib.sha256(), event.size)
            elif isinstance(event, End):
                finish()
            elif current is not None:
                path, digest, left = current
                digest.update(event[:left])
                current = (path, digest, left - min(left, len(event)))
    except StreamError as exc:
        return str(exc)
    return dict(sorted(out.items()))


def check_readers(case: str, data: bytes, expected: Tree) -> None:
    """Every reader extracts exactly ``expected``, succeeds, and writes nothing outside."""
    problems = []
    for reader, got in extract_all(data).items():
        if not got.ok:
            problems.append(f"{reader} failed on an accepted archive: {got.error[-300:]}")
        if got.escaped:
            problems.append(f"{reader} wrote outside its folder: {got.escaped}")
        if got.tree != expected:
            keys = sorted(set(got.tree) | set(expected))
            diff = {
                k: (expected.get(k), got.tree.get(k))
                for k in keys
                if got.tree.get(k) != expected.get(k)
            }
            problems.append(f"{reader} extracted another tree (path: (handler, reader)): {diff}")
    assert not problems, f"{case}: accepted by the handler, but\n  " + "\n  ".join(problems)


@pytest.fixture(scope="module", autouse=True)
def readers() -> None:
    require_readers()
    go_reader()


def _tarfile(fmt: int, entries: list[tuple[str, bytes, bytes | None]]) -> bytes:
    """A ``.tar.gz`` written by Python's tarfile: (name, type, data or link target)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mtime = 946_684_800
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = (payload or b"").decode()
                tar.addfile(info)
            elif kind == tarfile.DIRTYPE:
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(payload or b"")
                tar.addfile(info, io.BytesIO(payload or b""))
    return gzip.compress(raw.getvalue(), mtime=0)


def _tool(tmp: Path, command: list[str]) -> bytes:
    """A ``.tar.gz`` made by a real tool from a small model folder (symlink and hard link in)."""
    src = tmp / "src"
    (src / "weights").mkdir(parents=True)
    (src / "config.json").write_bytes(b"{}")
    (src / "weights" / "model.safetensors").write_bytes(B)
    (src / "weights" / "copy.safetensors").hardlink_to(src / "weights" / "model.safetensors")
    (src / "weights" / "alias.safetensors").symlink_to("model.safetensors")
    (src / ("long" * 40 + ".json")).write_bytes(A)  # 160 characters: a long name
    out = tmp / "out.tar.gz"
    subprocess.run([*command, str(out), "-C", str(src), "."], check=True, capture_output=True)
    return out.read_bytes()


S = tarfile.SYMTYPE
L = tarfile.LNKTYPE
D = tarfile.DIRTYPE
R = tarfile.REGTYPE

ACCEPTED: dict[str, Callable[[Path], bytes]] = {
    "python-gnu": lambda t: _tarfile(
        tarfile.GNU_FORMAT, [("d", D, None), ("d/" + "n" * 120, R, B), ("d/s", S, b"x")]
    ),
    "python-pax-unicode": lambda t: _tarfile(
        tarfile.PAX_FORMAT, [("modèle/" + "é" * 90 + ".bin", R, B), ("l", S, "modèle".encode())]
    ),
    "python-ustar-prefix": lambda t: _tarfile(
        tarfile.USTAR_FORMAT, [("p" * 90 + "/" + "q" * 80, R, A)]
    ),
    "gnu-tar-czf": lambda t: _tool(t, ["tar", "--format=gnu", "-czf"]),
    "gnu-tar-posix": lambda t: _tool(t, ["tar", "--format=posix", "-czf"]),
    "bsdtar-czf": lambda t: _tool(t, ["bsdtar", "-czf"]),
    "old-style-directory": lambda t: archive(header("d/", b"\0"), file("d/f", A)),
    "aregtype-file": lambda t: archive(header("f", b"\0", size=len(A)) + pad(A)),
    "contiguous-file": lambda t: archive(header("f", b"7", size=len(A)) + pad(A)),
    "base-256-size": lambda t: archive(header("f", size_field=base256(len(A))) + pad(A)),
    "posix-prefix": lambda t: archive(file("f", A, prefix="pre/fix")),
    "gnu-long-name-and-link": lambda t: archive(
        long_name("n" * 150), file("short", A), long_name("n" * 150, b"K"), symlink("l", "short")
    ),
    "pax-harmless-keys": lambda t: archive(
        pax(("mtime", "1.5"), ("uname", "bob"), ("SCHILY.xattr.user.x", "1")), file("f", A)
    ),
    "pax-size-with-zero-field": lambda t: archive(pax(("size", "10")), header("f") + pad(A)),
    "pax-size-equal-field": lambda t: archive(pax(("size", "10")), file("f", A)),
    "global-comment-like-git-archive": lambda t: archive(
        pax(("comment", "0123abcd"), kind=b"g"), file("f", A)
    ),
    "hard-link-chain": lambda t: archive(file("f", A), hardlink("h", "f"), hardlink("h2", "h")),
    "hard-link-dot-slash": lambda t: archive(file("f", A), hardlink("h", "./f")),
    "duplicate-file-last-wins": lambda t: archive(file("f", A), file("f", B)),
    "duplicate-directory": lambda t: archive(directory("d/"), directory("d"), file("d/f", A)),
    "symlink-chain-later-link": lambda t: archive(
        symlink("l2", "l1"), symlink("l1", "f.bin"), file("f.bin", A)
    ),
    "symlink-to-directory": lambda t: archive(directory("d"), file("d/f", A), symlink("l", "d")),
    "symlink-dot-slash": lambda t: archive(file("f", A), symlink("l", "./f")),
    "symlink-dangling": lambda t: archive(symlink("l", "nothere")),
    "root-entries": lambda t: archive(directory("./"), directory("."), file("./f", A)),
    "backslash-name": lambda t: archive(file("a\\b", A)),
    "code-directory": lambda t: archive(directory("code/"), file("code/inference.py", A)),
}

ISSUE = "readers disagree on which applies"
REFUSED: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "issue-11-long-name-then-pax-path": (
        lambda t: archive(
            long_name("code/inference.py"), pax(("path", "weights/a.bin")), file("w", A)
        ),
        "entry 'weights/a.bin' at offset 0 has both a GNU long name and a PAX path "
        "('code/inference.py' vs 'weights/a.bin'): " + ISSUE,
    ),
    "pax-path-then-long-name": (
        lambda t: archive(
            pax(("path", "weights/a.bin")), long_name("code/inference.py"), file("w", A)
        ),
        "has both a GNU long name and a PAX path",
    ),
    "long-name-smuggles-dotdot": (
        lambda t: archive(long_name("../../x"), pax(("path", "weights/a.bin")), file("w", A)),
        "has both a GNU long name and a PAX path",
    ),
    "long-link-smuggles-etc": (
        lambda t: archive(
            long_name(str(t / "etc"), b"K"), pax(("linkpath", "weights")), symlink("l", "w")
        ),
        "has both a GNU long link name and a PAX linkpath",
    ),
    "pax-path-with-gnu-long-link": (
        lambda t: archive(
            file("t", A), pax(("path", "p" * 120)), long_name("t", b"K"), symlink("x", "")
        ),
        "has both GNU (long name or link) and PAX extended headers",
    ),
    "xattr-on-symlink": (
        lambda t: archive(file("f", A), pax(("SCHILY.xattr.user.k", "v")), symlink("l", "f")),
        "entry 'l' at offset 1024 is not a file or directory but has extended attributes",
    ),
    "two-long-names": (
        lambda t: archive(long_name("first"), long_name("second"), file("s", A)),
        "has more than one GNU long name",
    ),
    "two-long-links": (
        lambda t: archive(long_name("a", b"K"), long_name("b", b"K"), symlink("s", "c")),
        "has more than one GNU long link name",
    ),
    "two-pax-headers": (
        lambda t: archive(pax(("path", "first")), pax(("path", "second")), file("s", A)),
        "has more than one PAX extended header",
    ),
    "pax-key-twice": (
        lambda t: archive(pax(("path", "a"), ("path", "code/x")), file("s", A)),
        "PAX record 'path' appears twice",
    ),
    "pax-bad-length-hides-records": (
        lambda t: archive(
            extended(b"x", b"+19 comment=hello\n" + pax_records([("path", "code/x")])),
            file("s", A),
        ),
        "corrupt PAX header record at byte 0 in the PAX header at offset 0",
    ),
    "pax-records-after-nul": (
        lambda t: archive(
            extended(b"x", pax_records([("mtime", "1")]) + b"\0" + pax_records([("path", "x")])),
            file("s", A),
        ),
        "data after the last PAX record",
    ),
    "global-path": (
        lambda t: archive(pax(("path", "code/inference.py"), kind=b"g"), file("f", A)),
        "unsupported global PAX header keys ['path'] at offset 0",
    ),
    "global-size": (
        lambda t: archive(pax(("size", "0"), kind=b"g"), file("f", A)),
        "unsupported global PAX header keys ['size']",
    ),
    "global-between-extended": (
        lambda t: archive(long_name("n"), pax(("comment", "c"), kind=b"g"), file("f", A)),
        "comes between the extended headers of one entry",
    ),
    "pax-size-differs": (
        lambda t: archive(pax(("size", "3")), file("f", A)),
        "has a PAX size (3) that differs from its header's size field (10)",
    ),
    "pax-size-underscore": (
        lambda t: archive(pax(("size", "1_0")), file("f", A)),
        "has a corrupt PAX size '1_0'",
    ),
    "pax-sparse": (
        lambda t: archive(pax(("GNU.sparse.size", "10")), file("f", A)),
        "sparse entries are not supported",
    ),
    "nul-in-long-name": (
        lambda t: archive(long_name(b"a\0b"), file("s", A)),
        "GNU long name at offset 0 has a NUL byte inside the name",
    ),
    "nul-in-pax-path": (
        lambda t: archive(pax(("path", b"a\0b")), file("s", A)),
        "has a NUL byte in its name",
    ),
    "not-utf8-name": (lambda t: archive(file(b"caf\xe9", A)), "not valid UTF-8"),
    "dot-slash-after-plain": (
        lambda t: archive(file("a", A), file("./a", B)),
        "entry './a' at offset 1024 is the path of the earlier entry 'a' written differently",
    ),
    "double-slash-after-plain": (
        lambda t: archive(file("d/a", A), file("d//a", B)),
        "is the path of the earlier entry 'd/a' written differently",
    ),
    "file-then-below": (
        lambda t: archive(file("x", A), file("x/y", A)),
        "entry 'x/y' at offset 1024 lies below 'x', which is a file",
    ),
    "below-then-file": (
        lambda t: archive(file("x/y", A), file("x", A)),
        "replaces the earlier directory 'x' with a file",
    ),
    "code-is-a-file": (
        lambda t: archive(file("code", A)),
        "entry 'code' at offset 0 is a file named 'code': it must be a directory",
    ),
    "code-is-a-symlink": (
        lambda t: archive(directory("w"), symlink("code", "w")),
        "is a symlink named 'code'",
    ),
    "gnu-header-with-prefix": (
        lambda t: archive(file("f", A, magic=GNU, prefix="pre")),
        "has a ustar prefix field (b'pre') in a header that is not POSIX ustar",
    ),
    "v7-header-with-prefix": (
        lambda t: archive(file("f", A, magic=V7, prefix="code")),
        "has a ustar prefix field (b'code')",
    ),
    "regular-file-trailing-slash": (
        lambda t: archive(header("d/", b"0")),
        "is a regular file whose name ends with '/'",
    ),
    "pax-path-trailing-slash": (
        lambda t: archive(pax(("path", "e/")), header("d", b"0")),
        "is a regular file whose name ends with '/'",
    ),
    "long-name-trailing-slash": (
        lambda t: archive(long_name("e/"), header("d", b"0", magic=GNU)),
        "is a regular file whose name ends with '/'",
    ),
    "old-style-directory-renamed": (
        lambda t: archive(pax(("path", "e")), header("d/", b"\0")),
        "is a regular file whose name ends with '/'",
    ),
    "negative-base-256-size": (
        lambda t: archive(header("f", size_field=base256(-1))),
        "has a negative size (-1)",
    ),
    "directory-with-data": (
        lambda t: archive(header("d", b"5", size=len(A)) + pad(A), file("z", A)),
        "non-file entry 'd' at offset 0 carries 10 data bytes",
    ),
    "hard-link-to-directory": (
        lambda t: archive(directory("d"), file("d/f", A), hardlink("h", "d")),
        "is a hard link to the directory 'd'",
    ),
    "hard-link-to-symlink": (
        lambda t: archive(file("f", A), symlink("s", "f"), hardlink("h", "s")),
        "is a hard link to the symlink 's'",
    ),
    "hard-link-then-overwrite": (
        lambda t: archive(file("f", A), hardlink("h", "f"), file("f", B)),
        "replaces the earlier hard-linked file 'f' with a file",
    ),
    "hard-link-later-entry": (
        lambda t: archive(hardlink("h", "f"), file("f", A)),
        "is a hard link to 'f', not an earlier entry",
    ),
    "file-through-symlink": (
        lambda t: archive(directory("d"), symlink("s", "d"), file("s/x", A)),
        "entry 's/x' at offset 1024 lies below the symlink 's'",
    ),
    "file-over-symlink": (
        lambda t: archive(file("y", A), symlink("x", "y"), file("x", B)),
        "replaces the earlier symlink 'x' with a file",
    ),
    "symlink-chain-earlier-link": (
        lambda t: archive(file("f.bin", A), symlink("l1", "f.bin"), symlink("l2", "l1")),
        "entry 'l2' at offset 1536 is a symlink to 'l1', which goes through the earlier "
        "symlink 'l1': 7-Zip refuses a link via another link",
    ),
    "symlink-via-directory-link": (
        lambda t: archive(directory("d"), file("d/f", A), symlink("dl", "d"), symlink("l", "dl/f")),
        "goes through the earlier symlink 'dl'",
    ),
    "symlink-loop": (
        lambda t: archive(symlink("a", "b"), symlink("b", "a")),
        "goes through the earlier symlink 'a'",
    ),
    "symlink-dotdot-inside": (
        lambda t: archive(directory("a"), file("b", A), symlink("a/l", "../b")),
        "entry 'a/l' at offset 1536 is a symlink to '../b', which has '..': 7-Zip refuses",
    ),
    "symlink-outside": (
        lambda t: archive(symlink("l", "../../etc")),
        "is a symlink pointing outside the archive ('../../etc')",
    ),
    "symlink-absolute": (
        lambda t: archive(symlink("l", str(t / "etc"))),
        "is a symlink pointing outside the archive",
    ),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_archive_is_what_every_reader_extracts(case: str, tmp_path: Path) -> None:
    data = ACCEPTED[case](tmp_path)
    view = handler_view(data)
    assert isinstance(view, dict), f"{case}: refused: {view}"
    check_readers(case, data, view)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_ambiguous_archive_is_refused(case: str, tmp_path: Path) -> None:
    make, message = REFUSED[case]
    view = handler_view(make(tmp_path))
    assert isinstance(view, str), f"{case}: accepted: {view}"
    assert message in view


def fast_path_output(data: bytes, view: Tree) -> tuple[bytes, Tree]:
    """The fast path's output for a source without ``code/`` and the tree it must extract to."""
    bundle = codepack.load_zip(code_zip(), entry_module="inference.py")
    output = gzip.compress(codepack.tar_entries(bundle), mtime=0) + data
    expected = dict(view)
    expected["code"] = ("dir", "")
    for f in bundle.files:
        expected[f"code/{f.path}"] = ("file", hashlib.sha256(f.data).hexdigest())
    assert expected["code/inference.py"] == ("file", hashlib.sha256(INFERENCE).hexdigest())
    return output, dict(sorted(expected.items()))


@pytest.mark.parametrize("case", sorted(c for c in ACCEPTED if c != "code-directory"))
def test_fast_path_output_keeps_the_towers_code(case: str, tmp_path: Path) -> None:
    """The fast path's output (new ``code/`` entries, then the source) extracts to the tower's code."""
    data = ACCEPTED[case](tmp_path)
    view = handler_view(data)
    assert isinstance(view, dict) and not any(in_code_dir(p) for p in view)
    check_readers(case, *fast_path_output(data, view))


# Generated archives: entries of random kinds and formats, with extended headers in random order.
NAMES = [
    "a", "b", "d", "d/a", "./a", "d//a", "d/", "x/y", "code", "code/inference.py",
    "weights/a.bin", "l", "l/x", "./", "a\\b", "é.bin", "deep/" + "n" * 110,
]  # fmt: skip
TARGETS = ["a", "b", "d", "d/a", "./a", "l", "../a", "d/../a", "weights/a.bin", "x", "deep"]
GENERATED = 160


def _entry(rng: random.Random, used: list[str], hostile: bool) -> bytes:
    """One entry: optional GNU/PAX extended headers (random order), then its header and data."""
    if hostile:
        name = rng.choice(NAMES)
    else:
        name = rng.choice(["a", "b", "c", "w/a", "w/b", "v/" + "m" * 110]) + str(len(used))
    kind = rng.choice(["file"] * 4 + ["dir", "symlink", "hardlink", "areg"])
    target = rng.choice(used + TARGETS if hostile else used or ["a0"])
    data = rng.choice([b"", A, B]) if kind in ("file", "areg") else b""
    link = target if kind in ("symlink", "hardlink") else ""
    gnu: list[bytes] = []
    records: list[tuple[str, str | bytes]] = []
    field = name
    if len(name) > 100 or (hostile and rng.random() < 0.3):
        if rng.random() < 0.5:
            gnu.append(long_name(name))
        else:
            records.append(("path", name))
        field = rng.choice(["short", name[:100]])
    if len(link) > 100 or (hostile and rng.random() < 0.1):
        if rng.random() < 0.5:
            gnu.append(long_name(link or rng.choice(TARGETS), b"K"))
        else:
            records.append(("linkpath", link or rng.choice(TARGETS)))
        link = link[:100]
    if hostile and rng.random() < 0.1:
        gnu.append(long_name(rng.choice(NAMES)))
    if hostile and rng.random() < 0.1:
        records.append(("path", rng.choice(NAMES)))
    size_field = None
    if rng.random() < 0.15:
        size = len(data) if rng.random() < 0.7 else rng.choice([0, 3, 600])
        records.append(("size", str(size)))
        size_field = b"%011o\0" % rng.choice([0, len(data)])
    if rng.random() < 0.2:
        records += [("mtime", "1.5"), ("uname", "u"), ("SCHILY.xattr.user.k", "v")]
    ext = list(gnu)
    if records and rng.random() < 0.7:
        rng.shuffle(records)
        ext.append(pax(*records))
    else:
        ext += [pax(r) for r in records]
    if rng.random() < 0.05:
        ext.insert(0, pax(("comment", "c"), kind=b"g"))
    if hostile and rng.random() < 0.05:
        ext.append(pax((rng.choice(["path", "size", "linkpath"]), "code/x"), kind=b"g"))
    rng.shuffle(ext)
    magic = rng.choice([POSIX, POSIX, GNU, V7])
    prefix = "p" if hostile and rng.random() < 0.1 else ""
    used.append(name)
    flag = {"file": b"0", "dir": b"5", "symlink": b"2", "hardlink": b"1", "areg": b"\0"}[kind]
    if kind == "dir" and rng.random() < 0.5 and not field.endswith("/"):
        field += "/"
    head = header(
        field[:100],
        flag,
        size=len(data),
        linkname=link,
        magic=magic,
        prefix=prefix,
        size_field=size_field,
    )
    return b"".join(ext) + head + (pad(data) if data else b"")


def generated(seed: int) -> bytes:
    rng = random.Random(seed)
    hostile = rng.random() < 0.5
    used: list[str] = []
    return archive(*(_entry(rng, used, hostile) for _ in range(rng.randint(1, 6))))


def test_generated_corpus_is_mostly_decided_both_ways() -> None:
    """The generator is useful: a fair share of its archives is accepted, a fair share refused."""
    accepted = sum(isinstance(handler_view(generated(seed)), dict) for seed in range(GENERATED))
    assert GENERATED // 4 < accepted < GENERATED * 3 // 4, accepted


@pytest.mark.parametrize("seed", range(GENERATED), ids=lambda s: f"generated-{s:03d}")
def test_generated_archive_is_refused_or_extracted_alike(seed: int) -> None:
    data = generated(seed)
    view = handler_view(data)
    if isinstance(view, str):
        assert " at offset " in view, view
        return
    check_readers(f"generated-{seed:03d}", data, view)
    if not any(in_code_dir(p) for p in view):
        check_readers(f"generated-{seed:03d} (fast-path output)", *fast_path_output(data, view))
