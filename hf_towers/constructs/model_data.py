"""Where a SageMaker Model reads its weights from: the seam between artifacts and models.

A tower's Model only needs three things from its model data: the value for the Model's
``ModelDataUrl`` (a compressed ``model.tar.gz``) or ``ModelDataSource`` (an uncompressed S3
prefix), and a way to let the execution role read exactly those objects. ``ModelData`` is that
contract; ``ExistingModelData`` is the artifact as the user gave it (already containing
``code/`` or needing none, e.g. a plain ``HF_TASK`` model). The repack custom resource
(``hf_towers.constructs.repack``) is another implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from hf_towers.constructs.s3_location import s3_arn


class ModelData(Protocol):
    """What a tower's Model needs from its artifact."""

    @property
    def model_data_url(self) -> str | None:
        """S3 URI of a ``model.tar.gz`` for ``ModelDataUrl``; None when ``model_data_source`` is used."""
        ...

    @property
    def model_data_source(self) -> sagemaker.CfnModel.ModelDataSourceProperty | None:
        """An uncompressed S3 prefix for ``ModelDataSource``; None when ``model_data_url`` is used."""
        ...

    def read_statements(self) -> list[iam.PolicyStatement]:
        """Statements that let the execution role read exactly the model data objects.

        Statements, not a ``grant_read(grantee)``: the execution role keeps all of its
        permissions in one customer-managed policy (the HIPAA/NIST/PCI packs reject inline
        policies), and CDK grants would add an inline ``DefaultPolicy``.
        """
        ...


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``. Config validation guarantees the shape."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


@dataclass(frozen=True)
class ExistingModelData:
    """An artifact the user already has in S3, used as it is.

    ``s3_uri`` is either a ``.tar.gz`` object (``compressed=True``) or a prefix ending in ``/``
    holding the uncompressed model (``compressed=False``).
    """

    s3_uri: str
    partition: str
    """The stack's partition (``Stack.of(scope).partition``), for the ARNs."""
    compressed: bool = True

    @property
    def model_data_url(self) -> str | None:
        return self.s3_uri if self.compressed else None

    @property
    def model_data_source(self) -> sagemaker.CfnModel.ModelDataSourceProperty | None:
        if self.compressed:
            return None
        return sagemaker.CfnModel.ModelDataSourceProperty(
            s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                s3_uri=self.s3_uri,
                s3_data_type="S3Prefix",
                compression_type="None",
            )
        )

    def read_statements(self) -> list[iam.PolicyStatement]:
        bucket, key = split_s3_uri(self.s3_uri)
        if self.compressed:
            return [
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[s3_arn(self.partition, bucket, key)]
                )
            ]
        return [
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[s3_arn(self.partition, bucket, f"{key}*")]
            ),
            # Listing the prefix is how SageMaker discovers the uncompressed files.
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[s3_arn(self.partition, bucket)],
                conditions={"StringLike": {"s3:prefix": [f"{key}*"]}},
            ),
        ]
