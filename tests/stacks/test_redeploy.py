"""Delete -> redeploy of a retained environment's stacks needs no manual cleanup.

A resource that survives its stack's delete (DeletionPolicy Retain/RetainExceptOnCreate) and has
a custom name would make the next create fail with "already exists", unless CloudFormation can
import it automatically: a static custom name, DeletionPolicy Retain or RetainExceptOnCreate, a
type that supports import (docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
import-resources-automatically.html). A name built from a resource of the same stack (the API's
execution log group, named after the RestApi id) is new on every create and never collides.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.stacks.config_matrix import protected_environment
from tests.synth_helpers import build

RETAINED = {"Retain", "RetainExceptOnCreate"}
# Custom-name properties of the types these stacks create (the Name type of CloudFormation).
NAME_PROPERTIES = ("LogGroupName", "BucketName", "TopicName", "DashboardName", "AlarmName")
# Types whose retained instances the auto-import supports and that our stacks keep by name.
IMPORTABLE = {"AWS::Logs::LogGroup"}


@pytest.fixture(scope="module")
def prod_templates() -> dict[str, dict[str, Any]]:
    _, deployed = build(protected_environment())
    return {s.stack_name: dict(Template.from_stack(s).to_json()) for s in deployed.stacks}


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return {value["Ref"]}
        return set().union(*(_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def test_every_retained_named_resource_is_auto_importable_or_renamed_on_create(
    prod_templates: dict[str, dict[str, Any]],
) -> None:
    checked = []
    for stack, template in prod_templates.items():
        resources = template["Resources"]
        for logical_id, resource in resources.items():
            if resource.get("DeletionPolicy") not in RETAINED:
                continue
            properties = resource.get("Properties", {})
            for key in NAME_PROPERTIES:
                if key not in properties:
                    continue
                name = properties[key]
                checked.append((stack, logical_id, name))
                if isinstance(name, str):
                    assert resource["Type"] in IMPORTABLE, (stack, logical_id)
                    continue
                # A name made from a non-retained resource of this stack: new on every create.
                refs = _refs(name)
                assert refs, (stack, logical_id, name)
                for ref in refs:
                    assert ref in resources, (stack, logical_id, ref)
                    assert resources[ref].get("DeletionPolicy") not in RETAINED
    names = {name for _, _, name in checked if isinstance(name, str)}
    assert "/aws/sagemaker/Endpoints/hf-towers-prod-text" in names
    assert "/aws/apigateway/hf-towers-prod-api/access" in names


def test_retained_log_groups_are_deleted_when_their_first_create_rolls_back(
    prod_templates: dict[str, dict[str, Any]],
) -> None:
    policies: dict[str, tuple[str, str]] = {}
    for template in prod_templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::Logs::LogGroup":
                name = resource["Properties"]["LogGroupName"]
                key = name if isinstance(name, str) else "API-Gateway-Execution-Logs"
                policies[key] = (resource["DeletionPolicy"], resource["UpdateReplacePolicy"])
    kept = {k: v for k, v in policies.items() if not k.startswith("/aws/lambda/")}
    # an endpoint log group per tower with an endpoint, the API's access and execution logs
    from hf_towers.config import parse_config

    config = parse_config(protected_environment(), "prod")
    assert len(kept) == len(config.endpoint_names) + 2
    assert set(kept.values()) == {("RetainExceptOnCreate", "Retain")}
    # the repack functions' logs go with their stack (Delete): nothing left to collide with
    assert {v for k, v in policies.items() if k.startswith("/aws/lambda/")} == {
        ("Delete", "Delete")
    }
