"""Source checkpoints: resuming at any position gives exactly the rest of the validated stream."""

from __future__ import annotations

import gzip
import tarfile
from typing import Any

import pytest

from hf_towers.constructs.repack.runtime.handler.errors import RepackError
from hf_towers.constructs.repack.runtime.handler.index import build_job
from hf_towers.constructs.repack.runtime.handler.s3io import client
from hf_towers.constructs.repack.runtime.handler.source import Source, decode, encode
from hf_towers.constructs.repack.runtime.handler.tarscan import End, Member

from .archives import tar_gz, weights
from .conftest import World

MIB = 1024 * 1024


def raw_of(event: Member | bytes | End) -> bytes:
    return event.raw if isinstance(event, (Member, End)) else event


def archive() -> bytes:
    link = tarfile.TarInfo("b/hard-link")
    link.type, link.linkname = tarfile.LNKTYPE, "a/first.bin"
    return tar_gz(
        {
            "a/first.bin": weights(700 * 1024),
            "a/" + "long-name-" * 20 + ".json": b"{}" * 3000,
            "z.bin": weights(900 * 1024),
        },
        extra=[(link, None)],
    )


def test_every_checkpoint_resumes_to_the_rest_of_the_stream(world: World) -> None:
    data = archive()
    key = world.put_source(data)
    job = build_job(client(), world.properties(key))
    tar_stream = gzip.decompress(data)
    source = Source(client(), job)
    events = list(source.events())
    assert b"".join(raw_of(e) for e in events) == tar_stream
    tried = 0
    for index in range(len(events)):
        for fraction in (0.0, 0.5, 1.0):
            source = Source(client(), job)
            consumed = 0
            for i, event in enumerate(source.events()):
                if i == index:
                    break
                consumed += len(raw_of(event))
            else:
                continue
            into = int(len(raw_of(event)) * fraction)
            # JSON round trip, as the state object stores it.
            checkpoint = source.checkpoint(into).to_json()
            source.close()
            resumed = Source(client(), job, checkpoint)
            rest = b"".join(raw_of(e) for e in resumed.events())
            # The hard link after the checkpoint needs the restored validator (seen paths).
            assert rest[resumed.skip :] == tar_stream[consumed + into :], (index, fraction)
            tried += 1
    assert tried > 2 * len(events)


def test_resumed_validation_still_refuses_a_bad_entry(world: World) -> None:
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    key = world.put_source(tar_gz({"w.bin": weights(2 * MIB)}, extra=[(fifo, None)]))
    job = build_job(client(), world.properties(key))
    source = Source(client(), job)
    events = source.events()
    next(events), next(events)  # the header and the first data chunk of w.bin
    checkpoint = source.checkpoint().to_json()
    source.close()
    with pytest.raises(RepackError, match=r"entry 'pipe' at offset .* is a fifo"):
        list(Source(client(), job, checkpoint).events())


@pytest.mark.parametrize(
    "value",
    [{"seen": {"a", "b"}, "n": 3, "pairs": {("a", 1)}, "by_int": {1: ["x"]}, "raw": b"\x00"}],
)
def test_validator_attributes_round_trip_through_json(value: dict[str, Any]) -> None:
    import json

    assert decode(json.loads(json.dumps(encode(value)))) == value
