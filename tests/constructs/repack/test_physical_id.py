"""The physical-id declaration on ``Custom::RepackedModelData`` says exactly what the handler's
physical id (the output URI) derives from: each declared property changes it, every other
property leaves it alone. The risk report reads the declaration to predict replacements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from hf_towers.constructs.repack.construct import PHYSICAL_ID_FROM, PHYSICAL_ID_PROPERTIES
from hf_towers.constructs.repack.runtime.handler import props
from hf_towers.constructs.repack.runtime.handler.index import build_job
from hf_towers.constructs.repack.runtime.handler.s3io import client
from hf_towers.risk import template_diff

from .archives import INFERENCE, code_zip, tar_gz
from .conftest import REGION, World
from .test_construct import synth

MIB = 1024 * 1024
ALL_PROPERTIES = (
    props.ResourceProperties.__required_keys__ | props.ResourceProperties.__optional_keys__
) - {"ServiceToken"}


def out_uri(world: World, source_key: str, owner: str = "stack-1 Repack", **overrides: str) -> str:
    return build_job(client(), world.properties(source_key, **overrides), owner=owner).out_uri


def declared_changes(world: World, source: bytes, key: str) -> dict[str, dict[str, str]]:
    """For each declared property, overrides that change only it (objects it needs in place)."""
    other_bucket = f"other-{world.out_bucket}"
    world.s3.create_bucket(Bucket=other_bucket)
    world.s3.put_object(Bucket=other_bucket, Key=key, Body=source)
    world.s3.put_object(Bucket=world.source_bucket, Key="models/copy.tar.gz", Body=source)
    world.s3.put_object(
        Bucket=world.source_bucket,
        Key="assets/other-code.zip",
        Body=code_zip({"inference.py": INFERENCE + b"\n# changed\n"}),
    )
    return {
        props.SOURCE_BUCKET: {props.SOURCE_BUCKET: other_bucket},
        props.SOURCE_KEY: {props.SOURCE_KEY: "models/copy.tar.gz"},
        props.CODE_KEY: {props.CODE_KEY: "assets/other-code.zip"},
        props.OUTPUT_BUCKET: {props.OUTPUT_BUCKET: other_bucket},
        props.OUTPUT_PREFIX: {props.OUTPUT_PREFIX: "vision"},
        props.COMPRESSED: {props.COMPRESSED: "false"},
        props.PART_SIZE: {props.PART_SIZE: str(6 * MIB)},
    }


def test_every_declared_property_changes_the_physical_id(world: World) -> None:
    source = tar_gz({"model.bin": b"w" * MIB})
    key = world.put_source(source)
    base = out_uri(world, key)
    changes = declared_changes(world, source, key)
    assert set(changes) == set(PHYSICAL_ID_PROPERTIES)
    for name, overrides in changes.items():
        overrides = dict(overrides)
        source_key = overrides.pop(props.SOURCE_KEY, key)
        assert out_uri(world, source_key, **overrides) != base, name
    # The owner (stack id, logical id) enters too: a new logical id is a new resource anyway.
    assert out_uri(world, key, owner="stack-1 Other") != base


def test_no_other_property_changes_the_physical_id(world: World) -> None:
    source = tar_gz({"model.bin": b"w" * MIB})
    key = world.put_source(source)
    code = code_zip({"inference.py": INFERENCE, "serve.py": INFERENCE})
    world.put_code(code)
    base = out_uri(world, key)
    # The same code bundle in another bucket: the hash is of the content, not the location.
    other_code_bucket = f"code-{world.out_bucket}"
    world.s3.create_bucket(Bucket=other_code_bucket)
    world.s3.put_object(Bucket=other_code_bucket, Key=world.code_key, Body=code)
    other_key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    unchanged = {
        props.CODE_BUCKET: other_code_bucket,
        props.KMS_KEY_ARN: other_key,
        props.ENTRY_MODULE: "serve.py",
        props.MAX_RATIO: "50.0",
        props.RETAIN_ON_DELETE: "true",
    }
    assert set(unchanged) | set(PHYSICAL_ID_PROPERTIES) == ALL_PROPERTIES  # every one decided
    for name, value in unchanged.items():
        assert out_uri(world, key, **{name: value}) == base, name


def test_template_declares_the_properties_for_the_risk_report(tmp_path: Path) -> None:
    template, _, _ = synth(tmp_path)
    [resource] = template.find_resources("Custom::RepackedModelData").values()
    declared: Any = resource["Metadata"][PHYSICAL_ID_FROM]
    assert declared == list(PHYSICAL_ID_PROPERTIES)
    assert set(declared) <= set(resource["Properties"])
    # The report reads the same key without importing the construct.
    assert template_diff.PHYSICAL_ID_FROM == PHYSICAL_ID_FROM
    assert template_diff.physical_id_properties(resource) == tuple(sorted(declared))
