"""Memory of the repack worker does not grow with the artifact (and is measured as such).

The validation read of the fast path is driven over a lazily generated source of 8 MiB and of
64 MiB through the real ``scan_source`` (botocore ``StreamingBody`` -> inflater -> tar scanner ->
validator): the Python-level peak (tracemalloc) must be the same bound for both.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import tarfile
import textwrap
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody

from hf_towers.constructs.repack.runtime.handler import compressed, heap
from hf_towers.constructs.repack.runtime.handler.codepack import load_zip
from hf_towers.constructs.repack.runtime.handler.job import Job

from .archives import code_zip

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[3]


def source_stream(size: int) -> Iterator[bytes]:
    """A ``.tar.gz`` (config, ``size`` bytes of weights, end marker) generated 1 MiB at a time."""
    block = random.Random(0).randbytes(MIB)
    gz = zlib.compressobj(0, zlib.DEFLATED, 31)  # stored: fast, ratio ~1

    def header(name: str, length: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size = length
        return info.tobuf(tarfile.GNU_FORMAT)

    yield gz.compress(header("config.json", 2) + b"{}".ljust(512, b"\0"))
    yield gz.compress(header("model.safetensors", size))
    for _ in range(size // MIB):
        yield gz.compress(block)
    yield gz.compress(b"\0" * 1024) + gz.flush()


class _Raw(io.RawIOBase):
    """A file-like object over generated chunks, as urllib3 hands botocore the response."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while len(self._buf) < n or n < 0:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        out, self._buf = (self._buf, b"") if n < 0 else (self._buf[:n], self._buf[n:])
        return out


class _S3:
    """Just ``get_object`` of an S3 client, streaming a generated source."""

    def __init__(self, size: int) -> None:
        self.size = size

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": StreamingBody(_Raw(source_stream(self.size)), None)}


def _job() -> Job:
    return Job(
        source_bucket="source",
        source_key="model.tar.gz",
        source_etag='"etag"',
        source_size=0,
        code=load_zip(code_zip(), entry_module="inference.py"),
        out_bucket="out",
        tower="text",
        kms_key="key",
        compressed=True,
        max_ratio=100.0,
        part_size=5 * MIB,
    )


def _peak_of_scan(size: int) -> int:
    job = _job()
    tracemalloc.start()
    try:
        assert compressed.scan_source(_S3(size), job, stop_at_code=True) is False
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_validation_read_memory_does_not_grow_with_the_artifact() -> None:
    small = _peak_of_scan(8 * MIB)
    large = _peak_of_scan(64 * MIB)
    # A few 1 MiB chunks in flight (read, inflated, scanner buffer), whatever the size.
    assert large < 12 * MIB, f"peak {large / MIB:.1f} MiB for a 64 MiB artifact"
    assert large - small < MIB, f"peak grew {small / MIB:.1f} -> {large / MIB:.1f} MiB"


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM / glibc are Linux facts")
def test_large_buffers_are_mapped_individually_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert heap.bound_large_buffers() is True


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss carried over exec is Linux")
def test_benchmark_peak_rss_is_the_childs_own() -> None:
    """The benchmark's child must not report its parent's peak (``ru_maxrss`` survives exec)."""
    script = textwrap.dedent(
        f"""
        import subprocess, sys
        big = bytearray(256 * 1024 * 1024)
        big[::4096] = b"x" * len(big[::4096])  # touch every page
        del big
        child = (
            "import resource, sys; sys.path.insert(0, {str(ROOT / "bench")!r}); import repack; "
            "print(repack.peak_rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                             check=True).stdout)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    own, inherited_kib = int(out[0]), int(out[1])
    assert own < 128 * MIB, f"child reported {own / MIB:.0f} MiB"
    if inherited_kib * 1024 < 256 * MIB:
        pytest.skip("this kernel does not carry ru_maxrss over exec (the check above still ran)")
