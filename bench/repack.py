"""Benchmark: our repack (fast and stream paths) vs the SDK's ``repack_model`` on the same inputs.

Artifacts of 256 MiB and 2 GiB (incompressible weights + config/tokenizer files) are served by a
moto S3 server in a separate process. Each tool runs in its own child process (peak RSS is that
process's own ``VmHWM``, see ``peak_rss_bytes``); its S3 traffic goes through a counting TCP proxy
in this process, which gives the bytes it read from and wrote to S3. Writes ``bench/results/repack.json``.

Run: ``make bench-repack`` (or ``.venv/bin/python bench/repack.py [--sizes 256,2048]``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "repack.json"
MIB = 1024 * 1024
REGION = "us-east-1"
BUCKET = "bench-models"
OUT_BUCKET = "bench-out"
INFERENCE = b"def model_fn(model_dir):\n    return model_dir\n"

sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CountingProxy:
    """TCP proxy 127.0.0.1:port -> upstream, counting bytes each way (reset per run)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self.up = 0  # client -> S3 (written)
        self.down = 0  # S3 -> client (read)
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.up = self.down = 0

    def _accept(self) -> None:
        while True:
            client, _ = self.server.accept()
            upstream = socket.create_connection(self.upstream)
            for a, b, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, up), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        buf = bytearray(4 * MIB)
        view = memoryview(buf)
        try:
            while True:
                n = src.recv_into(buf)
                if not n:
                    break
                dst.sendall(view[:n])
                with self.lock:
                    if up:
                        self.up += n
                    else:
                        self.down += n
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


class _Random(io.RawIOBase):
    """``n`` incompressible bytes, read in 4 MiB pieces."""

    def __init__(self, n: int) -> None:
        self.n = n

    def readinto(self, b: Any) -> int:
        k = min(len(b), self.n, 4 * MIB)
        b[:k] = os.urandom(k)
        self.n -= k
        return k

    def readable(self) -> bool:
        return True


def build_artifact(path: Path, weights_mib: int, *, with_code: bool) -> None:
    """tar.gz (sorted, like ``tar czf``): (old code/), config.json, tokenizer.json, weights."""
    if path.exists():
        return
    small: dict[str, bytes] = {}
    if with_code:
        small["code/inference.py"] = b"old = True\n"
        small["code/requirements.txt"] = b"torch\n"
    small["config.json"] = json.dumps({"model_type": "clip", "hidden_size": 768}).encode()
    small["tokenizer.json"] = json.dumps({f"tok{i}": i for i in range(200_000)}).encode()
    tmp = path.with_suffix(".part")
    with (
        tmp.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for name, data in small.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("model.safetensors")
        info.size = weights_mib * MIB
        tar.addfile(info, io.BufferedReader(_Random(info.size), 4 * MIB))
    tmp.replace(path)


def code_dir() -> Path:
    d = WORK / "code"
    d.mkdir(parents=True, exist_ok=True)
    (d / "inference.py").write_bytes(INFERENCE)
    (d / "requirements.txt").write_bytes(b"numpy\n")
    return d


def code_zip_bytes(d: Path) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        for p in sorted(d.iterdir()):
            zf.writestr(p.name, p.read_bytes())
    return raw.getvalue()


# ---------------------------------------------------------------- children (repacking process)


def child(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    extra: dict[str, float] = {}
    if args.tool == "sdk":
        import boto3
        from sagemaker.core.common_utils import repack_model
        from sagemaker.core.helper.session_helper import Session

        session = Session(boto_session=boto3.Session(region_name=REGION))
        repack_model(
            inference_script="inference.py",
            source_directory=args.code_dir,
            dependencies=[],
            model_uri=f"s3://{BUCKET}/{args.key}",
            repacked_model_uri=f"s3://{OUT_BUCKET}/sdk/{args.key}",
            sagemaker_session=session,
        )
    else:
        import dataclasses

        from hf_towers.constructs.repack.runtime.handler import compressed, props
        from hf_towers.constructs.repack.runtime.handler.index import build_job
        from hf_towers.constructs.repack.runtime.handler.s3io import Multipart, client

        waits = {"seconds": 0.0}

        def timed(fn: Any) -> Any:
            def wrapper(*a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    waits["seconds"] += time.perf_counter() - t

            return wrapper

        # Time spent waiting on S3's server-side work (moto: copies parts byte by byte).
        Multipart.copy = timed(Multipart.copy)  # type: ignore[method-assign]
        Multipart.complete = timed(Multipart.complete)  # type: ignore[method-assign]
        s3 = client()
        properties: props.ResourceProperties = {
            props.SOURCE_BUCKET: BUCKET,
            props.SOURCE_KEY: args.key,
            props.CODE_BUCKET: BUCKET,
            props.CODE_KEY: "code.zip",
            props.OUTPUT_BUCKET: OUT_BUCKET,
            props.OUTPUT_PREFIX: f"ours-{args.key.replace('/', '-')}",
            props.KMS_KEY_ARN: args.kms_key,
        }
        # moto re-reads the whole source object for every UploadPartCopy: one range per part.
        job = dataclasses.replace(build_job(s3, properties), copy_part_size=5 * 1024 * MIB)
        assert compressed.run(s3, job, lambda: 900.0)
        extra["server_side_wait_seconds"] = waits["seconds"]
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak_rss_bytes(), **extra}))


def peak_rss_bytes() -> int:
    """Peak RSS of this process's own image (``VmHWM``), not ``ru_maxrss``.

    On Linux ``ru_maxrss`` survives ``execve``: a child started by ``subprocess`` (vfork + exec)
    reports at least the peak RSS its parent had reached, so every tool looked as large as this
    driver (proxy buffers, uploads) had become by then - 216 MiB for the fast path at 2 GiB, whose
    own peak is 136 MiB at any size. ``VmHWM`` belongs to the address space created by exec.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # no /proc: best effort


def run_child(
    tool: str, key: str, proxy: CountingProxy, kms_key: str, code: Path
) -> dict[str, Any]:
    env = dict(
        os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}", TMPDIR=str(WORK / "tmp")
    )
    (WORK / "tmp").mkdir(parents=True, exist_ok=True)
    proxy.reset()
    cmd = [
        sys.executable,
        __file__,
        "--child",
        tool,
        "--key",
        key,
        "--kms-key",
        kms_key,
        "--code-dir",
        str(code),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{tool} failed on {key}:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    time.sleep(0.2)
    result["s3_bytes_read"] = proxy.down
    result["s3_bytes_written"] = proxy.up
    shutil.rmtree(WORK / "tmp", ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--key")
    parser.add_argument("--kms-key")
    parser.add_argument("--code-dir")
    parser.add_argument("--sizes", default="256,2048", help="weights sizes in MiB")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["AWS_DEFAULT_REGION"] = REGION
    if args.child:
        args.tool = args.child
        child(args)
        return

    import boto3
    from boto3.s3.transfer import TransferConfig

    WORK.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, TMPDIR=str(WORK), MOTO_S3_DEFAULT_KEY_BUFFER_SIZE=str(4 * 1024 * MIB)),
    )
    results: dict[str, Any] = {
        "command": "make bench-repack",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "notes": "moto S3 in a separate process; bytes counted by a TCP proxy (HTTP included).",
        "sizes": {},
    }
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        kms_key = boto3.client("kms", endpoint_url=endpoint, region_name=REGION).create_key()[
            "KeyMetadata"
        ]["Arn"]
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=OUT_BUCKET)
        code = code_dir()
        s3.put_object(Bucket=BUCKET, Key="code.zip", Body=code_zip_bytes(code))
        proxy = CountingProxy(port)
        transfer = TransferConfig(multipart_chunksize=256 * MIB, multipart_threshold=256 * MIB)
        for mib in (int(s) for s in args.sizes.split(",")):
            label = f"{mib}MiB"
            entry: dict[str, Any] = {}
            for variant, with_code in (("plain", False), ("with_code", True)):
                path = WORK / f"model-{mib}-{variant}.tar.gz"
                print(f"building {path.name}", flush=True)
                build_artifact(path, mib, with_code=with_code)
                key = f"{label}/{variant}/model.tar.gz"
                s3.upload_file(str(path), BUCKET, key, Config=transfer)
                entry[f"{variant}_artifact_bytes"] = path.stat().st_size
                path.unlink()
            for tool, key in (
                ("ours_fast", f"{label}/plain/model.tar.gz"),
                ("ours_stream", f"{label}/with_code/model.tar.gz"),
                ("sdk", f"{label}/plain/model.tar.gz"),
            ):
                print(f"{label} {tool} ...", flush=True)
                entry[tool] = run_child(
                    "sdk" if tool == "sdk" else "ours", key, proxy, kms_key, code
                )
                print(f"  {entry[tool]}", flush=True)
            sdk = entry["sdk"]["seconds"]
            entry["ratio_sdk_over_ours_fast"] = sdk / entry["ours_fast"]["seconds"]
            entry["ratio_sdk_over_ours_stream"] = sdk / entry["ours_stream"]["seconds"]
            results["sizes"][label] = entry
            for prefix in (label, f"sdk/{label}", f"ours-{label}"):
                for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=OUT_BUCKET, Prefix=prefix
                ):
                    for obj in page.get("Contents", []):
                        s3.delete_object(Bucket=OUT_BUCKET, Key=obj["Key"])
            for variant in ("plain", "with_code"):
                s3.delete_object(Bucket=BUCKET, Key=f"{label}/{variant}/model.tar.gz")
    finally:
        server.terminate()
        server.wait(timeout=30)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
