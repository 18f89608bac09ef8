"""The stream path's chunk compression: level 6, Huffman-only or stored, chosen per chunk."""

from __future__ import annotations

import gzip
import json
import os
import zlib

import numpy as np

from hf_towers.constructs.repack.runtime.handler import compressed

MIB = 1024 * 1024


def fp16_weights(size: int) -> bytes:
    """Values like a trained checkpoint's: normal(0, 0.02) as float16."""
    return np.random.default_rng(0).normal(0.0, 0.02, size // 2).astype(np.float16).tobytes()


def text(size: int) -> bytes:
    vocab = {f"token{i}": i for i in range(size // 12)}
    return json.dumps({"model": {"vocab": vocab}}).encode()[:size]


def test_each_kind_of_chunk_gets_its_strategy() -> None:
    sample = compressed.SAMPLE
    assert compressed.chunk_strategy(text(sample)) == (6, zlib.Z_DEFAULT_STRATEGY)
    assert compressed.chunk_strategy(fp16_weights(sample)) == (1, zlib.Z_HUFFMAN_ONLY)
    assert compressed.chunk_strategy(os.urandom(sample)) == (0, zlib.Z_DEFAULT_STRATEGY)


def test_fp16_weights_are_compressed_not_stored() -> None:
    data = fp16_weights(4 * MIB)
    member = compressed.compress_chunk(data)
    assert gzip.decompress(member) == data
    # Huffman-only saves what level 6 saves on such weights (~8 %); stored would add bytes.
    assert len(member) < 0.94 * len(data)
    assert len(member) < 1.01 * len(zlib.compress(data, 6))


def test_incompressible_chunks_stay_stored_and_text_is_deflated() -> None:
    data = os.urandom(MIB)
    member = compressed.compress_chunk(data)
    assert gzip.decompress(member) == data and len(member) < len(data) + 200
    words = text(MIB)
    member = compressed.compress_chunk(words)
    assert gzip.decompress(member) == words and len(member) < 0.3 * len(words)


def test_members_are_deterministic() -> None:
    data = fp16_weights(MIB) + os.urandom(MIB)
    assert compressed.compress_chunk(data) == compressed.compress_chunk(data)
