"""``RepackedModelData``: a tower's code added to a ``model.tar.gz`` by a custom resource.

The output is content-addressed (``<bucket>/<tower>/<hash>/model.tar.gz``, or the prefix
``<tower>/<hash>/`` when uncompressed), so an unchanged input re-deploys nothing. See
``handler/compressed.py`` for the server-side-copy fast path.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import tempfile
from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import custom_resources as cr
from constructs import Construct

from hf_towers.constructs.model_data import split_s3_uri

from .handler import props

HANDLER_ROOT = Path(__file__).resolve().parent
"""Asset root of the Lambda code: only ``handler/`` is shipped (a namespace package there)."""


def _tar_folder(folder: Path) -> Path:
    """A deterministic ``.tar.gz`` of ``folder`` (sorted, owner 0, mtime 0), cached by content."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes())
    out = Path(tempfile.gettempdir()) / "hf_towers_repack" / f"{digest.hexdigest()[:32]}.tar.gz"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(f".{os.getpid()}.part")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for path in files:
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    partial.replace(out)
    return out


class RepackedModelData(Construct):
    """Model data = the source artifact with ``code/`` replaced by the tower's code directory.

    Implements ``hf_towers.constructs.model_data.ModelData``.

    :param tower: name of the tower; every generated object lies under ``<bucket>/<tower>/``.
    :param source_uri: ``s3://bucket/key.tar.gz`` (or ``s3://bucket/prefix/`` when
        ``compressed=False``). Exactly one of ``source_uri`` / ``source_path``.
    :param source_path: a local ``.tar.gz`` (uploaded as an asset) or a model folder (packed into a
        deterministic ``.tar.gz`` at synth, then uploaded).
    :param code_dir: the tower's code folder (e.g. ``model_code/text``); must hold ``entry_module``.
    :param bucket: where the artifact is written; ``key``: its KMS key (SSE-KMS).
    :param entry_module: file required at the top of ``code_dir``. Default ``inference.py``.
    :param compressed: ``True`` (default) for ``model.tar.gz`` / ``ModelDataUrl``; ``False`` for an
        uncompressed prefix / ``ModelDataSource`` (``S3Prefix``, ``CompressionType: None``).
    :param max_ratio: largest decompressed/compressed ratio accepted. Default 100.
    :param part_size: multipart part size (bytes) for streamed output. Default 16 MiB.
    :param memory_size: MiB of the worker function. Default 2048.
    :param total_timeout: how long the ``is_complete`` polling may take. Default 2 hours.
    :param removal_policy: ``RETAIN`` (default) keeps the generated artifact when the resource is
        deleted or replaced; ``DESTROY`` deletes it. The source is never touched.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        tower: str,
        source_uri: str | None = None,
        source_path: str | None = None,
        code_dir: str,
        bucket: s3.IBucket,
        key: kms.IKey,
        entry_module: str = props.DEFAULT_ENTRY_MODULE,
        compressed: bool = True,
        max_ratio: float = props.DEFAULT_MAX_RATIO,
        part_size: int = props.DEFAULT_PART_SIZE,
        memory_size: int = 2048,
        total_timeout: Duration | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, id_)
        if (source_uri is None) == (source_path is None):
            raise ValueError("give exactly one of source_uri and source_path")
        if not tower or "/" in tower.strip("/"):
            raise ValueError(f"tower must be a single path segment: {tower!r}")
        if part_size < props.MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= {props.MIN_PART_SIZE} (S3's minimum)")
        if max_ratio <= 1:
            raise ValueError("max_ratio must be > 1")
        code_path = Path(code_dir)
        if not (code_path / entry_module).is_file():
            raise ValueError(f"{code_dir} has no {entry_module}")
        self.tower = tower.strip("/")
        self.compressed = compressed
        self._bucket = bucket
        self._key = key

        code = s3_assets.Asset(self, "Code", path=str(code_path))
        if source_uri is not None:
            src_bucket, src_key = split_s3_uri(source_uri)
            if src_key.endswith("/") and compressed:
                raise ValueError("a prefix source_uri needs compressed=False")
            source_arn = f"arn:{Stack.of(self).partition}:s3:::{src_bucket}"
        else:
            path = Path(str(source_path))
            if path.is_dir():
                path = _tar_folder(path)
            elif not path.is_file():
                raise ValueError(f"source_path does not exist: {source_path}")
            asset = s3_assets.Asset(self, "Source", path=str(path))
            src_bucket, src_key = asset.s3_bucket_name, asset.s3_object_key
            source_arn = asset.bucket.bucket_arn

        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        if src_key.endswith("/"):
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[f"{source_arn}/{src_key}*"]
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[source_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{src_key}*"]}},
                )
            )
        else:
            role.add_to_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{source_arn}/{src_key}"])
            )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[code.bucket.arn_for_objects(code.s3_object_key)],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "s3:AbortMultipartUpload",
                    "s3:DeleteObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:PutObject",
                ],
                resources=[bucket.arn_for_objects(f"{self.tower}/*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{self.tower}/*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            )
        )

        functions: dict[str, lambda_.Function] = {}
        for name, entry, timeout in (
            ("OnEvent", "handler.index.on_event", Duration.minutes(2)),
            ("IsComplete", "handler.index.is_complete", Duration.minutes(15)),
        ):
            log_group = logs.LogGroup(
                self,
                f"{name}Logs",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=RemovalPolicy.DESTROY,
            )
            log_group.grant_write(role)
            functions[name] = lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_13,
                handler=entry,
                code=lambda_.Code.from_asset(
                    str(HANDLER_ROOT), exclude=["__init__.py", "__pycache__", "*.pyc"]
                ),
                role=role,
                memory_size=memory_size,
                timeout=timeout,
                log_group=log_group,
            )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=functions["OnEvent"],
            is_complete_handler=functions["IsComplete"],
            query_interval=Duration.seconds(30),
            total_timeout=total_timeout or Duration.hours(2),
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::RepackedModelData",
            properties={
                props.SOURCE_BUCKET: src_bucket,
                props.SOURCE_KEY: src_key,
                props.CODE_BUCKET: code.s3_bucket_name,
                props.CODE_KEY: code.s3_object_key,
                props.OUTPUT_BUCKET: bucket.bucket_name,
                props.OUTPUT_PREFIX: self.tower,
                props.KMS_KEY_ARN: key.key_arn,
                props.ENTRY_MODULE: entry_module,
                props.COMPRESSED: props.TRUE if compressed else props.FALSE,
                props.MAX_RATIO: str(max_ratio),
                props.PART_SIZE: str(part_size),
                props.RETAIN_ON_DELETE: (
                    props.FALSE if removal_policy == RemovalPolicy.DESTROY else props.TRUE
                ),
            },
        )

    @property
    def s3_uri(self) -> str:
        """``s3://`` URI of the generated artifact (object or prefix), a deploy-time token."""
        return self.resource.get_att_string(props.ATTR_S3_URI)

    @property
    def model_data_url(self) -> str | None:
        return self.resource.get_att_string(props.ATTR_MODEL_DATA_URL) if self.compressed else None

    @property
    def model_data_source(self) -> sagemaker.CfnModel.ModelDataSourceProperty | None:
        if self.compressed:
            return None
        return sagemaker.CfnModel.ModelDataSourceProperty(
            s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                s3_uri=self.s3_uri, s3_data_type="S3Prefix", compression_type="None"
            )
        )

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Read exactly the generated artifact (object, or objects under the prefix) and decrypt."""
        key = self.resource.get_att_string(props.ATTR_KEY)
        objects = self._bucket.arn_for_objects(key if self.compressed else f"{key}*")
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects])
        )
        if not self.compressed:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[self._bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{key}*"]}},
                )
            )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[self._key.key_arn])
        )
