"""Instance choice for a model artifact (seed 004 / ezsmdeploy): which SageMaker instance types
hold the model with headroom per worker, cheapest first.

A type fits when ``size x workers x overhead <= instance memory`` and, on GPU types,
``size x workers-per-GPU x overhead <= memory of one GPU``. Workers default to what the
SageMaker Hugging Face toolkit starts: one per vCPU on CPU types, one per GPU on GPU types.
Prices come from ``hf_towers/recommend/data/instance_prices.json`` (dated, one region). The artifact's
size is read from a local file or folder, or from S3 with the caller's credentials (boto3);
never during synth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES = Path(__file__).resolve().parent / "data" / "instance_prices.json"
GIB = 1024**3
DEFAULT_OVERHEAD = 1.5


class ArtifactError(ValueError):
    """The artifact cannot be found or measured."""


class S3AccessError(RuntimeError):
    """S3 could not be asked at all (no credentials, no network): not a fault of the artifact."""


@dataclass(frozen=True)
class InstanceType:
    """One row of the price table."""

    name: str
    vcpu: int
    memory_gib: float
    gpus: int
    gpu_memory_gib: float
    price: float

    @property
    def gpu(self) -> bool:
        return self.gpus > 0

    @property
    def memory_mib(self) -> int:
        return int(self.memory_gib * 1024)


@dataclass(frozen=True)
class PriceTable:
    region: str
    as_of: str
    currency: str
    instances: tuple[InstanceType, ...]


@dataclass(frozen=True)
class Recommendation:
    """A fitting instance type: the memory the workers need, and what is left."""

    instance: InstanceType
    workers: int
    needed_gib: float
    available_gib: float

    @property
    def headroom(self) -> float:
        """Fraction of the limiting memory left free (0.25 = 25 %)."""
        return 1 - self.needed_gib / self.available_gib


def load_prices(path: Path = PRICES) -> PriceTable:
    """The price table shipped with the repository."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    rows = tuple(
        InstanceType(
            name=row["type"],
            vcpu=int(row["vcpu"]),
            memory_gib=float(row["memory_gib"]),
            gpus=int(row["gpus"]),
            gpu_memory_gib=float(row["gpu_memory_gib"]),
            price=float(row["price"]),
        )
        for row in data["instances"]
    )
    return PriceTable(data["region"], data["as_of"], data["currency"], rows)


def local_size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    raise ArtifactError(f"{path}: no such file or folder")


def s3_size(uri: str, client: Any) -> int:
    """Bytes of ``s3://bucket/key``, or of every object under ``s3://bucket/prefix/``."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ArtifactError(f"{uri}: not an s3://bucket/key URI")
    try:
        if not key.endswith("/"):
            return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        total, found = 0, False
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                total += int(obj["Size"])
                found = True
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ArtifactError(
            f"{uri}: cannot read its size ({code}): check the URI and your credentials"
        ) from None
    except NoCredentialsError:
        raise S3AccessError(
            f"{uri}: no AWS credentials found to read its size: set AWS_PROFILE (or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), run `aws sso login`, or pass a local "
            "file or folder instead"
        ) from None
    except BotoCoreError as exc:
        raise S3AccessError(f"{uri}: cannot reach S3 to read its size ({exc})") from None
    if not found:
        raise ArtifactError(f"{uri}: no objects under this prefix")
    return total


def artifact_size(location: str, client: Any = None) -> int:
    """Bytes of a local artifact or an S3 one (``client``: a boto3 S3 client; created when None)."""
    if location.startswith("s3://"):
        if client is None:
            import boto3

            client = boto3.client("s3")
        return s3_size(location, client)
    return local_size(Path(location))


def workers_for(instance: InstanceType, workers: int | None) -> int:
    """Model-server workers: given, else one per GPU (GPU types) or per vCPU (CPU types)."""
    if workers is not None:
        return workers
    return instance.gpus if instance.gpu else instance.vcpu


def recommend(
    size_bytes: int,
    table: PriceTable,
    *,
    workers: int | None = None,
    overhead: float = DEFAULT_OVERHEAD,
    budget: float | None = None,
    gpu: bool | None = None,
) -> list[Recommendation]:
    """Fitting instance types, cheapest first (then most headroom).

    ``gpu`` True/False keeps only GPU/CPU types; ``budget`` is the most per instance-hour.
    """
    if size_bytes <= 0:
        raise ArtifactError("the artifact is empty: nothing to size an instance for")
    if overhead < 1:
        raise ValueError("overhead must be at least 1 (the model itself)")
    size_gib = size_bytes / GIB
    found = []
    for instance in table.instances:
        if gpu is not None and instance.gpu != gpu:
            continue
        if budget is not None and instance.price > budget:
            continue
        count = workers_for(instance, workers)
        host_need = size_gib * count * overhead
        needed, available = host_need, instance.memory_gib
        if instance.gpu:
            per_gpu = -(-count // instance.gpus)  # workers sharing the busiest GPU
            gpu_need = size_gib * per_gpu * overhead
            per_gpu_memory = instance.gpu_memory_gib / instance.gpus
            if gpu_need / per_gpu_memory > host_need / instance.memory_gib:
                needed, available = gpu_need, per_gpu_memory
            if gpu_need > per_gpu_memory:
                continue
        if host_need > instance.memory_gib:
            continue
        found.append(Recommendation(instance, count, needed, available))
    return sorted(found, key=lambda r: (r.instance.price, -r.headroom, r.instance.name))
