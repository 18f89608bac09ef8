"""Benchmark: our repack (fast and stream paths) vs the SDK's ``repack_model`` on the same inputs.

The S3 server is real S3 software by default: a single-node Ceph RGW started from the Debian
packages for this run and stopped afterwards (``bench/ceph_rgw.py``); ``--servers moto`` (or
``rgw,moto``) also runs against moto's server, whose Python ``UploadPartCopy`` flatters nobody.
Artifacts of 256 MiB, 1 GiB and 2 GiB of weights plus config/tokenizer files, with two kinds of
weights: ``random`` (incompressible, gzip -1) and ``fp16`` (normal(0, 0.02) float16 values like
a trained checkpoint, gzip -6, which inflate slower per byte).

For each server, size and kind, the SDK, our fast path and our stream path run ``--runs`` times,
interleaved (the order rotates every round), each in its own child process: median / min / max
seconds. Each round also times the server's own copy of the same object, alone: the
``UploadPartCopy`` parts the fast path issues (same ranges, same concurrency, SSE-KMS), which is
the floor of the fast path. Our children import the handler as Lambda does (the ``runtime/``
folder as the root, ``handler`` a top-level package: no ``aws_cdk`` in the process), so their
peak RSS (``VmHWM``) is the function's. S3 traffic goes through a counting TCP proxy: the bytes
through the function. Writes ``bench/results/repack.json``.

Run: ``make bench-repack`` (or ``.venv/bin/python bench/repack.py [--sizes 256,1024,2048]
[--kinds random,fp16] [--runs 3] [--servers rgw]``).
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
import statistics
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "repack.json"
RUNTIME = ROOT / "hf_towers" / "constructs" / "repack" / "runtime"
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


class _Fp16(io.RawIOBase):
    """``n`` bytes of float16 weights drawn from normal(0, 0.02): a trained checkpoint's
    statistics (gzip -6 stores them at ~85-90 %), generated in 4 MiB pieces from a fixed seed."""

    def __init__(self, n: int) -> None:
        import numpy as np

        self.n = n
        self.rng = np.random.default_rng(0)

    def readinto(self, b: Any) -> int:
        import numpy as np

        k = min(len(b), self.n, 4 * MIB) & ~1
        values = self.rng.standard_normal(k // 2, dtype=np.float32) * np.float32(0.02)
        b[:k] = values.astype(np.float16).tobytes()
        self.n -= k
        return k

    def readable(self) -> bool:
        return True


WEIGHTS = {"random": (_Random, 1), "fp16": (_Fp16, 6)}
"""Kind of weights -> (generator, gzip level of the artifact)."""


def build_artifact(path: Path, weights_mib: int, *, with_code: bool, kind: str = "random") -> None:
    """tar.gz (sorted, like ``tar czf``): (old code/), config.json, tokenizer.json, weights.

    Kept in ``bench/work/`` (gitignored) and reused by later runs: a 2 GiB fp16 one takes
    minutes to build (delete the folder to rebuild)."""
    if path.exists():
        return
    small: dict[str, bytes] = {}
    if with_code:
        small["code/inference.py"] = b"old = True\n"
        small["code/requirements.txt"] = b"torch\n"
    small["config.json"] = json.dumps({"model_type": "clip", "hidden_size": 768}).encode()
    small["tokenizer.json"] = json.dumps({f"tok{i}": i for i in range(200_000)}).encode()
    generator, level = WEIGHTS[kind]
    tmp = path.with_suffix(".part")
    with (
        tmp.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for name, data in small.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("model.safetensors")
        info.size = weights_mib * MIB
        tar.addfile(info, io.BufferedReader(generator(info.size), 4 * MIB))
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
            kms_key=args.kms_key,  # the same SSE-KMS as ours (RGW needs the key id named)
        )
    else:
        # As Lambda imports the function: runtime/ is the code root, ``handler`` a top-level
        # package, and nothing of hf_towers (or aws_cdk) is loaded.
        sys.path.remove(str(ROOT))
        sys.path.insert(0, str(RUNTIME))
        import dataclasses

        from handler import compressed, props  # type: ignore[import-not-found]
        from handler.index import build_job  # type: ignore[import-not-found]
        from handler.s3io import Multipart, client  # type: ignore[import-not-found]

        waits = {"seconds": 0.0}

        def timed(fn: Any) -> Any:
            def wrapper(*a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    waits["seconds"] += time.perf_counter() - t

            return wrapper

        # Time spent waiting on S3's server-side work (the copies and the final assembly).
        Multipart.copy = timed(Multipart.copy)
        Multipart.complete = timed(Multipart.complete)
        s3 = client()
        properties = {
            props.SOURCE_BUCKET: BUCKET,
            props.SOURCE_KEY: args.key,
            props.CODE_BUCKET: BUCKET,
            props.CODE_KEY: "code.zip",
            props.OUTPUT_BUCKET: OUT_BUCKET,
            props.OUTPUT_PREFIX: f"ours-{args.key.replace('/', '-')}",
            props.KMS_KEY_ARN: args.kms_key,
        }
        job = build_job(s3, properties)
        if args.copy_part_mib:
            job = dataclasses.replace(job, copy_part_size=args.copy_part_mib * MIB)
        assert compressed.run(s3, job, lambda: 900.0)
        extra["server_side_wait_seconds"] = waits["seconds"]
        extra["copy_part_size"] = job.copy_part_size
        from handler.gzstream import BACKEND  # type: ignore[import-not-found]

        extra["inflater"] = BACKEND
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


# ---------------------------------------------------------------- the driver


def _pids_named(names: tuple[str, ...]) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in names:
                    out.append(int(entry.name))
    return out


class Server:
    """One S3 server of the run: its endpoint, credentials, KMS key id and copy part size."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stack = contextlib.ExitStack()
        self.copy_part_mib = 0  # 0: the handler's default
        self.collect_garbage: Callable[[], None] = lambda: None
        self.pids: list[int] = []
        """The server's processes (their CPU time is reported beside each run)."""

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server's processes have used so far."""
        total = 0.0
        for pid in self.pids or _pids_named(("radosgw", "ceph-osd", "ceph-mon")):
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def __enter__(self) -> Server:
        if self.name == "rgw":
            from bench.ceph_rgw import ACCESS_KEY, KMS_KEY_ID, SECRET_KEY, CephRgw

            rgw = self._stack.enter_context(CephRgw(workdir=WORK))
            self.collect_garbage = rgw.collect_garbage
            self.endpoint, self.kms_key = rgw.endpoint, KMS_KEY_ID
            self.credentials = {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            }
        else:
            import boto3

            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(
                    os.environ,
                    TMPDIR=str(WORK),
                    MOTO_S3_DEFAULT_KEY_BUFFER_SIZE=str(4 * 1024 * MIB),
                ),
            )

            def stop() -> None:
                server.terminate()
                server.wait(timeout=30)

            self._stack.callback(stop)
            self.pids = [server.pid]
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            self.endpoint = f"http://127.0.0.1:{port}"
            self.credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
            kms = boto3.client(
                "kms", endpoint_url=self.endpoint, region_name=REGION, **self._boto_keys()
            )
            self.kms_key = kms.create_key()["KeyMetadata"]["Arn"]
            # moto re-reads the whole source object for every UploadPartCopy: one range per part.
            self.copy_part_mib = 5 * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _boto_keys(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.credentials["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": self.credentials["AWS_SECRET_ACCESS_KEY"],
        }

    def s3(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            config=Config(max_pool_connections=16, read_timeout=600),
            **self._boto_keys(),
        )


def run_child(
    tool: str, key: str, proxy: CountingProxy, server: Server, code: Path
) -> dict[str, Any]:
    env = dict(
        os.environ,
        **server.credentials,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}",
        TMPDIR=str(WORK / "tmp"),
    )
    (WORK / "tmp").mkdir(parents=True, exist_ok=True)
    proxy.reset()
    server_cpu = server.cpu_seconds()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proxy_before = resource.getrusage(resource.RUSAGE_SELF)
    cmd = [
        sys.executable, __file__, "--child", tool, "--key", key, "--kms-key", server.kms_key,
        "--code-dir", str(code), "--copy-part-mib", str(server.copy_part_mib),
    ]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{tool} failed on {key}:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    proxy_after = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = {
        "tool": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "server": server.cpu_seconds() - server_cpu,
        # This process while the child ran: the byte-counting proxy's threads, nearly all of it.
        "proxy": (proxy_after.ru_utime + proxy_after.ru_stime)
        - (proxy_before.ru_utime + proxy_before.ru_stime),
    }
    time.sleep(0.2)
    result["s3_bytes_read"] = proxy.down
    result["s3_bytes_written"] = proxy.up
    shutil.rmtree(WORK / "tmp", ignore_errors=True)
    return result


def server_copy_seconds(s3: Any, server: Server, key: str, size: int) -> float:
    """The server's own copy of ``key``, alone: the fast path's ``UploadPartCopy`` parts (same
    ranges and concurrency, SSE-KMS) and ``CompleteMultipartUpload``, without part 1."""
    sys.path.insert(0, str(RUNTIME))
    from handler.compressed import COPY_WORKERS  # type: ignore[import-not-found]
    from handler.job import COPY_PART_SIZE, copy_ranges  # type: ignore[import-not-found]

    part = server.copy_part_mib * MIB or COPY_PART_SIZE
    ranges = copy_ranges(size, part)
    out_key = f"floor/{key}"
    started = time.perf_counter()
    upload = s3.create_multipart_upload(
        Bucket=OUT_BUCKET, Key=out_key, ServerSideEncryption="aws:kms", SSEKMSKeyId=server.kms_key
    )["UploadId"]

    def copy(n: int, first: int, last: int) -> dict[str, Any]:
        response = s3.upload_part_copy(
            Bucket=OUT_BUCKET, Key=out_key, UploadId=upload, PartNumber=n,
            CopySource={"Bucket": BUCKET, "Key": key}, CopySourceRange=f"bytes={first}-{last}",
        )  # fmt: skip
        return {"PartNumber": n, "ETag": response["CopyPartResult"]["ETag"]}

    with ThreadPoolExecutor(COPY_WORKERS) as pool:
        parts = list(pool.map(lambda r: copy(r[0], *r[1]), enumerate(ranges, start=1)))
    s3.complete_multipart_upload(
        Bucket=OUT_BUCKET, Key=out_key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    seconds = time.perf_counter() - started
    s3.delete_object(Bucket=OUT_BUCKET, Key=out_key)
    server.collect_garbage()
    return seconds


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def clear_outputs(s3: Any, server: Server) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=OUT_BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=OUT_BUCKET, Key=obj["Key"])
    server.collect_garbage()


TOOLS = ("sdk", "ours_fast", "ours_stream")


def bench_case(
    server: Server,
    s3: Any,
    proxy: CountingProxy,
    code: Path,
    mib: int,
    kind: str,
    runs: int,
    tools: tuple[str, ...] = TOOLS,
) -> dict[str, Any]:
    """Every tool ``runs`` times, interleaved, plus the server's copy floor, for one artifact."""
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(multipart_chunksize=64 * MIB, multipart_threshold=64 * MIB)
    label = f"{mib}MiB"
    entry: dict[str, Any] = {}
    keys = {}
    for variant, with_code in (("plain", False), ("with_code", True)):
        path = WORK / f"model-{mib}-{kind}-{variant}.tar.gz"
        print(f"building {path.name}", flush=True)
        build_artifact(path, mib, with_code=with_code, kind=kind)
        keys[variant] = f"{label}/{kind}/{variant}/model.tar.gz"
        s3.upload_file(str(path), BUCKET, keys[variant], Config=transfer)
        entry[f"{variant}_artifact_bytes"] = path.stat().st_size  # kept for the next run
    source = {"ours_fast": keys["plain"], "ours_stream": keys["with_code"], "sdk": keys["plain"]}
    samples: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
    floors: list[float] = []
    floors_cpu: list[float] = []
    for round_ in range(runs):
        order = tools[round_ % len(tools) :] + tools[: round_ % len(tools)]
        for tool in order:
            print(f"{server.name} {label} {kind} round {round_ + 1}: {tool} ...", flush=True)
            result = run_child(
                "sdk" if tool == "sdk" else "ours", source[tool], proxy, server, code
            )
            print(f"  {result['seconds']:.1f} s", flush=True)
            samples[tool].append(result)
            clear_outputs(s3, server)
        cpu = server.cpu_seconds()
        floors.append(server_copy_seconds(s3, server, keys["plain"], entry["plain_artifact_bytes"]))
        floors_cpu.append(server.cpu_seconds() - cpu)
        print(f"  server copy alone: {floors[-1]:.1f} s", flush=True)
    for tool in tools:
        runs_ = samples[tool]
        entry[tool] = {
            "seconds": summary([r["seconds"] for r in runs_]),
            "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs_),
            "s3_bytes_read": statistics.median(r["s3_bytes_read"] for r in runs_),
            "s3_bytes_written": statistics.median(r["s3_bytes_written"] for r in runs_),
            "cpu_seconds": {
                side: statistics.median(r["cpu_seconds"][side] for r in runs_)
                for side in ("tool", "server", "proxy")
            },
            # The machine's floor for this tool: all CPU work, tool's and server's, on every core.
            "cpu_bound_seconds": statistics.median(
                sum(r["cpu_seconds"].values()) / (os.cpu_count() or 1) for r in runs_
            ),
            "runs": runs_,
        }
        if tool != "sdk":
            entry[tool]["server_side_wait_seconds"] = summary(
                [r["server_side_wait_seconds"] for r in runs_]
            )
    entry["server_copy_seconds"] = summary(floors)
    entry["server_copy_cpu_seconds"] = statistics.median(floors_cpu)
    for ours in ("ours_fast", "ours_stream"):
        if "sdk" in entry and ours in entry:
            entry[f"ratio_sdk_over_{ours}"] = (
                entry["sdk"]["seconds"]["median"] / entry[ours]["seconds"]["median"]
            )
    if "ours_fast" in entry:
        entry["ratio_ours_fast_over_server_copy"] = (
            entry["ours_fast"]["seconds"]["median"] / entry["server_copy_seconds"]["median"]
        )
    for key in keys.values():
        s3.delete_object(Bucket=BUCKET, Key=key)
    server.collect_garbage()
    return entry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--key")
    parser.add_argument("--kms-key")
    parser.add_argument("--code-dir")
    parser.add_argument("--copy-part-mib", type=int, default=0)
    parser.add_argument("--sizes", default="256,1024,2048", help="weights sizes in MiB")
    parser.add_argument("--kinds", default="random,fp16", help=f"weights: {','.join(WEIGHTS)}")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds per case")
    parser.add_argument("--servers", default="rgw", help="rgw (Ceph), moto, or both: rgw,moto")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help=f"a subset of {','.join(TOOLS)} (default all)"
    )
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    os.environ["AWS_DEFAULT_REGION"] = REGION
    if args.child:
        args.tool = args.child
        child(args)
        return
    kinds = args.kinds.split(",")
    tools = tuple(args.tools.split(","))
    for tool in tools:
        if tool not in TOOLS:
            sys.exit(f"error: --tools {tool!r}: unknown; use a subset of {','.join(TOOLS)}")
    for kind in kinds:
        if kind not in WEIGHTS:
            sys.exit(f"error: --kinds {kind!r}: unknown; use {', '.join(WEIGHTS)}")
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "command": "make bench-repack",
        "argv": sys.argv[1:],
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "notes": (
            "rgw: single-node Ceph RGW 16.2 (memstore OSD) on 127.0.0.1, sharing the cores with "
            "the tools; moto: moto's server. Seconds are median/min/max of interleaved rounds; "
            "server_copy_seconds is the fast path's UploadPartCopy work measured alone; bytes "
            "counted by a TCP proxy (HTTP included); peak RSS is the child's VmHWM, the handler "
            "imported as Lambda imports it."
        ),
        "servers": {},
    }
    code = code_dir()
    try:
        for name in args.servers.split(","):
            with Server(name) as server:
                s3 = server.s3()
                s3.create_bucket(Bucket=BUCKET)
                s3.create_bucket(Bucket=OUT_BUCKET)
                s3.put_object(Bucket=BUCKET, Key="code.zip", Body=code_zip_bytes(code))
                proxy = CountingProxy(int(server.endpoint.rsplit(":", 1)[1]))
                sizes: dict[str, Any] = {}
                for mib in (int(s) for s in args.sizes.split(",")):
                    sizes[f"{mib}MiB"] = {
                        kind: bench_case(server, s3, proxy, code, mib, kind, args.runs, tools)
                        for kind in kinds
                    }
                results["servers"][name] = sizes
    finally:  # everything but the artifacts, which the next run reuses (build_artifact)
        for entry in WORK.iterdir() if WORK.is_dir() else ():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            elif not (entry.name.startswith("model-") and entry.name.endswith(".tar.gz")):
                entry.unlink()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    from bench.repack_table import tables  # the README's tables, one formatter for both

    tables(results)


if __name__ == "__main__":
    main()
