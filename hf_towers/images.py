"""Which container image a tower's Model runs, resolved offline at synth time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from hf_towers.config.models import Tower

_ECR = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)"
)


class ImageResolutionError(ValueError):
    """No image exists for the requested versions/instance type/region."""


@dataclass(frozen=True)
class ImageRef:
    """An image URI and the ECR repository ARN the execution role must pull from."""

    uri: str
    repository_arn: str


def repository_arn(uri: str) -> str:
    """``<acct>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`` -> the repository's ARN."""
    match = _ECR.match(uri)
    if not match:
        raise ImageResolutionError(f"{uri!r} is not an ECR image URI")
    partition = "aws-cn" if uri.split("/")[0].endswith(".cn") else "aws"
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"


@cache
def _dlc_uri(
    region: str, transformers_version: str, pytorch_version: str, instance_type: str
) -> str:
    # Imported here: the SDK takes ~3.5 s to import and only DLC towers need it.
    from sagemaker.core import image_uris

    try:
        uri: str = image_uris.retrieve(
            "huggingface",
            region=region,
            version=transformers_version,
            base_framework_version=f"pytorch{pytorch_version}",
            instance_type=instance_type,
            image_scope="inference",
        )
    except ValueError as exc:
        raise ImageResolutionError(
            f"no Hugging Face inference image for transformers {transformers_version} / "
            f"pytorch {pytorch_version} / {instance_type} in {region}: {exc}. "
            "Pick versions the SageMaker SDK lists (e.g. transformers 4.51.3 with pytorch 2.6.0) "
            "or set image to an ECR URI."
        ) from None
    return uri


def resolve_image(tower: Tower, region: str) -> ImageRef:
    """The tower's image: its explicit ECR URI, or the HF DLC for its versions and instance type."""
    uri = (
        tower.image
        if tower.image != "dlc"
        else _dlc_uri(
            region, tower.transformers_version, tower.pytorch_version, tower.instance_type
        )
    )
    return ImageRef(uri=uri, repository_arn=repository_arn(uri))
