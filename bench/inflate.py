"""Throughput of the resumable inflater (``gzstream.Inflater``) on each C backend vs. ``zlib.decompressobj``.

``.venv/bin/python bench/inflate.py [MiB]``: two gzip streams of MiB mebibytes each, the kinds the
repack benchmark uses: ``random`` (incompressible weights, gzip -1: stored blocks) and ``fp16``
(normal(0, 0.02) float16 values like a trained checkpoint, gzip -6). Each is inflated in 8 MiB
input chunks (the handler's ranged-read size) by ``zlib.decompressobj`` and by the ``Inflater``
on zlib-ng (the pinned wheel in the function's asset) and on the system zlib (the fallback);
prints MiB/s of output, best of 3.
"""

from __future__ import annotations

import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

# The handler imported as Lambda imports it (no aws_cdk in the process).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hf_towers/constructs/repack/runtime"))

from handler import gzstream  # type: ignore[import-not-found]
from handler.gzstream import Inflater  # type: ignore[import-not-found]

MIB = 1024 * 1024


def weights(kind: str, mib: int) -> bytes:
    rng = np.random.default_rng(0)
    if kind == "random":
        return rng.bytes(mib * MIB)
    return rng.normal(0.0, 0.02, mib * MIB // 2).astype(np.float16).tobytes()


def gzipped(data: bytes, level: int) -> list[bytes]:
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    gz = comp.compress(data) + comp.flush()
    return [gz[i : i + 8 * MIB] for i in range(0, len(gz), 8 * MIB)]


def best(run: Callable[[list[bytes]], int], parts: list[bytes], expect: int) -> float:
    times = []
    for _ in range(3):
        t = time.perf_counter()
        assert run(parts) == expect
        times.append(time.perf_counter() - t)
    return min(times)


def module(parts: list[bytes]) -> int:
    total = 0
    dec = zlib.decompressobj(wbits=31)
    for part in parts:
        data = part
        while data:
            total += len(dec.decompress(data, MIB))
            data = dec.unconsumed_tail
    return total


def inflate(parts: list[bytes]) -> int:
    return sum(len(c) for c in Inflater(parts, max_ratio=1000))


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    backends = {
        "zlib-ng": gzstream.load_backend(),
        "zlib": gzstream.load_backend(prefer_zlib_ng=False),
    }
    for kind, level in (("random", 1), ("fp16", 6)):
        parts = gzipped(weights(kind, mib), level)
        ratio = sum(map(len, parts)) / (mib * MIB)
        row = [f"{kind:6} {mib} MiB (gzip -{level}, {ratio:.1%} of raw):"]
        row.append(f"zlib.decompressobj {mib / best(module, parts, mib * MIB):.0f}")
        for name, backend in backends.items():
            if backend is None or backend.name != name:
                row.append(f"{name} not loadable")
                continue
            gzstream._Z = backend
            seconds = best(inflate, parts, mib * MIB)
            row.append(f"Inflater on {name} {mib / seconds:.0f}")
        print(" ".join(row[:1]), ", ".join(row[1:]), "MiB/s")


if __name__ == "__main__":
    main()
