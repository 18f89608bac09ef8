"""Throughput of the resumable inflater (gzstream.Inflater, ctypes zlib) vs. zlib.decompressobj.

`.venv/bin/python bench/inflate.py [MiB]`: a gzip (level 6) of MiB mebibytes, half random bytes
(like weights) and half text-like, inflated in 1 MiB chunks by both; prints MiB/s of output.
"""

from __future__ import annotations

import random
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_towers.constructs.repack.runtime.handler.gzstream import Inflater

MIB = 1024 * 1024


def source(mib: int) -> bytes:
    rnd = random.Random(0)
    words = [
        bytes(rnd.choice(b"abcdefghij ") for _ in range(rnd.randint(2, 9))) for _ in range(500)
    ]
    text = b" ".join(rnd.choice(words) for _ in range(MIB // 5))[:MIB]
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    out = []
    for i in range(mib):
        out.append(comp.compress(rnd.randbytes(MIB) if i % 2 == 0 else text))
    out.append(comp.flush())
    return b"".join(out)


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + MIB] for i in range(0, len(data), MIB)]


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    parts = chunks(source(mib))
    t = time.perf_counter()
    total = 0
    dec = zlib.decompressobj(wbits=31)
    for part in parts:
        data = part
        while data:
            total += len(dec.decompress(data, MIB))
            data = dec.unconsumed_tail
    t_zlib = time.perf_counter() - t
    t = time.perf_counter()
    inflater = Inflater(parts, max_ratio=1000)
    ours = sum(len(c) for c in inflater)
    t_ours = time.perf_counter() - t
    assert ours == total == mib * MIB
    print(
        f"{mib} MiB: zlib.decompressobj {mib / t_zlib:.0f} MiB/s, "
        f"gzstream.Inflater {mib / t_ours:.0f} MiB/s ({t_ours / t_zlib:.2f}x the time), "
        f"{len(inflater._points)} access points kept"
    )


if __name__ == "__main__":
    main()
