"""``hf_towers.images``: the offline DLC lookup names exactly the image the SageMaker SDK names.

``dlc_uri`` re-implements ``sagemaker.core.image_uris.retrieve`` for the one call the towers make
(Hugging Face, PyTorch, inference) so synthesis need not import the SDK; these tests hold it to the
SDK for every region a config may name (``check_region``: botocore's SageMaker regions), every
transformers/PyTorch version and alias the SDK's tables list (and some they do not), and
instance types of every family kind (CPU, GPU, p4d, Inferentia, Trainium, Graviton).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from hf_towers import images
from hf_towers.config.regions import service_regions

INSTANCE_TYPES = (
    "ml.m5.xlarge",
    "ml.c5.2xlarge",
    "ml.r7i.large",
    "ml.t2.medium",
    "ml.g5.xlarge",
    "ml.g4dn.xlarge",
    "ml.g6e.2xlarge",
    "ml.p3.2xlarge",
    "ml.p4d.24xlarge",
    "ml.p5.48xlarge",
    "ml.p2.xlarge",
    "ml.inf1.xlarge",
    "ml.inf2.xlarge",
    "ml.trn1.2xlarge",
    "ml.c6g.xlarge",
    "ml.m6g.large",
    "ml.c7g.large",
)
"""One or more instance types per family kind: the lookup branches on the family."""


@pytest.fixture(scope="module")
def sdk() -> Iterator[Any]:
    """``image_uris`` with its two file loaders cached (it re-reads both JSON files on every
    call, ~50 ms); the lookup rules under test are the SDK's own, unchanged."""
    from sagemaker.core import common_utils, image_uris

    originals = (image_uris.config_for_framework, common_utils._botocore_resolver)
    image_uris.config_for_framework = functools.cache(originals[0])
    common_utils._botocore_resolver = functools.cache(originals[1])
    yield image_uris
    image_uris.config_for_framework, common_utils._botocore_resolver = originals


def _outcome(call: Any) -> tuple[str, str]:
    """The URI, or the error message with any printed set in sorted order (the SDK prints its
    sets as they iterate, which varies with the process's string hash seed)."""
    try:
        return ("uri", call())
    except ValueError as exc:
        return ("ValueError", re.sub(r"\{([^{}]*)\}", _sorted_set, str(exc)))


def _sorted_set(match: re.Match[str]) -> str:
    return "{" + ", ".join(sorted(item.strip() for item in match.group(1).split(","))) + "}"


def _sdk_uri(sdk: Any, region: str, transformers: str, pytorch: str, instance_type: str) -> Any:
    return lambda: sdk.retrieve(
        "huggingface",
        region=region,
        version=transformers,
        base_framework_version=f"pytorch{pytorch}",
        instance_type=instance_type,
        image_scope="inference",
    )


def _ours(region: str, transformers: str, pytorch: str, instance_type: str) -> Any:
    return lambda: images.dlc_uri(region, transformers, pytorch, instance_type)


def _tables(sdk: Any) -> list[dict[str, Any]]:
    return [
        sdk.config_for_framework("huggingface")["inference"],
        sdk.config_for_framework("huggingface-neuron")["inference"],
    ]


def _versions(sdk: Any) -> tuple[list[str], list[str]]:
    """Every transformers and PyTorch version/alias in the SDK's tables, plus unlisted ones."""
    transformers: set[str] = {"9.9.9", "4.51", ""}
    pytorch: set[str] = {"9.9", "2.6", "2.6.0", ""}
    for table in _tables(sdk):
        transformers |= set(table["versions"]) | set(table.get("version_aliases", {}))
        for version in table["versions"].values():
            for key in [*version, *version.get("version_aliases", {})]:
                if key.startswith("pytorch"):
                    pytorch.add(key.removeprefix("pytorch"))
    return sorted(transformers), sorted(pytorch)


def _valid_pairs(sdk: Any) -> list[tuple[str, str]]:
    """(transformers, PyTorch) pairs that have an image, aliases included."""
    pairs = set()
    for table in _tables(sdk):
        names = {v: [v] for v in table["versions"]}
        for alias, target in table.get("version_aliases", {}).items():
            names[target].append(alias)
        for version, entry in table["versions"].items():
            bases = [k for k in entry if k.startswith("pytorch")]
            bases += [a for a in entry.get("version_aliases", {}) if a.startswith("pytorch")]
            pairs |= {(t, b.removeprefix("pytorch")) for t in names[version] for b in bases}
    return sorted(pairs)


def test_every_version_pair_and_instance_family_matches_the_sdk(sdk: Any) -> None:
    transformers, pytorch = _versions(sdk)
    compared = uris = 0
    for t in transformers:
        for p in pytorch:
            for instance_type in INSTANCE_TYPES:
                expected = _outcome(_sdk_uri(sdk, "us-east-1", t, p, instance_type))
                actual = _outcome(_ours("us-east-1", t, p, instance_type))
                assert actual == expected, (t, p, instance_type)
                compared += 1
                uris += expected[0] == "uri"
    assert compared > 3000 and uris > 300  # the matrix is not vacuous


def test_every_region_a_config_allows_matches_the_sdk(sdk: Any) -> None:
    regions = service_regions("sagemaker")
    assert "us-east-1" in regions and "cn-north-1" in regions and "us-gov-west-1" in regions
    kinds = ("ml.m5.xlarge", "ml.g5.xlarge", "ml.p4d.24xlarge", "ml.inf2.xlarge")
    outcomes: set[str] = set()
    for region in regions:
        for t, p in _valid_pairs(sdk):
            for instance_type in kinds:
                expected = _outcome(_sdk_uri(sdk, region, t, p, instance_type))
                assert _outcome(_ours(region, t, p, instance_type)) == expected, (
                    region,
                    t,
                    p,
                    instance_type,
                )
                outcomes.add(expected[0])
    assert outcomes == {"uri", "ValueError"}  # some regions lack some images


def test_the_default_towers_images() -> None:
    assert images.dlc_uri("us-east-1", "4.51.3", "2.6.0", "ml.g5.xlarge") == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.6.0-transformers4.51.3-gpu-py312-cu124-ubuntu22.04"
    )
    assert images.dlc_uri("cn-north-1", "4.51.3", "2.6.0", "ml.m5.xlarge") == (
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/huggingface-pytorch-inference:"
        "2.6.0-transformers4.51.3-cpu-py312-ubuntu22.04"
    )


def test_the_sdk_constants_copied_here_are_the_sdks() -> None:
    from sagemaker.core import fw_utils, image_uris

    assert images.GRAVITON_ALLOWED_TARGET_INSTANCE_FAMILY == (
        fw_utils.GRAVITON_ALLOWED_TARGET_INSTANCE_FAMILY
    )
    assert images.GRAVITON_ALLOWED_FRAMEWORKS == fw_utils.GRAVITON_ALLOWED_FRAMEWORKS
    assert images.TRAINIUM_ALLOWED_FRAMEWORKS == image_uris.TRAINIUM_ALLOWED_FRAMEWORKS


def test_synthesis_resolves_images_without_importing_the_sdk() -> None:
    probe = (
        "import json, sys\n"
        "from hf_towers.images import dlc_uri\n"
        "dlc_uri('eu-west-1', '4.51.3', '2.6.0', 'ml.m5.xlarge')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('sagemaker'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []


def test_an_unknown_version_is_an_image_resolution_error_naming_the_fix() -> None:
    with pytest.raises(images.ImageResolutionError) as caught:
        images._dlc_uri("us-east-1", "9.9.9", "2.6.0", "ml.m5.xlarge")
    message = str(caught.value)
    assert "no Hugging Face inference image for transformers 9.9.9 / pytorch 2.6.0" in message
    assert "Unsupported huggingface version: 9.9.9" in message
    assert "or set image to an ECR URI" in message
