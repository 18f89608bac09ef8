"""What the repack writes, read back by the five real tar readers (tests/tar_readers).

Each test runs a real handler path against the moto S3 server and checks that GNU tar, Python
``tarfile`` (``data`` filter), bsdtar, Go's ``archive/tar`` and 7-Zip all extract the output to
exactly the expected tree: the source's tree with ``code/`` replaced by the tower's code. The
uncompressed path writes no archive; its object listing must be that tree's files.
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
import tempfile
import zlib
from pathlib import Path

from hf_towers.constructs.repack.runtime.handler import compressed, prefix
from hf_towers.constructs.repack.runtime.handler.index import build_job
from hf_towers.constructs.repack.runtime.handler.job import load_state
from hf_towers.constructs.repack.runtime.handler.s3io import client
from tests.tar_readers import READERS, Tree, extract_all

from .archives import INFERENCE, REQUIREMENTS, tar_gz, weights
from .conftest import World
from .test_compressed import fp16_weights

MIB = 1024 * 1024
TOWER_CODE = {"code/inference.py": INFERENCE, "code/requirements.txt": REQUIREMENTS}
WEIGHTS = "weights/model.safetensors"
SYMLINK = ("weights/latest.safetensors", "model.safetensors")
"""An internal symlink (relative, same folder): accepted by the validator, kept by the readers."""
HARDLINK = ("model-copy.safetensors", WEIGHTS)


def forever() -> float:
    return 900.0


FP16 = "weights/text.safetensors"
"""fp16-like weights over two stream chunks: the stream path writes them Huffman-only."""


def model_files() -> dict[str, bytes]:
    return {
        "config.json": b'{"model_type": "clip"}',
        "tokenizer/tokenizer.json": b'{"vocab": {}}' * 100,
        FP16: fp16_weights(2 * compressed.CHUNK),
        WEIGHTS: weights(MIB),
    }


def links() -> list[tuple[tarfile.TarInfo, bytes | None]]:
    symlink = tarfile.TarInfo(SYMLINK[0])
    symlink.type, symlink.linkname = tarfile.SYMTYPE, SYMLINK[1]
    hardlink = tarfile.TarInfo(HARDLINK[0])
    hardlink.type, hardlink.linkname = tarfile.LNKTYPE, HARDLINK[1]
    return [(symlink, None), (hardlink, None)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected(files: dict[str, bytes]) -> Tree:
    """The tree a reader should write: ``files`` + the tower code, their folders, both links."""
    out: Tree = {}
    for name, data in {**files, **TOWER_CODE}.items():
        parts = name.split("/")
        for i in range(1, len(parts)):
            out["/".join(parts[:i])] = ("dir", "")
        out[name] = ("file", sha(data))
    out[SYMLINK[0]] = ("symlink", SYMLINK[1])
    out[HARDLINK[0]] = ("file", sha(files[HARDLINK[1]]))
    return out


def gzip_test(data: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".tar.gz") as archive:
        archive.write(data)
        archive.flush()
        result = subprocess.run(
            ["gzip", "-t", archive.name], capture_output=True, text=True, check=False
        )
    assert result.returncode == 0 and not result.stderr, result.stderr


def assert_every_reader_extracts(data: bytes, want: Tree, tmp_path: Path) -> None:
    gzip_test(data)
    results = extract_all(data, tmp_path)
    assert set(results) == set(READERS)
    failures = {r: e.error for r, e in results.items() if not e.ok}
    assert not failures, failures
    for reader, extraction in results.items():
        assert extraction.tree == want, reader
        assert not extraction.escaped, reader


def test_fast_path_output_is_read_by_every_reader(world: World, tmp_path: Path) -> None:
    files = model_files()
    key = world.put_source(tar_gz(files, extra=links()))
    job = build_job(client(), world.properties(key))
    assert compressed.run(client(), job, forever)
    assert load_state(client(), job) is None
    out = world.get(job.out_key)
    assert out.endswith(world.get(key, world.source_bucket))  # the fast path, not the stream one
    assert_every_reader_extracts(out, expected(files), tmp_path)


def test_stream_path_output_is_read_by_every_reader(world: World, tmp_path: Path) -> None:
    files = model_files()
    old_code = {"code/inference.py": b"old = True\n", "code/old_helper.py": b"x = 1\n"}
    source = tar_gz({**files, **old_code}, extra=links())
    key = world.put_source(source)
    job = build_job(client(), world.properties(key))
    assert compressed.run(client(), job, forever)
    out = world.get(job.out_key)
    assert not out.endswith(source)  # rewritten: the stream path
    # A chunk inside the fp16 weights is deflated Huffman-only (the readers must inflate it).
    assert compressed.chunk_strategy(files[FP16][: compressed.SAMPLE])[1] == zlib.Z_HUFFMAN_ONLY
    assert_every_reader_extracts(out, expected(files), tmp_path)


def test_uncompressed_prefix_holds_the_expected_files(world: World) -> None:
    files = model_files()
    old_code = {"code/stale.py": b"stale\n"}
    key = world.put_source(tar_gz({**files, **old_code}, extra=links()))
    job = build_job(client(), world.properties(key, Compressed="false"))
    assert prefix.run(client(), job, forever)
    got = {
        k[len(job.out_key) :]: ("file", sha(world.get(k)))
        for k in world.out_keys()
        if k.startswith(job.out_key)
    }
    # S3 has no folders or links: each link is an object with its target's bytes.
    want = {path: node for path, node in expected(files).items() if node[0] == "file"}
    want[SYMLINK[0]] = ("file", sha(files[WEIGHTS]))
    assert got == want
