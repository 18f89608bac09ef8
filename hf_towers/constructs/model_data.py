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

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Allow ``grantee`` (the execution role) to read exactly the model data objects."""
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

    def grant_read(self, grantee: iam.IGrantable) -> None:
        bucket, key = split_s3_uri(self.s3_uri)
        objects = f"arn:aws:s3:::{bucket}/{key}*" if not self.compressed else f"arn:aws:s3:::{bucket}/{key}"
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects])
        )
        if not self.compressed:
            # Listing the prefix is how SageMaker discovers the uncompressed files.
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[f"arn:aws:s3:::{bucket}"],
                    conditions={"StringLike": {"s3:prefix": [f"{key}*"]}},
                )
            )
