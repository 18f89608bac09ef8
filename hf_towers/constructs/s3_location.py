"""S3 ARNs (one builder, the stack's partition) and the prefixes a tower writes to or reads from."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Fn, Stack


def s3_arn(partition: str, bucket: str, key: str | None = None) -> str:
    """``arn:<partition>:s3:::<bucket>[/<key>]``: every S3 ARN of the product is built here, with
    the stack's partition (``aws``, ``aws-cn``, ``aws-us-gov``), never a literal ``aws``."""
    return f"arn:{partition}:s3:::{bucket}" + (f"/{key}" if key is not None else "")


@dataclass(frozen=True)
class S3Prefix:
    """``prefix`` (no slashes at either end) in the bucket ``bucket_arn``."""

    bucket_arn: str
    prefix: str

    @classmethod
    def in_bucket(cls, stack: Stack, bucket_name: str, prefix: str) -> S3Prefix:
        """A prefix in an existing bucket named in config (not created here)."""
        return cls(
            bucket_arn=s3_arn(stack.partition, bucket_name),
            prefix=prefix,
        )

    @property
    def uri(self) -> str:
        """``s3://<bucket>/<prefix>`` (the bucket name taken from the ARN)."""
        return f"s3://{Fn.select(5, Fn.split(':', self.bucket_arn))}/{self.prefix}"

    @property
    def objects_arn(self) -> str:
        """``<bucket arn>/<prefix>/*``: the objects under the prefix, for IAM."""
        return f"{self.bucket_arn}/{self.prefix}/*"
