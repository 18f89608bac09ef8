"""An S3 prefix that a tower writes to or reads from, and how cdk-nag prints its ARN."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Fn, Stack, Token


def s3_arn(partition: str, bucket: str, key: str | None = None) -> str:
    """``arn:<partition>:s3:::<bucket>[/<key>]``: every S3 ARN of the product is built here, with
    the stack's partition (``aws``, ``aws-cn``, ``aws-us-gov``), never a literal ``aws``."""
    return f"arn:{partition}:s3:::{bucket}" + (f"/{key}" if key is not None else "")


@dataclass(frozen=True)
class S3Prefix:
    """``prefix`` (no slashes at either end) in the bucket ``bucket_arn``.

    ``bucket_label`` is the bucket ARN as cdk-nag prints it in finding ids (the export name of an
    ``Fn::ImportValue``, pseudo parameters in angle brackets), so acknowledgements are exact.
    """

    bucket_arn: str
    bucket_label: str
    prefix: str

    @classmethod
    def in_bucket(cls, stack: Stack, bucket_name: str, prefix: str) -> S3Prefix:
        """A prefix in an existing bucket named in config (not created here)."""
        return cls(
            bucket_arn=s3_arn(stack.partition, bucket_name),
            bucket_label=s3_arn(nag_partition(stack), bucket_name),
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

    @property
    def nag_objects_arn(self) -> str:
        """``objects_arn`` as cdk-nag prints it."""
        return f"{self.bucket_label}/{self.prefix}/*"


def _shown(value: str, pseudo: str) -> str:
    return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value


def nag_partition(stack: Stack) -> str:
    """The stack's partition as cdk-nag prints it: ``aws`` when known, else ``<AWS::Partition>``."""
    return _shown(stack.partition, "Partition")


def nag_arn(stack: Stack, service: str, resource: str) -> str:
    """``arn:<partition>:<service>:<region>:<account>:<resource>`` as cdk-nag prints it."""
    region, account = _shown(stack.region, "Region"), _shown(stack.account, "AccountId")
    return f"arn:{nag_partition(stack)}:{service}:{region}:{account}:{resource}"
