"""Create -> Update -> Delete replayed as the Provider framework sends them (onEvent/isComplete)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

import pytest

from hf_towers.constructs.repack.runtime.handler import index
from hf_towers.constructs.repack.runtime.handler.props import Event

from .archives import (
    INFERENCE,
    REQUIREMENTS,
    check_archive,
    code_zip,
    expected_tree,
    tar_gz,
    weights,
)
from .conftest import World

MIB = 1024 * 1024


class Context:
    """The Lambda context: only the remaining time is used."""

    def __init__(self, millis: int = 900_000) -> None:
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def cfn_event(request: str, props: Mapping[str, object], **extra: Any) -> Event:
    return cast(
        Event,
        {
            "RequestType": request,
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:framework-onEvent",
            "ResponseURL": "https://cloudformation-custom-resource-response.example/",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/towers/abc",
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "TextModelData",
            "ResourceType": "Custom::RepackedModelData",
            "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...", **props},
            **extra,
        },
    )


def deploy(event: Event, *, polls: int = 5) -> dict[str, Any]:
    """What the framework does: onEvent, then isComplete until complete (merged event)."""
    response = index.on_event(event, Context())
    waiter_event = cast(Event, {**event, **response})
    for _ in range(polls):
        result = index.is_complete(waiter_event, Context())
        if result["IsComplete"]:
            return {**response, "Data": {**response.get("Data", {}), **result.get("Data", {})}}
    raise AssertionError("never completed")


def key_of(uri: str) -> str:
    return uri.split("/", 3)[3]


@pytest.mark.parametrize("retain", [False, True])
def test_create_update_delete(world: World, retain: bool) -> None:
    files = {"config.json": b"{}", "model.safetensors": weights(MIB)}
    source_key = world.put_source(tar_gz(files))
    source_etag = world.s3.head_object(Bucket=world.source_bucket, Key=source_key)["ETag"]
    props = world.properties(source_key, RetainOnDelete="true" if retain else "false")

    created = deploy(cfn_event("Create", props))
    first_id = created["PhysicalResourceId"]
    assert created["Data"]["ModelDataUrl"] == first_id
    assert first_id.startswith(f"s3://{world.out_bucket}/text/") and first_id.endswith(
        "/model.tar.gz"
    )
    tree = check_archive(world.get(key_of(first_id)))
    assert tree["config.json"] == b"{}" and tree["code/inference.py"] is not None

    # A retried Create (same event) is idempotent: same id, nothing new written.
    again = deploy(cfn_event("Create", props))
    assert again["PhysicalResourceId"] == first_id
    assert world.out_keys() == [key_of(first_id)]

    # Update with unchanged inputs: same physical id, so CloudFormation sends no Delete.
    same = deploy(
        cfn_event("Update", props, PhysicalResourceId=first_id, OldResourceProperties=props)
    )
    assert same["PhysicalResourceId"] == first_id

    # Update with new code: new artifact, new physical id.
    world.put_code(code_zip({"inference.py": b"VERSION = 2\n"}), key="assets/code-v2.zip")
    new_props = {**props, "CodeKey": "assets/code-v2.zip"}
    updated = deploy(
        cfn_event("Update", new_props, PhysicalResourceId=first_id, OldResourceProperties=props)
    )
    second_id = updated["PhysicalResourceId"]
    assert second_id != first_id
    assert check_archive(world.get(key_of(second_id)))["code/inference.py"] == b"VERSION = 2\n"

    # CloudFormation's cleanup deletes the old physical id with the OLD properties.
    index.on_event(cfn_event("Delete", props, PhysicalResourceId=first_id), Context())
    assert (key_of(first_id) in world.out_keys()) is retain
    assert key_of(second_id) in world.out_keys()

    # Stack deletion; the Delete is retried once (idempotent).
    for _ in range(2):
        response = index.on_event(
            cfn_event("Delete", new_props, PhysicalResourceId=second_id), Context()
        )
        assert response["PhysicalResourceId"] == second_id
        assert index.is_complete(
            cfn_event("Delete", new_props, PhysicalResourceId=second_id), Context()
        ) == {"IsComplete": True}
    assert (key_of(second_id) in world.out_keys()) is retain
    assert world.open_uploads() == []
    # The source is never touched.
    assert world.s3.head_object(Bucket=world.source_bucket, Key=source_key)["ETag"] == source_etag


def test_delete_ignores_ids_it_did_not_generate(world: World) -> None:
    source_key = world.put_source(tar_gz({"a": b"a"}))
    props = world.properties(source_key)
    # e.g. after a failed Create, or an id that points at the source itself
    for physical_id in ("framework-generated-id", f"s3://{world.source_bucket}/{source_key}"):
        index.on_event(cfn_event("Delete", props, PhysicalResourceId=physical_id), Context())
    assert world.s3.head_object(Bucket=world.source_bucket, Key=source_key)["ContentLength"] > 0


def test_long_job_spans_several_is_complete_calls(world: World) -> None:
    files = {"code/inference.py": b"old\n", "w.bin": weights(16 * MIB)}
    source_key = world.put_source(tar_gz(files, level=1))
    props = world.properties(source_key)
    event = cfn_event("Create", props)
    response = index.on_event(event, Context())
    waiter_event = cast(Event, {**event, **response})
    # 80 s left: below the handler's safety margin, so each call stops after one part.
    results = [index.is_complete(waiter_event, Context(80_000)) for _ in range(10)]
    assert results[0] == {"IsComplete": False}
    assert any(r["IsComplete"] for r in results)
    tree = check_archive(world.get(key_of(response["PhysicalResourceId"])))
    assert tree == expected_tree(
        {
            "w.bin": files["w.bin"],
            "code/inference.py": INFERENCE,
            "code/requirements.txt": REQUIREMENTS,
        }
    )
    assert world.open_uploads() == []


def test_uncompressed_lifecycle(world: World) -> None:
    source_key = world.put_source(tar_gz({"config.json": b"{}", "w.bin": weights(MIB)}))
    props = world.properties(source_key, Compressed="false")
    created = deploy(cfn_event("Create", props))
    prefix_key = key_of(created["PhysicalResourceId"])
    assert prefix_key.endswith("/") and created["Data"]["Key"] == prefix_key
    assert sorted(k for k in world.out_keys() if k.startswith(prefix_key)) == [
        prefix_key + "code/inference.py",
        prefix_key + "code/requirements.txt",
        prefix_key + "config.json",
        prefix_key + "w.bin",
    ]
    index.on_event(
        cfn_event("Delete", props, PhysicalResourceId=created["PhysicalResourceId"]), Context()
    )
    assert world.out_keys() == []


STACK_B = "arn:aws:cloudformation:us-east-1:123456789012:stack/other-towers/def"


@pytest.mark.parametrize(
    "other", [{"StackId": STACK_B}, {"LogicalResourceId": "VisionModelData"}], ids=["stack", "id"]
)
def test_identical_resources_never_share_an_artifact(world: World, other: dict[str, str]) -> None:
    """Two resources with the same properties (two stacks, or two ids in one stack): deleting
    one (RetainOnDelete=false) leaves the other's artifact in place."""
    source_key = world.put_source(tar_gz({"config.json": b"{}", "w.bin": weights(MIB)}))
    props = world.properties(source_key, RetainOnDelete="false")
    first = deploy(cfn_event("Create", props))["PhysicalResourceId"]
    second = deploy(cfn_event("Create", props, **other))["PhysicalResourceId"]
    assert first != second
    index.on_event(cfn_event("Delete", props, PhysicalResourceId=second, **other), Context())
    assert key_of(second) not in world.out_keys()
    tree = check_archive(world.get(key_of(first)))
    assert tree["config.json"] == b"{}"
