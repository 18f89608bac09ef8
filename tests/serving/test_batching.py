"""``hf_towers.serving.batching``: the bounded delay, the batch size, and the settings."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import pytest

from hf_towers.serving.batching import Batcher, BatchSettings, _Job, collect


class FakeQueue(queue.Queue):  # type: ignore[type-arg]
    """Jobs arrive at given clock times; ``get(timeout)`` advances the fake clock."""

    def __init__(self, arrivals: list[float], clock: list[float]) -> None:
        super().__init__()
        self.arrivals = arrivals
        self.clock = clock
        self.timeouts: list[float] = []

    def get(self, block: bool = True, timeout: float | None = None) -> _Job[int, int]:
        self.timeouts.append(timeout or 0.0)
        limit = self.clock[0] + (timeout or 0.0)
        if self.arrivals and self.arrivals[0] <= limit:
            self.clock[0] = max(self.clock[0], self.arrivals.pop(0))
            return job(self.clock[0])
        self.clock[0] = limit
        raise queue.Empty

    def get_nowait(self) -> _Job[int, int]:
        return self.get(timeout=0.0)


def job(arrived: float) -> _Job[int, int]:
    return _Job(0, arrived, Future())


def test_waits_no_later_than_the_first_arrival_plus_the_delay() -> None:
    clock = [0.0]
    jobs = FakeQueue([0.001, 0.004, 0.0049, 0.006, 0.007], clock)
    batch = collect(jobs, job(0.0), BatchSettings(8, 0.005), clock=lambda: clock[0])
    assert [j.arrived for j in batch] == [0.0, 0.001, 0.004, 0.0049]  # 0.006 is too late
    assert clock[0] == pytest.approx(0.005)
    assert all(t <= 0.005 + 1e-12 for t in jobs.timeouts)


def test_stops_at_max_requests_without_waiting_more() -> None:
    clock = [0.0]
    jobs = FakeQueue([0.0, 0.0, 0.0, 0.0], clock)
    batch = collect(jobs, job(0.0), BatchSettings(3, 1.0), clock=lambda: clock[0])
    assert len(batch) == 3 and len(jobs.arrivals) == 2
    assert clock[0] == 0.0


def test_an_old_first_job_takes_only_what_is_queued() -> None:
    """A request that already waited its delay behind a batch is not held any longer."""
    clock = [10.0]
    jobs = FakeQueue([9.999, 10.5], clock)
    batch = collect(jobs, job(9.0), BatchSettings(8, 0.005), clock=lambda: clock[0])
    assert len(batch) == 2 and jobs.timeouts == [0.0, 0.0]


def test_batch_size_one_never_waits() -> None:
    clock = [0.0]
    jobs = FakeQueue([0.0], clock)
    assert len(collect(jobs, job(0.0), BatchSettings(1, 1.0), clock=lambda: clock[0])) == 1
    assert jobs.timeouts == []


def test_concurrent_submitters_each_get_their_own_answer_in_shared_batches() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()

    def run(requests: list[int]) -> list[int]:
        gate.wait(5)
        seen.append(requests)
        return [r * 10 for r in requests]

    batcher: Batcher[int, int] = Batcher(run, BatchSettings(4, 0.05))
    results: dict[int, int] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, batcher.submit(i)))
        for i in range(9)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    batcher.close()
    assert results == {i: i * 10 for i in range(9)}
    assert max(len(b) for b in seen) <= 4 and len(seen) < 9


def test_a_failing_batch_reaches_its_callers_and_serving_goes_on() -> None:
    def run(requests: list[int]) -> list[int]:
        if 0 in requests:
            raise RuntimeError("model failed")
        return requests

    batcher: Batcher[int, int] = Batcher(run, BatchSettings(1, 0.0))
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.submit(0)
    assert batcher.submit(5) == 5
    batcher.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, BatchSettings(8, 0.005)),
        ({"MODEL_SERVER_BATCH_SIZE": "1"}, BatchSettings(1, 0.005)),
        ({"MODEL_SERVER_MAX_BATCH_DELAY_MS": "20"}, BatchSettings(8, 0.02)),
    ],
)
def test_settings_from_the_environment(env: dict[str, str], expected: BatchSettings) -> None:
    assert BatchSettings.from_environment(env) == expected


@pytest.mark.parametrize(
    "env",
    [
        {"MODEL_SERVER_BATCH_SIZE": "0"},
        {"MODEL_SERVER_BATCH_SIZE": "eight"},
        {"MODEL_SERVER_MAX_BATCH_DELAY_MS": "5000"},
    ],
)
def test_a_bad_setting_names_the_variable_and_the_range(env: dict[str, str]) -> None:
    name, value = next(iter(env.items()))
    with pytest.raises(ValueError, match=f"{name}='{value}': expected a whole number from"):
        BatchSettings.from_environment(env)
