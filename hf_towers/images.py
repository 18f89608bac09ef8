"""Which container image a tower's Model runs, resolved offline at synth time.

A ``dlc`` tower's image is the Hugging Face inference DLC that
``sagemaker.core.image_uris.retrieve("huggingface", ..., image_scope="inference")`` names. Importing
the SDK builds ~1,000 pydantic models (~1.5 s of every synth), so ``dlc_uri`` reads the same JSON
tables the SDK ships (``sagemaker/core/image_uri_config/``, from the pinned ``sagemaker-core``
distribution, never the network) and applies the SDK's lookup rules for that one call; its
ECR host name comes from botocore's endpoint data, as the SDK's does. ``tests/test_images.py``
checks it against the SDK for every region, version and instance family a config can name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from hf_towers.config.models import Tower

_ECR = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)"
)

SDK_DISTRIBUTION = "sagemaker-core"
"""The distribution whose image tables (``sagemaker/core/image_uri_config/*.json``) are read."""

# sagemaker.core.fw_utils: Graviton families, and the frameworks with Graviton images (not
# huggingface); image_uris.TRAINIUM_ALLOWED_FRAMEWORKS (a string, tested with ``in``).
GRAVITON_ALLOWED_TARGET_INSTANCE_FAMILY = [
    "m6g",
    "m6gd",
    "c6g",
    "c6gd",
    "c6gn",
    "c7g",
    "r6g",
    "r6gd",
]
GRAVITON_ALLOWED_FRAMEWORKS = {"tensorflow", "pytorch", "xgboost", "sklearn"}
TRAINIUM_ALLOWED_FRAMEWORKS = "pytorch"
_NEURON_REPOSITORIES = (
    "huggingface-pytorch-inference-neuron",
    "huggingface-pytorch-inference-neuronx",
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
def _image_table(framework: str) -> dict[str, Any]:
    """``image_uri_config/<framework>.json`` of the installed ``sagemaker-core``."""
    path = Path(
        str(
            metadata.distribution(SDK_DISTRIBUTION).locate_file(
                f"sagemaker/core/image_uri_config/{framework}.json"
            )
        )
    )
    with path.open() as table:
        loaded: dict[str, Any] = json.load(table)
    return loaded


@cache
def _ecr_hostname(region: str) -> str | None:
    """The ECR endpoint's host name in ``region`` from botocore's endpoint data (as the SDK)."""
    import botocore.loaders
    import botocore.regions

    resolver = botocore.regions.EndpointResolver(
        botocore.loaders.create_loader().load_data("endpoints")
    )
    endpoint = resolver.construct_endpoint("ecr", region)
    if region == "il-central-1" and not endpoint:
        return f"ecr.{region}.amazonaws.com"
    return None if endpoint is None else str(endpoint["hostname"])


def _instance_family(instance_type: str) -> str:
    match = re.match(r"^ml[\._]([a-z\d\-]+)\.?\w*$", instance_type)
    return match[1] if match else ""


def _check(value: Any, options: list[Any], name: str) -> None:
    """The SDK's ``_validate_arg``: the same message, so errors read as they did."""
    if value not in options:
        raise ValueError(
            f"Unsupported {name}: {value}. You may need to upgrade your SDK version "
            f"(pip install -U sagemaker) for newer {name}s. Supported {name}(s): "
            f"{', '.join(options)}."
        )


def _processor(instance_type: str, available: list[str] | None) -> str | None:
    if not available:
        return None
    family = _instance_family(instance_type)
    if instance_type.startswith("local"):
        processor = "cpu" if instance_type == "local" else "gpu"
    elif instance_type.startswith("neuron"):
        processor = "neuron"
    elif not family:
        raise ValueError(
            f"Invalid SageMaker instance type: {instance_type}. For options, see: "
            "https://aws.amazon.com/sagemaker/pricing/instance-types"
        )
    elif family in available:
        processor = family
    elif family.startswith("inf"):
        processor = "inf"
    elif family.startswith("trn"):
        processor = "trn"
    elif family[0] in ("g", "p"):
        processor = "gpu"
    else:
        processor = "cpu"
    _check(processor, available, "processor")
    return processor


def _latest_version(scope_config: dict[str, Any]) -> str | None:
    """An empty version: the SDK's ``_fetch_latest_version_from_config`` for one scope."""
    if "latest" in scope_config.get("version_aliases", {}):
        return str(scope_config["version_aliases"]["latest"])
    versions: list[str] = list(scope_config["versions"])
    top, bottom = versions[0], versions[-1]
    if top.endswith(".x") or bottom.endswith(".x"):
        return f"{max(int(top[:-2]), int(bottom[:-2]))}.x"
    from packaging.version import Version

    return top if Version(top) >= Version(bottom) else bottom


def _set_text(names: set[str] | frozenset[str]) -> str:
    """A set as the SDK prints it, in sorted order (a set's own order varies between runs)."""
    return "{" + ", ".join(repr(n) for n in sorted(names)) + "}"


def dlc_uri(
    region: str, transformers_version: str, pytorch_version: str, instance_type: str
) -> str:
    """The Hugging Face PyTorch inference DLC, as ``image_uris.retrieve`` names it.

    ``retrieve("huggingface", region, version=transformers_version,
    base_framework_version=f"pytorch{pytorch_version}", instance_type=instance_type,
    image_scope="inference")``, step for step; raises ``ValueError`` with the SDK's messages.
    """
    framework = "huggingface"
    base_framework_version = f"pytorch{pytorch_version}"
    family = _instance_family(instance_type)
    inference_tool = "neuron" if family.startswith(("inf", "trn")) else None
    table = f"{framework}-{inference_tool}" if inference_tool else framework
    if "trn" in instance_type and framework not in TRAINIUM_ALLOWED_FRAMEWORKS:
        raise ValueError(
            f"Unsupported framework: {framework}. Supported framework(s) for Trainium "
            f"instances: {TRAINIUM_ALLOWED_FRAMEWORKS}."
        )
    if family in GRAVITON_ALLOWED_TARGET_INSTANCE_FAMILY:
        raise ValueError(
            f"Unsupported framework: {framework}. Supported framework(s) for Graviton "
            f"instances: {_set_text(GRAVITON_ALLOWED_FRAMEWORKS)}."
        )
    full = _image_table(table)
    scopes = full.get("scope", list(full.keys()))
    scope = scopes[0] if len(scopes) == 1 else "inference"
    _check(scope, scopes, "image scope")
    config = full if "scope" in full else full[scope]

    versions = list(config["versions"].keys())
    aliases: dict[str, str] = config.get("version_aliases", {})
    if len(versions) == 1 and transformers_version not in aliases:
        version: str | None = versions[0]
    else:
        version = transformers_version or _latest_version(_image_table(framework)[scope])
        _check(version, versions + list(aliases), f"{framework} version")
    assert version is not None
    config_version = aliases.get(version, version)
    version_config = config["versions"][config_version]
    base_aliases = version_config.get("version_aliases") or {}
    full_base = base_aliases.get(base_framework_version, base_framework_version)
    _check(full_base, list(version_config.keys()), "base framework")
    version_config = version_config.get(full_base)

    py_versions = (
        version_config.get("py_versions")
        if "repository" in version_config
        else list(version_config.keys())
    )
    py_version = None
    if py_versions:
        if len(py_versions) != 1:
            _check(None, py_versions, "Python version")
        py_version = py_versions[0]
        version_config = version_config.get(py_version) or version_config

    _check(region, list(version_config["registries"].keys()), "region")
    registry = version_config["registries"][region]
    hostname = _ecr_hostname(region)
    if hostname is None:  # the SDK fails here with a TypeError
        raise ValueError(f"botocore lists no ECR endpoint in {region}")
    repository = version_config["repository"]
    processor: str | None = _processor(
        instance_type, config.get("processors") or version_config.get("processors")
    )
    container_version = None
    if version_config.get("container_version"):
        container_version = version_config["container_version"][processor]

    pytorch_in_tag = base_framework_version[len("pytorch") :]
    tag_version = config_version
    if repository in _NEURON_REPOSITORIES:
        sdk_version = sorted(version_config["sdk_versions"], reverse=True)[0]
        container_version = f"{sdk_version}-{container_version}"
        if aliases.get(transformers_version):
            tag_version = aliases[transformers_version]
        neuron_base = config["versions"].get(tag_version, {}).get("version_aliases", {})
        if neuron_base.get(base_framework_version):
            pytorch_in_tag = neuron_base[base_framework_version][len("pytorch") :]
    if not version_config.get("processor_in_tag", True):
        processor = None
    middle = inference_tool or processor
    tag = "-".join(
        part
        for part in (
            f"{pytorch_in_tag}-transformers{tag_version}",
            middle,
            py_version,
            container_version,
        )
        if part
    )
    return f"{registry}.dkr.{hostname}/{repository}:{tag}"


@cache
def _dlc_uri(
    region: str, transformers_version: str, pytorch_version: str, instance_type: str
) -> str:
    try:
        return dlc_uri(region, transformers_version, pytorch_version, instance_type)
    except ValueError as exc:
        raise ImageResolutionError(
            f"no Hugging Face inference image for transformers {transformers_version} / "
            f"pytorch {pytorch_version} / {instance_type} in {region}: {exc}. "
            "Pick versions the SageMaker SDK lists (e.g. transformers 4.51.3 with pytorch 2.6.0) "
            "or set image to an ECR URI."
        ) from None


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
