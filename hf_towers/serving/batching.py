"""Cross-client batching with a bounded delay, as multi-model-server does it for a worker.

Concurrent requests wait in one queue; one thread takes the oldest, gathers more until it has
``max_requests`` or ``max_delay`` has passed since that oldest request arrived, and runs them as
one batch (``HandlerHost.invoke_batch``: one forward pass, each request its own answer). A
request therefore waits at most ``max_delay`` for company, plus the batches ahead of it.

The settings are the serving image's environment variables, read the same way here (``main.py
serve``) and in ``hf_towers/constructs/serving_image/start_model_server.py``:

``MODEL_SERVER_BATCH_SIZE``
    most requests in one batch (default 8; 1 turns batching off).
``MODEL_SERVER_MAX_BATCH_DELAY_MS``
    most milliseconds the oldest request of a batch waits for more (default 5).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

BATCH_SIZE_ENV = "MODEL_SERVER_BATCH_SIZE"
MAX_DELAY_ENV = "MODEL_SERVER_MAX_BATCH_DELAY_MS"
DEFAULT_BATCH_SIZE = 8
"""Requests per batch: 8 clients' single items already fill most of the gain of a batched
forward on CPU (bench/results/inference_concurrency.json); MAX_BATCH_SIZE still caps the items
of one forward pass inside the handler."""
DEFAULT_MAX_DELAY_MS = 5
"""A lone request pays at most this; short next to a forward pass of the toy towers (6-20 ms)."""
MAX_BATCH_SIZE_LIMIT = 256
MAX_DELAY_MS_LIMIT = 1000

Request = TypeVar("Request")
Answer = TypeVar("Answer")


@dataclass(frozen=True)
class BatchSettings:
    """``max_requests`` per batch and ``max_delay`` seconds the oldest of them may wait."""

    max_requests: int = DEFAULT_BATCH_SIZE
    max_delay: float = DEFAULT_MAX_DELAY_MS / 1000

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> BatchSettings:
        """Read ``MODEL_SERVER_BATCH_SIZE`` / ``MODEL_SERVER_MAX_BATCH_DELAY_MS``; ``ValueError``
        naming the variable, its value and the allowed range for a bad one."""
        size = _integer(environ, BATCH_SIZE_ENV, DEFAULT_BATCH_SIZE, 1, MAX_BATCH_SIZE_LIMIT)
        delay = _integer(environ, MAX_DELAY_ENV, DEFAULT_MAX_DELAY_MS, 0, MAX_DELAY_MS_LIMIT)
        return cls(size, delay / 1000)


def _integer(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(
            f"environment variable {name}={raw!r}: expected a whole number from {low} to "
            f"{high} (default {default}); set it in the tower's environment or unset it"
        )
    return int(raw)


@dataclass
class _Job(Generic[Request, Answer]):
    request: Request
    arrived: float
    future: Future[Answer]


def collect(
    jobs: queue.Queue[_Job[Request, Answer]],
    first: _Job[Request, Answer],
    settings: BatchSettings,
    clock: Callable[[], float] = time.monotonic,
) -> list[_Job[Request, Answer]]:
    """``first`` and the jobs that join it: at most ``settings.max_requests``, waiting no later
    than ``first.arrived + settings.max_delay`` (jobs already queued join without waiting)."""
    batch = [first]
    deadline = first.arrived + settings.max_delay
    while len(batch) < settings.max_requests:
        remaining = deadline - clock()
        try:
            batch.append(jobs.get(timeout=remaining) if remaining > 0 else jobs.get_nowait())
        except queue.Empty:
            break
    return batch


class Batcher(Generic[Request, Answer]):
    """Runs ``run_batch`` (requests in, one answer each in order out) on one thread over the
    batches ``collect`` forms; ``submit`` blocks the caller until its own answer is ready."""

    def __init__(
        self, run_batch: Callable[[list[Request]], list[Answer]], settings: BatchSettings
    ) -> None:
        self.run_batch = run_batch
        self.settings = settings
        self.batch_sizes: deque[int] = deque(maxlen=10000)
        """Sizes of the batches run so far (the last 10,000)."""
        self._jobs: queue.Queue[_Job[Request, Answer]] = queue.Queue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> Answer:
        """This request's answer; raises what ``run_batch`` raised for its batch."""
        if self._closed.is_set():
            raise RuntimeError("the batcher is closed")
        job: _Job[Request, Answer] = _Job(request, time.monotonic(), Future())
        self._jobs.put(job)
        return job.future.result()

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                first = self._jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = collect(self._jobs, first, self.settings)
            self.batch_sizes.append(len(batch))
            try:
                answers = self.run_batch([job.request for job in batch])
                if len(answers) != len(batch):
                    raise RuntimeError(f"{len(answers)} answers for {len(batch)} requests")
            except BaseException as error:  # every waiting client gets it, none hangs
                for job in batch:
                    job.future.set_exception(error)
                continue
            for job, answer in zip(batch, answers, strict=True):
                job.future.set_result(answer)

    def close(self) -> None:
        """Stop the thread after the batch in progress."""
        self._closed.set()
        self._thread.join(timeout=5)
