"""Start multi-model-server (MMS) for the serving image, with cross-client batching.

The toolkit's own start (``sagemaker_huggingface_inference_toolkit.serving.main``, what the AWS
Hugging Face container runs) loads the model with ``--models``; MMS 1.1.11 registers such a
startup model with ``batch_size=1`` and ``max_batch_delay=100`` fixed
(``ModelManager.registerModel(url, name, preload)`` in ``mms/frontend/model-server.jar``; no
property or environment variable changes them), and the toolkit's ``handle`` answers only the
first request of a batch. Here MMS starts with no model and the model is registered through its
management API (``POST /models?...&batch_size=&max_batch_delay=``), with the tower's own
``inference:handle`` (``model_code/*/inference.py``), which answers every request of a batch.
nginx then sends ``/invocations`` to ``/predictions/model``: MMS routes a bare ``/invocations``
only to a startup model.

A model artifact that brings a ``code/`` module without ``handle`` (or ``transform_batch``) is
served by the toolkit's handler with ``batch_size=1``, as the AWS container serves it.

Environment (besides the toolkit's own: ``SAGEMAKER_BIND_TO_PORT``, ``SAGEMAKER_PROGRAM`` ...):

``SAGEMAKER_MODEL_SERVER_WORKERS``
    workers; unset: ``choose_workers`` for this machine.
``MODEL_SERVER_BATCH_SIZE``, ``MODEL_SERVER_MAX_BATCH_DELAY_MS``
    see ``hf_towers/serving/batching.py`` (defaults 8 and 5 ms; 1 turns batching off).
``OMP_NUM_THREADS``
    torch threads per worker; unset: the CPUs divided among the workers.

Run as ``python start_model_server.py`` (the entrypoint does) or ``--model-dir DIR --port N``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

MODEL_NAME = "model"
BATCH_HANDLER = "handle"
TOOLKIT_HANDLER = "sagemaker_huggingface_inference_toolkit.handler_service"
# Kept in step with hf_towers/serving/batching.py (this file is copied into the image alone).
BATCH_SIZE_ENV, MAX_DELAY_ENV = "MODEL_SERVER_BATCH_SIZE", "MODEL_SERVER_MAX_BATCH_DELAY_MS"
DEFAULT_BATCH_SIZE, DEFAULT_MAX_DELAY_MS = 8, 5
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
WORKERS_PER_GPU = 2
"""A worker decodes/tokenises on one CPU thread, then runs the GPU: with two per GPU one decodes
while the other's forward runs. Each holds its own weights (ViT-B/32 in fp16: ~0.3 GB)."""
MAX_CPU_WORKERS = 8
"""CPU: one single-threaded worker per CPU, at most this many (each holds its own weights; past
8 the CPUs are shared out as threads). bench/results/inference_concurrency.json on 2 shared CPUs:
two 1-thread workers with batching served 5-10x the items/s of one 2-thread worker, whose torch
threads stall each other whenever the CPUs are busy with anything else."""
STARTUP_SECONDS = 600
MAX_PORT = 32767
"""MMS's ``Connector`` refuses a higher port ("Invalid port number")."""


def choose_workers(cpus: int, gpus: int) -> int:
    """Model-server workers for ``cpus`` CPUs and ``gpus`` GPUs (see ``WORKERS_PER_GPU`` and
    ``MAX_CPU_WORKERS``); never more workers than CPUs."""
    wanted = WORKERS_PER_GPU * gpus if gpus else MAX_CPU_WORKERS
    return max(1, min(wanted, cpus))


def threads_per_worker(cpus: int, workers: int) -> int:
    """Torch threads for each of ``workers`` on ``cpus`` CPUs: a share each, at least one."""
    return max(1, cpus // workers)


def _count_gpus() -> int:
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"],  # noqa: S607 - a fixed argv, nvidia-smi from PATH
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return 0
    return sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))


def _setting(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SystemExit(
            f"environment variable {name}={raw!r}: expected a whole number from {low} to {high} "
            f"(default {default}); fix it in the tower's environment or unset it"
        )
    return int(raw)


def batches(module_file: Path) -> bool:
    """Whether the handler module defines ``handle`` and ``transform_batch`` at top level (read,
    not imported: importing loads torch in this launcher)."""
    try:
        tree = ast.parse(module_file.read_text())
    except (OSError, SyntaxError, ValueError):
        return False
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    return {BATCH_HANDLER, "transform_batch"} <= names


def _handler_module(model_dir: Path, module: str, search_path: str) -> Path | None:
    """The file MMS's worker imports as ``module``: ``model_dir/code`` first, then PYTHONPATH."""
    for folder in [model_dir / "code", *(Path(p) for p in search_path.split(":") if p)]:
        if (folder / f"{module}.py").is_file():
            return folder / f"{module}.py"
    return None


def registration(
    environ: Mapping[str, str],
    model_dir: Path,
    workers: int,
    search_path: str,
    *,
    toolkit_handler: bool = False,
) -> dict[str, str]:
    """Query of MMS's ``POST /models`` for the tower: batching when its code can, else (or with
    ``toolkit_handler``, as the AWS container registers it) the toolkit's handler, batch 1."""
    module = environ.get("SAGEMAKER_PROGRAM", "inference").strip().removesuffix(".py")
    size = _setting(environ, BATCH_SIZE_ENV, DEFAULT_BATCH_SIZE, 1, 256)
    delay = _setting(environ, MAX_DELAY_ENV, DEFAULT_MAX_DELAY_MS, 0, 1000)
    found = _handler_module(model_dir, module, search_path)
    if toolkit_handler or found is None or not batches(found):
        handler, size = TOOLKIT_HANDLER, 1
    else:
        handler = f"{module}:{BATCH_HANDLER}"
    return {
        "url": str(model_dir),
        "model_name": MODEL_NAME,
        "handler": handler,
        "batch_size": str(size),
        "max_batch_delay": str(delay),
        "initial_workers": str(workers),
        "synchronous": "true",
    }


def mms_properties(port: int, workers: int, timeout_seconds: int, vmargs: str) -> str:
    """MMS config: the toolkit's defaults, both APIs on loopback ``port``, no startup model."""
    return "\n".join(
        [
            "enable_envvars_config=true",
            "decode_input_request=false",
            "load_models=",
            f"default_workers_per_model={workers}",
            f"inference_address=http://127.0.0.1:{port}",
            f"management_address=http://127.0.0.1:{port}",
            f"default_response_timeout={timeout_seconds}",
            f"max_request_size={6 * 1024 * 1024 + 1024}",
            f"vmargs={vmargs}",
            "",
        ]
    )


def _toolkit_log_config() -> str:
    """The log4j2 config the toolkit starts MMS with (``sagemaker_inference/etc/log4j2.xml``)."""
    spec = importlib.util.find_spec("sagemaker_inference")
    if spec is None or spec.origin is None:
        raise SystemExit("sagemaker-inference is not installed: install the inference packages")
    return str(Path(spec.origin).parent / "etc" / "log4j2.xml")


def _request(method: str, url: str, timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)  # noqa: S310 (a loopback http URL)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def _wait_for_frontend(base: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"multi-model-server exited with {process.returncode} at start")
        try:
            _request("GET", f"{base}/models", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"multi-model-server did not answer on {base} within {STARTUP_SECONDS} s")


def start(
    model_dir: Path,
    port: int,
    environ: MutableMapping[str, str],
    workdir: Path,
    *,
    toolkit_handler: bool = False,
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start MMS on ``port`` serving ``model_dir``, register it (see ``registration``), return
    the process and the registration; raises ``SystemExit`` with the reason when either fails."""
    if not 0 < port <= MAX_PORT:
        raise SystemExit(f"port {port}: MMS 1.1.11 takes 1 to {MAX_PORT} (SAGEMAKER_BIND_TO_PORT)")
    cpus = len(os.sched_getaffinity(0))
    workers_raw = environ.get(WORKERS_ENV, "").strip()
    workers = (
        _setting(environ, WORKERS_ENV, 1, 1, 256)
        if workers_raw
        else choose_workers(cpus, _count_gpus())
    )
    environ.setdefault("OMP_NUM_THREADS", str(threads_per_worker(cpus, workers)))
    environ.setdefault(WORKERS_ENV, str(workers))  # the handlers read it (threads per worker)
    # The toolkit's start puts code/ on the workers' path the same way.
    environ["PYTHONPATH"] = f"{model_dir / 'code'}:{environ.get('PYTHONPATH', '')}"
    # MMS's pid file (TMPDIR) and the workers' sockets (TEMP -> java.io.tmpdir): its own folder,
    # so that two servers on one machine do not share /tmp/.mms.sock.9000.
    environ["TMPDIR"] = environ["TEMP"] = str(workdir)
    config = workdir / "mms.properties"
    timeout = _setting(environ, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60, 1, 3600)
    vmargs = environ.get("SAGEMAKER_MODEL_SERVER_VMARGS", "-XX:-UseContainerSupport")
    config.write_text(mms_properties(port, workers, timeout, vmargs))
    # Model store "/" and the absolute model path as url, as the toolkit passes them.
    command = ["multi-model-server", "--start", "--foreground", "--model-store", "/"]
    command += ["--mms-config", str(config), "--log-config", _toolkit_log_config()]
    # Its own process group: the Java frontend and its workers outlive a SIGTERM to the
    # ``multi-model-server`` wrapper alone, so ``stop`` signals the whole group.
    process = subprocess.Popen(  # noqa: S603 - argv built above
        command,
        env=dict(environ),
        start_new_session=True,
        cwd=workdir,  # MMS logs to ./logs
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_frontend(base, process, time.monotonic() + STARTUP_SECONDS)
        query = registration(
            environ, model_dir, workers, environ["PYTHONPATH"], toolkit_handler=toolkit_handler
        )
        status, body = _request(
            "POST", f"{base}/models?{urllib.parse.urlencode(query)}", STARTUP_SECONDS
        )
        if status != 200:
            raise SystemExit(f"registering the model with MMS failed ({status}): {body}")
    except BaseException:
        stop(process)
        raise
    return process, query


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 30) -> None:
    """SIGTERM to MMS's process group (wrapper, frontend, workers), SIGKILL after the grace."""

    def alive() -> bool:
        process.poll()  # reaps the wrapper once it exits
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    for signum, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        deadline = time.monotonic() + wait
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not alive():
            return


def main(argv: list[str] | None = None) -> int:
    """Start, register, then wait for MMS (SIGTERM is passed on); MMS's exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/model"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", 8081))
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mms-"))
    process, query = start(args.model_dir.resolve(), args.port, os.environ, workdir)
    print(json.dumps({"model_server": "started", **query}), flush=True)

    def on_signal(signum: int, frame: Any) -> None:
        stop(process)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return process.wait()


if __name__ == "__main__":
    sys.exit(main())
