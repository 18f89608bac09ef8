"""Reads that survive the network, inside Lambda's clock: faults injected by a TCP proxy in front
of the real (moto) S3 HTTP endpoint; the handler reaches S3 only through the proxy."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from typing import Any, cast

import pytest

from hf_towers.constructs.repack.runtime.handler import compressed, prefix, s3io
from hf_towers.constructs.repack.runtime.handler.errors import RepackError
from hf_towers.constructs.repack.runtime.handler.index import build_job
from hf_towers.constructs.repack.runtime.handler.job import Job, load_state
from hf_towers.constructs.repack.runtime.handler.props import Event
from hf_towers.constructs.repack.runtime.handler.s3io import client

from .archives import INFERENCE, REQUIREMENTS, check_archive, expected_tree, tar_gz, weights
from .conftest import World
from .faultproxy import Fault, FaultProxy

MIB = 1024 * 1024
SOURCE_KEY = "models/model.tar.gz"


@pytest.fixture
def proxy(
    aws_env: None, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultProxy]:
    """The proxy, started; the handler's clients (``s3io.client()``) go through it."""
    fault_proxy = FaultProxy(moto_endpoint, match=SOURCE_KEY).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.url)
    monkeypatch.setattr(s3io, "READ_TIMEOUT", 1.0)
    monkeypatch.setattr(s3io, "BACKOFF", 0.05)
    yield fault_proxy
    fault_proxy.stop()


def code_files() -> dict[str, bytes]:
    return {"code/inference.py": INFERENCE, "code/requirements.txt": REQUIREMENTS}


def fast_job(world: World, size: int = 6 * MIB) -> tuple[Job, dict[str, bytes], bytes]:
    files = {"config.json": b"{}", "model.safetensors": weights(size)}
    source = tar_gz(files, level=1)
    world.put_source(source, key=SOURCE_KEY)
    return build_job(client(), world.properties(SOURCE_KEY)), files, source


def forever() -> float:
    return 900.0


def test_reset_mid_body_resumes_with_a_ranged_get_pinned_to_the_etag(
    world: World, proxy: FaultProxy
) -> None:
    job, files, source = fast_job(world)
    proxy.faults = [Fault("reset", MIB), Fault("reset", 3 * MIB)]
    assert compressed.run(client(), job, forever)
    assert check_archive(world.get(job.out_key)) == expected_tree(files | code_files())
    assert len(proxy.requests) == 3
    for request in proxy.requests[1:]:
        assert "range: bytes=" in request.headers.lower()
        assert f"if-match: {job.source_etag}".lower() in request.headers.lower()
    # Nothing read twice beyond what the resets cut off.
    assert proxy.served <= len(source) + 2 * MIB


def test_stall_is_detected_by_the_read_timeout_and_resumed(world: World, proxy: FaultProxy) -> None:
    job, files, _ = fast_job(world)
    proxy.faults = [Fault("stall", 2 * MIB)]
    started = time.monotonic()
    assert compressed.run(client(), job, forever)
    assert time.monotonic() - started < 15  # botocore's default would wait 60 s, then fail
    assert check_archive(world.get(job.out_key)) == expected_tree(files | code_files())
    assert "range: bytes=" in proxy.requests[-1].headers.lower()


def test_slowdown_answers_to_a_resumed_read_are_retried(world: World, proxy: FaultProxy) -> None:
    """The read's own client has botocore's retries off; the read retries 503 SlowDown itself."""
    job, files, _ = fast_job(world)
    proxy.faults = [Fault("reset", MIB), Fault("slowdown", 0), Fault("slowdown", 0)]
    assert compressed.run(client(), job, forever)
    assert check_archive(world.get(job.out_key)) == expected_tree(files | code_files())
    assert len(proxy.requests) == 4


def test_repeated_failures_end_in_a_reason_naming_the_object_and_the_range(
    world: World, proxy: FaultProxy
) -> None:
    job, _, _ = fast_job(world)
    proxy.faults = [Fault("reset", MIB)] + [Fault("reset", 0)] * 10
    with pytest.raises(RepackError) as err:
        compressed.run(client(), job, forever)
    reason = str(err.value)
    assert reason.startswith(f"s3://{world.source_bucket}/{SOURCE_KEY}: GetObject (bytes "), reason
    assert "bytes 0-" not in reason  # the failing attempts were the resumed ones
    assert f"gave up after {s3io.READ_ATTEMPTS} attempts" in reason
    assert world.open_uploads() == [] and load_state(client(), job) is None


def test_object_replaced_during_the_read_is_a_distinct_error(
    world: World, proxy: FaultProxy
) -> None:
    job, _, _ = fast_job(world)
    replace = lambda: world.put_source(tar_gz({"other": b"x"}), key=SOURCE_KEY)  # noqa: E731
    proxy.faults = [Fault("reset", 2 * MIB, then=replace)]
    with pytest.raises(RepackError) as err:
        compressed.run(client(), job, forever)
    reason = str(err.value)
    assert reason.startswith(f"s3://{world.source_bucket}/{SOURCE_KEY}: GetObject (bytes "), reason
    assert "changed since it was validated" in reason


def test_failed_cleanup_keeps_the_original_reason(world: World, proxy: FaultProxy) -> None:
    """A bad entry found late on the stream path, and AbortMultipartUpload denied as well."""
    import tarfile

    info = tarfile.TarInfo("pipe")
    info.type = tarfile.FIFOTYPE
    files = {"code/inference.py": b"old\n", "w.bin": weights(8 * MIB)}
    world.put_source(tar_gz(files, extra=[(info, None)], level=1), key=SOURCE_KEY)
    job = build_job(client(), world.properties(SOURCE_KEY))
    proxy.deny = [("DELETE", "uploadId=")]
    with pytest.raises(RepackError) as err:
        compressed.run(client(), job, forever)
    reason = str(err.value)
    assert reason.startswith(f"s3://{world.source_bucket}/{SOURCE_KEY}: entry 'pipe'"), reason
    assert "is a fifo; cleanup also failed: " in reason
    assert f"s3://{world.out_bucket}/{job.out_key}: AbortMultipartUpload: access denied" in reason


def run_with_budget(
    proxy: FaultProxy, step: Callable[[Callable[[], float]], bool], budget: int
) -> int:
    """Invoke ``step`` until done, each invocation's clock running out after ``budget`` bytes."""
    for invocation in range(1, 100):
        mark = proxy.served

        def clock(mark: int = mark) -> float:
            return 900.0 if proxy.served - mark < budget else 10.0

        if step(clock):
            return invocation
    raise AssertionError("never finished")


def throttled_source(world: World, *, with_code: bool, size: int = 32 * MIB) -> tuple[bytes, Any]:
    files = {"config.json": b"{}", "model.safetensors": weights(size)}
    if with_code:
        files |= {"code/inference.py": b"old\n"}
    source = tar_gz(files, level=1)  # one gzip member, as `tar czf` writes
    world.put_source(source, key=SOURCE_KEY)
    return source, {k: v for k, v in files.items() if not k.startswith("code/")}


@pytest.mark.parametrize("with_code", [False, True], ids=["fast", "stream"])
def test_throttled_reads_with_a_small_budget_read_the_source_about_once(
    world: World, proxy: FaultProxy, with_code: bool
) -> None:
    source, files = throttled_source(world, with_code=with_code)
    job = build_job(client(), world.properties(SOURCE_KEY))
    proxy.rate = 64 * MIB
    invocations = run_with_budget(
        proxy, lambda clock: compressed.run(client(), job, clock), budget=6 * MIB
    )
    assert invocations >= 4
    assert check_archive(world.get(job.out_key)) == expected_tree(files | code_files())
    ratio = proxy.served / len(source)
    print(f"{invocations} invocations, {proxy.served / MIB:.1f} MiB served, {ratio:.3f}x")
    # Per invocation: at most ~256 KiB back to the access point, plus what was in flight.
    assert proxy.served <= 1.1 * len(source) + invocations * 512 * 1024, ratio


def test_uncompressed_extraction_with_a_small_budget_reads_the_source_about_twice(
    world: World, proxy: FaultProxy
) -> None:
    """Validation (one read) then extraction (one read), both resumed from checkpoints."""
    files = {f"shard-{i}.bin": weights(4 * MIB) for i in range(6)} | {"config.json": b"{}"}
    source = tar_gz(files, level=1)
    world.put_source(source, key=SOURCE_KEY)
    job = build_job(client(), world.properties(SOURCE_KEY, Compressed="false"))
    # Slower: the extraction uploads files between reads, and the socket fills meanwhile.
    proxy.rate = 16 * MIB
    invocations = run_with_budget(
        proxy, lambda clock: prefix.run(client(), job, clock), budget=6 * MIB
    )
    assert invocations >= 4
    got = {
        k[len(job.out_key) :]: world.get(k) for k in world.out_keys() if k.startswith(job.out_key)
    }
    assert got == files | code_files()
    ratio = proxy.served / len(source)
    print(f"{invocations} invocations, {proxy.served / MIB:.1f} MiB served, {ratio:.3f}x")
    assert proxy.served <= 2.2 * len(source) + invocations * MIB, ratio


def test_delete_after_a_failed_create_leaves_the_other_stacks_artifact(
    world: World, proxy: FaultProxy
) -> None:
    """Stack A deployed; stack B (identical properties) fails its Create on the network; the
    Delete CloudFormation sends for B removes B's leftovers only."""
    from hf_towers.constructs.repack.runtime.handler import index

    from .test_lifecycle import Context, cfn_event, deploy, key_of

    files = {"code/inference.py": b"old\n", "w.bin": weights(4 * MIB)}
    world.put_source(tar_gz(files, level=1), key=SOURCE_KEY)
    props = world.properties(SOURCE_KEY, RetainOnDelete="false")
    stack_b = {"StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/b/1"}
    a_id = deploy(cfn_event("Create", props))["PhysicalResourceId"]

    event = cfn_event("Create", props, **stack_b)
    response = index.on_event(event, Context())
    b_id = response["PhysicalResourceId"]
    assert b_id != a_id
    proxy.faults = [Fault("reset", 64 * 1024)] * 20
    with pytest.raises(RepackError) as err:
        index.is_complete(cast(Event, {**event, **response}), Context())
    assert str(err.value).startswith(f"s3://{world.source_bucket}/{SOURCE_KEY}: GetObject (bytes ")
    proxy.faults = []

    index.on_event(cfn_event("Delete", props, PhysicalResourceId=b_id, **stack_b), Context())
    assert world.open_uploads() == []
    assert world.out_keys() == [key_of(a_id)]
    assert check_archive(world.get(key_of(a_id)))["w.bin"] == files["w.bin"]


@pytest.fixture
def ranged(world: World, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, str]:
    """A 6 MiB source read by ``read_ranges`` in 1 MiB pieces (small pieces: the same code)."""
    data = weights(6 * MIB)
    world.put_source(data, key=SOURCE_KEY)
    monkeypatch.setattr(s3io, "RANGES_FROM", 0)
    head = world.s3.head_object(Bucket=world.source_bucket, Key=SOURCE_KEY)
    return data, str(head["ETag"])


def read_ranged(world: World, etag: str, **kwargs: Any) -> Generator[bytes, None, None]:
    return s3io.read_ranges(
        client(), world.source_bucket, SOURCE_KEY, size=6 * MIB, etag=etag, piece=MIB, **kwargs
    )


def test_parallel_ranges_join_up_in_order_pinned_to_the_etag(
    world: World, proxy: FaultProxy, ranged: tuple[bytes, str]
) -> None:
    data, etag = ranged
    assert b"".join(read_ranged(world, etag)) == data
    assert len(proxy.requests) == 6
    ranges = sorted(
        r.headers.lower().split("range: bytes=")[1].split("\r")[0] for r in proxy.requests
    )
    assert ranges == sorted(f"{i * MIB}-{(i + 1) * MIB - 1}" for i in range(6))
    assert all(f"if-match: {etag}".lower() in r.headers.lower() for r in proxy.requests)
    assert proxy.served == len(data)


def test_parallel_ranges_resume_a_reset_range_from_where_it_stopped(
    world: World, proxy: FaultProxy, ranged: tuple[bytes, str]
) -> None:
    data, etag = ranged
    proxy.faults = [Fault("reset", 300 * 1024), Fault("slowdown", 0)]
    assert b"".join(read_ranged(world, etag)) == data
    starts = [
        int(r.headers.lower().split("range: bytes=")[1].split("-")[0]) for r in proxy.requests
    ]
    # The faults hit the first two requests to arrive, whichever ranges they are: the reset one
    # resumes from the last whole chunk received; the SlowDown one is asked again.
    resumed = [start for start in starts if start % MIB]
    assert len(resumed) == 1 and 0 < resumed[0] % MIB <= 300 * 1024, starts
    assert len(starts) == 6 + 2 and len(set(starts)) == 6 + 1, starts
    assert proxy.served <= len(data) + 2 * MIB


def test_parallel_ranges_fail_naming_the_range_when_the_object_changes(
    world: World, proxy: FaultProxy, ranged: tuple[bytes, str]
) -> None:
    _, etag = ranged
    world.put_source(weights(6 * MIB), key=SOURCE_KEY)  # replaced after it was validated
    with pytest.raises(s3io.S3Error) as err:
        b"".join(read_ranged(world, etag))
    reason = str(err.value)
    assert reason.startswith(f"s3://{world.source_bucket}/{SOURCE_KEY}: GetObject (bytes ")
    assert "changed since it was validated" in reason


def test_parallel_ranges_closed_early_start_nothing_more(
    world: World, proxy: FaultProxy, ranged: tuple[bytes, str]
) -> None:
    _, etag = ranged
    chunks = read_ranged(world, etag, workers=2)
    next(chunks)
    chunks.close()  # a checkpoint stop
    time.sleep(0.5)
    assert len(proxy.requests) <= 3  # the two in flight (and the one queued behind the first)
