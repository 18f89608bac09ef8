"""Concurrent clients through the real model server: ``make bench-inference`` (second part).

Starts multi-model-server (MMS, Java frontend + Python workers, as the containers run it) on
127.0.0.1 with the toolkit's handler service and the towers' code, on the ``small`` and ``base``
toy CLIPs (``hf_towers.serving.toy_models``, random weights), and measures items/s and p50/p99
latency at 1, 8 and 32 concurrent clients (one item per request, keep-alive connections, one
thread each) for three server setups, all started by the serving image's own launcher
(``hf_towers/constructs/serving_image/start_model_server.py``):

``today``     the toolkit's ``handle`` with MMS's ``batch_size=1`` (what ``--models`` registers,
              as the AWS container and the image did), 2 workers (MMS's default here: one per CPU)
``batch_1w``  the towers' ``inference:handle``, ``batch_size=8``, ``max_batch_delay=5`` ms, one
              worker with every CPU's threads
``batch_2w``  the same with 2 workers of one thread each (the launcher's choice on 2 CPUs)
``nobatch_2w`` ``today``'s handler and batch size 1 with ``batch_2w``'s workers and threads

The three servers of a (size, tower) run side by side (idle ones cost nothing) and are measured
in turns, ``--rounds`` times; medians are reported. Every answer is checked: status 200 and, for
a sample, the row equals the one the same server gave that item alone (each client gets its own
answer). ``main.py serve`` (``hf_towers.serving.local_server``) is measured too: batching on/off
and ``TCP_NODELAY`` on/off at 1 and 32 vision clients.

Writes ``bench/results/inference_concurrency.json``. The machine's CPUs are shared: re-measure
on a quiet machine before quoting absolute figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench.inference import TEXTS, jpeg  # noqa: E402
from hf_towers.constructs.serving_image import start_model_server as launcher  # noqa: E402
from hf_towers.serving.batching import BatchSettings  # noqa: E402
from hf_towers.serving.toy_models import SIZES, build_clip  # noqa: E402

RESULTS = REPO / "bench" / "results" / "inference_concurrency.json"
CLIENTS = (1, 8, 32)
SETUPS: dict[str, dict[str, str]] = {
    # Torch's default: every CPU's threads in each worker.
    "today": {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "OMP_NUM_THREADS": str(os.cpu_count() or 1)},
    "batch_1w": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
    "batch_2w": {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "OMP_NUM_THREADS": "1"},
    # batching off, otherwise batch_2w: what batching alone gains
    "nobatch_2w": {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "OMP_NUM_THREADS": "1"},
}
ITEMS = 16


def bodies(tower: str) -> list[tuple[bytes, str]]:
    """``ITEMS`` distinct one-item requests: (body, content type)."""
    if tower == "vision":
        return [(jpeg(seed), "image/jpeg") for seed in range(ITEMS)]
    return [
        (f"{TEXTS[seed % len(TEXTS)]} variant {seed}".encode(), "text/plain")
        for seed in range(ITEMS)
    ]


def post(
    connection: http.client.HTTPConnection, path: str, body: bytes, content_type: str
) -> tuple[int, bytes]:
    connection.request(
        "POST", path, body, {"Content-Type": content_type, "Accept": "application/json"}
    )
    answer = connection.getresponse()
    return answer.status, answer.read()


def load(
    port: int,
    path: str,
    requests: list[tuple[bytes, str]],
    references: list[np.ndarray[Any, Any]] | None,
    clients: int,
    seconds: float,
) -> dict[str, Any]:
    """``clients`` threads post for ``seconds``; items/s, p50/p99 ms, errors, rows checked."""
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    checked = [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        turn = index
        try:
            while time.monotonic() < stop:
                item = turn % len(requests)
                start = time.perf_counter()
                status, body = post(connection, path, *requests[item])
                latencies[index].append(time.perf_counter() - start)
                if status != 200:
                    with lock:
                        errors.append(f"{status}: {body[:200]!r}")
                elif references is not None and turn % 7 == 0:
                    row = np.asarray(json.loads(body)["embeddings"][0], dtype=np.float32)
                    if not np.allclose(row, references[item], atol=2e-4):
                        with lock:
                            errors.append(f"item {item}: another item's row came back")
                    with lock:
                        checked[0] += 1
                turn += clients
        except (OSError, http.client.HTTPException) as error:
            with lock:
                errors.append(f"client {index}: {type(error).__name__}: {error}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = sorted(t for per_client in latencies for t in per_client)
    return {
        "items_per_second": len(every) / elapsed,
        "p50_ms": 1e3 * every[len(every) // 2] if every else None,
        "p99_ms": 1e3 * every[min(len(every) - 1, int(0.99 * len(every)))] if every else None,
        "requests": len(every),
        "errors": len(errors),
        "error_samples": errors[:3],
        "rows_checked": checked[0],
    }


def references_of(
    port: int, path: str, requests: list[tuple[bytes, str]]
) -> list[np.ndarray[Any, Any]]:
    """Each item's row, asked alone (no batch can mix it up)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    rows = []
    for body, content_type in requests:
        status, answer = post(connection, path, body, content_type)
        if status != 200:
            raise SystemExit(f"reference request failed ({status}): {answer[:300]!r}")
        rows.append(np.asarray(json.loads(answer)["embeddings"][0], dtype=np.float32))
    connection.close()
    return rows


def free_port() -> int:
    """A free loopback port below 32768: MMS 1.1.11 refuses higher ones ("Invalid port number")."""
    import random
    import socket

    for _ in range(100):
        port = random.randint(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port between 20000 and 32000 on 127.0.0.1")


def start_setups(model_dir: Path, tower: str, root: Path) -> dict[str, tuple[Any, int]]:
    """Every setup's MMS, started side by side (their model loads overlap)."""
    started: dict[str, tuple[Any, int]] = {}
    threads, failures = [], []

    def one(name: str) -> None:
        env = {
            k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", *launcher_keys())
        }
        env.update(SETUPS[name], SAGEMAKER_PROGRAM="inference.py", TOWER=tower)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        workdir = root / f"mms-{model_dir.name}-{name}"
        try:
            workdir.mkdir()
            port = free_port()
            process, _ = launcher.start(
                model_dir, port, env, workdir, toolkit_handler=name in ("today", "nobatch_2w")
            )
        except BaseException as error:  # SystemExit with the reason
            failures.append(f"{name}: {error}")
            return
        started[name] = (process, port)

    for name in SETUPS:
        threads.append(threading.Thread(target=one, args=(name,)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    if failures or len(started) != len(SETUPS):
        stop_setups(started)
        failures.append(f"started {sorted(started)} of {sorted(SETUPS)}")
        raise SystemExit("; ".join(failures))
    return started


def launcher_keys() -> tuple[str, ...]:
    return (launcher.WORKERS_ENV, launcher.BATCH_SIZE_ENV, launcher.MAX_DELAY_ENV)


def stop_setups(started: dict[str, tuple[Any, int]]) -> None:
    for process, _ in started.values():
        launcher.stop(process)


def bench_mms(
    tower: str, model_dir: Path, root: Path, rounds: int, seconds: float
) -> dict[str, Any]:
    requests = bodies(tower)
    started = start_setups(model_dir, tower, root)
    path = "/predictions/model"
    try:
        references = {
            name: references_of(port, path, requests) for name, (_, port) in started.items()
        }
        runs: dict[str, dict[int, list[dict[str, Any]]]] = {
            n: {c: [] for c in CLIENTS} for n in started
        }
        for _ in range(rounds):
            for clients in CLIENTS:
                for name, (_, port) in started.items():
                    runs[name][clients].append(
                        load(port, path, requests, references[name], clients, seconds)
                    )
    finally:
        stop_setups(started)
    return {name: {str(c): _median(per[c]) for c in CLIENTS} for name, per in runs.items()}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("items_per_second", "p50_ms", "p99_ms")
    summary: dict[str, Any] = {
        key: statistics.median(run[key] for run in runs if run[key] is not None) for key in keys
    }
    summary["runs_items_per_second"] = [round(run["items_per_second"], 1) for run in runs]
    summary["errors"] = sum(run["errors"] for run in runs)
    summary["error_samples"] = [s for run in runs for s in run["error_samples"]][:3]
    summary["rows_checked"] = sum(run["rows_checked"] for run in runs)
    return summary


def bench_serve(model_dir: Path, rounds: int, seconds: float) -> dict[str, Any]:
    """``main.py serve``'s server in a child process: batching and TCP_NODELAY on/off."""
    import subprocess

    requests = bodies("vision")
    setups = {
        "nodelay_batch8": {"MODEL_SERVER_BATCH_SIZE": "8", "BENCH_NODELAY": "1"},
        "nodelay_batch1": {"MODEL_SERVER_BATCH_SIZE": "1", "BENCH_NODELAY": "1"},
        "nagle_batch1": {"MODEL_SERVER_BATCH_SIZE": "1", "BENCH_NODELAY": "0"},
    }
    child = (
        "import os, sys, socket\n"
        "from pathlib import Path\n"
        "from hf_towers.serving import local_server as ls\n"
        "if os.environ['BENCH_NODELAY'] == '0':\n"
        "    ls.LocalServer.get_request = ls.ThreadingHTTPServer.get_request\n"
        "server = ls.build_server(Path(sys.argv[1]), 'vision', port=int(sys.argv[2]))\n"
        "print('ready', flush=True)\n"
        "server.serve_forever()\n"
    )
    servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
    try:
        for name, extra in setups.items():
            port = free_port()
            env = {**os.environ, **extra, "PYTHONPATH": str(REPO)}
            process = subprocess.Popen(
                [sys.executable, "-c", child, str(model_dir), str(port)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            servers[name] = (process, port)
        for name, (process, _) in servers.items():
            if process.stdout is None or process.stdout.readline().strip() != "ready":
                raise SystemExit(f"serve ({name}) did not start")
        references = {
            name: references_of(port, "/invocations", requests)
            for name, (_, port) in servers.items()
        }
        runs: dict[str, dict[int, list[dict[str, Any]]]] = {
            n: {c: [] for c in (1, 32)} for n in servers
        }
        for _ in range(rounds):
            for clients in (1, 32):
                for name, (_, port) in servers.items():
                    runs[name][clients].append(
                        load(port, "/invocations", requests, references[name], clients, seconds)
                    )
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    return {name: {str(c): _median(per[c]) for c in (1, 32)} for name, per in runs.items()}


def table(results: dict[str, Any]) -> str:
    lines = ["size  tower  setup     clients  items/s  p50 ms  p99 ms  errors"]
    for size, towers in results["mms"].items():
        for tower, setups in towers.items():
            for setup, points in setups.items():
                for clients, point in points.items():
                    lines.append(
                        f"{size:5} {tower:6} {setup:9} {clients:>7} {point['items_per_second']:8.1f}"
                        f" {point['p50_ms']:7.1f} {point['p99_ms']:7.1f} {point['errors']:7}"
                    )
    for setup, points in results.get("serve", {}).items():
        for clients, point in points.items():
            lines.append(
                f"serve vision {setup:15} {clients:>3} {point['items_per_second']:8.1f}"
                f" {point['p50_ms']:7.1f} {point['p99_ms']:7.1f} {point['errors']:7}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: small,base")
    parser.add_argument("--towers", default="vision,text")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--no-serve", action="store_true", help="skip main.py serve's server")
    args = parser.parse_args(argv)
    if shutil.which("java") is None:
        raise SystemExit(
            "multi-model-server needs Java 11+ on PATH (apt-get install openjdk-17-jre-headless)"
        )
    results: dict[str, Any] = {
        "command": "make bench-inference (python bench/concurrency.py)",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "setups": SETUPS,
        "batch": {
            "max_requests": BatchSettings().max_requests,
            "max_delay_ms": 1e3 * BatchSettings().max_delay,
        },
        "mms": {},
    }
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    try:
        for size in args.sizes.split(","):
            model_dir = root / size
            build_clip(model_dir, SIZES[size])
            results["mms"][size] = {}
            for tower in args.towers.split(","):
                view = root / f"{size}-{tower}"
                view.mkdir()
                for entry in model_dir.iterdir():
                    (view / entry.name).symlink_to(entry)
                shutil.copytree(REPO / "model_code" / tower, view / "code")
                results["mms"][size][tower] = bench_mms(
                    tower, view, root, args.rounds, args.seconds
                )
                print(size, tower, json.dumps(results["mms"][size][tower]), flush=True)
            if size == "small" and not args.no_serve:
                results["serve"] = bench_serve(model_dir, args.rounds, args.seconds)
                print("serve", json.dumps(results["serve"]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results["seconds"] = round(time.monotonic() - began, 1)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"wrote {RESULTS} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
