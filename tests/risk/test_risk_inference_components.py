"""The risk report on a shared endpoint with inference components: template pairs for each
property a tower change touches, and the action predicted for it (replaced / modified, with
the notes that say what SageMaker does, and the findings: risky or will fail).

The pairs are hand-written in the shape of an inference-component stack (one EndpointConfig in
component form, one Endpoint, one Model + InferenceComponent per tower, copy-count scaling), so
they do not depend on the stacks being built."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from hf_towers.risk.report import render_markdown
from hf_towers.risk.rules import RISKY, RULES, WILL_FAIL, Finding, evaluate
from hf_towers.risk.schemas import create_only_paths, type_schema
from hf_towers.risk.template_diff import (
    COMPONENT_ROLLOUT,
    COPY_COUNT_SET,
    ENDPOINT_ROLLOUT,
    SHARED_FLEET_ROLLOUT,
    ChangeKind,
    ResourceChange,
    StackDiff,
    diff_templates,
    is_component_config,
)

IC = "AWS::SageMaker::InferenceComponent"
ROLE = {"Fn::GetAtt": ["Role", "Arn"]}
ENDPOINT_NAME = {"Fn::GetAtt": ["Endpoint", "EndpointName"]}


def res(rtype: str, **props: Any) -> dict[str, Any]:
    return {"Type": rtype, "Properties": props}


def model(version: str) -> dict[str, Any]:
    return res(
        "AWS::SageMaker::Model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/hf:latest",
            "ModelDataUrl": f"s3://artifacts/vision/{version}/model.tar.gz",
        },
    )


def component(tower: str, accelerators: int = 1, memory: int = 1024) -> dict[str, Any]:
    return res(
        IC,
        EndpointName=ENDPOINT_NAME,
        VariantName="AllTraffic",
        Specification={
            "ModelName": {"Fn::GetAtt": [f"Model{tower}", "ModelName"]},
            "ComputeResourceRequirements": {
                "NumberOfAcceleratorDevicesRequired": accelerators,
                "NumberOfCpuCoresRequired": 1,
                "MinMemoryRequiredInMb": memory,
            },
        },
        RuntimeConfig={"CopyCount": 1},
    )


def shared_stack() -> dict[str, Any]:
    """Vision and text as components of one ml.g5.12xlarge endpoint that scales to zero."""
    return {
        "Resources": {
            "Role": res("AWS::IAM::Role", AssumeRolePolicyDocument={"Statement": []}),
            "ModelVision": model("1"),
            "ModelText": model("1"),
            "Config": res(
                "AWS::SageMaker::EndpointConfig",
                ExecutionRoleArn=ROLE,
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "InstanceType": "ml.g5.12xlarge",
                        "InitialInstanceCount": 1,
                        "ManagedInstanceScaling": {
                            "Status": "ENABLED",
                            "MinInstanceCount": 0,
                            "MaxInstanceCount": 1,
                        },
                        "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
                    }
                ],
            ),
            "Endpoint": res(
                "AWS::SageMaker::Endpoint",
                EndpointConfigName={"Fn::GetAtt": ["Config", "EndpointConfigName"]},
            ),
            "ComponentVision": component("Vision"),
            "ComponentText": component("Text"),
            "CopiesVision": res(
                "AWS::ApplicationAutoScaling::ScalableTarget",
                ServiceNamespace="sagemaker",
                ScalableDimension="sagemaker:inference-component:DesiredCopyCount",
                ResourceId={
                    "Fn::Join": [
                        "",
                        [
                            "inference-component/",
                            {"Fn::GetAtt": ["ComponentVision", "InferenceComponentName"]},
                        ],
                    ]
                },
                MinCapacity=0,
                MaxCapacity=2,
            ),
        }
    }


Edit = Callable[[dict[str, Any]], None]


def pair(edit: Edit) -> tuple[StackDiff, list[Finding]]:
    old = shared_stack()
    new = copy.deepcopy(old)
    edit(new["Resources"])
    diff = diff_templates("Shared", old, new)
    return diff, evaluate([diff])


def kinds(diff: StackDiff) -> dict[str, str]:
    return {c.logical_id: c.kind.value for c in diff.changes}


def the(diff: StackDiff, logical_id: str) -> ResourceChange:
    found = diff.change(logical_id)
    assert found is not None, f"{logical_id} unchanged"
    return found


def variant(resources: dict[str, Any]) -> dict[str, Any]:
    variants: list[dict[str, Any]] = resources["Config"]["Properties"]["ProductionVariants"]
    return variants[0]


# --- the data the prediction rests on ---------------------------------------------------------


def test_schemas_say_components_update_in_place_and_component_configs_are_replaced() -> None:
    # cfn-lint's registry schema: no create-only property of an inference component ...
    schema = type_schema(IC)
    assert schema is not None and schema.create_only == ()
    # ... and ExecutionRoleArn plus the whole ProductionVariants array (ManagedInstanceScaling,
    # RoutingConfig inside) create-only on the endpoint configuration.
    config_paths = create_only_paths("AWS::SageMaker::EndpointConfig")
    assert {("ExecutionRoleArn",), ("ProductionVariants",)} <= set(config_paths)
    assert create_only_paths("AWS::SageMaker::Endpoint") == (("EndpointName",),)


def test_component_form_of_an_endpoint_config() -> None:
    resources = shared_stack()["Resources"]
    assert is_component_config(resources["Config"])
    with_model = copy.deepcopy(resources["Config"])
    variant({"Config": with_model})["ModelName"] = "m"
    assert not is_component_config(with_model)
    without_role = copy.deepcopy(resources["Config"])
    del without_role["Properties"]["ExecutionRoleArn"]
    assert not is_component_config(without_role)
    assert not is_component_config(resources["Endpoint"])
    assert not is_component_config(None)


# --- InferenceComponent -----------------------------------------------------------------------


def test_new_model_version_replaces_the_model_and_updates_only_its_component() -> None:
    def bump(resources: dict[str, Any]) -> None:
        resources["ModelVision"] = model("2")

    diff, findings = pair(bump)
    assert kinds(diff) == {"ModelVision": "replaced", "ComponentVision": "modified"}
    vision = the(diff, "ComponentVision")
    assert vision.changed_paths == ("Properties/Specification",)
    assert vision.notes == ("updated: refers to replaced ModelVision", COMPONENT_ROLLOUT)
    # The text component, the endpoint and its configuration are untouched; nothing is risky.
    assert findings == []


def test_model_name_change_of_a_component_is_an_in_place_update() -> None:
    def rename(resources: dict[str, Any]) -> None:
        resources["ComponentText"]["Properties"]["Specification"]["ModelName"] = "text-v2"

    diff, findings = pair(rename)
    assert kinds(diff) == {"ComponentText": "modified"}
    change = the(diff, "ComponentText")
    assert change.changed_paths == ("Properties/Specification/ModelName",)
    assert change.create_only_changed == () and COMPONENT_ROLLOUT in change.notes
    assert findings == []


def test_compute_reservation_change_is_an_in_place_update_that_needs_capacity() -> None:
    def more_memory(resources: dict[str, Any]) -> None:
        resources["ComponentVision"] = component("Vision", memory=4096)

    diff, findings = pair(more_memory)
    assert kinds(diff) == {"ComponentVision": "modified"}
    change = the(diff, "ComponentVision")
    assert change.changed_paths == (
        "Properties/Specification/ComputeResourceRequirements/MinMemoryRequiredInMb",
    )
    assert change.notes == (COMPONENT_ROLLOUT,)
    assert "MaxInstanceCount" in COMPONENT_ROLLOUT  # the capacity the new copies need
    assert findings == []


def test_copy_count_change_sets_the_live_copy_count() -> None:
    def two_copies(resources: dict[str, Any]) -> None:
        resources["ComponentText"]["Properties"]["RuntimeConfig"]["CopyCount"] = 2

    diff, findings = pair(two_copies)
    assert kinds(diff) == {"ComponentText": "modified"}
    change = the(diff, "ComponentText")
    assert change.changed_paths == ("Properties/RuntimeConfig/CopyCount",)
    assert change.notes == (COPY_COUNT_SET,)
    assert findings == []


def test_moving_a_component_to_another_endpoint_is_flagged() -> None:
    def move(resources: dict[str, Any]) -> None:
        resources["ComponentText"]["Properties"]["EndpointName"] = "other-endpoint"

    diff, findings = pair(move)
    # The schema says update in place ...
    assert kinds(diff) == {"ComponentText": "modified"}
    # ... but the update API cannot move a component: a reviewer must look.
    [finding] = findings
    assert (finding.rule, finding.severity, finding.logical_id) == (
        "inference-component-moved",
        RISKY,
        "ComponentText",
    )
    assert "EndpointName changes from" in finding.message
    assert '"Fn::GetAtt"' in finding.message and "to other-endpoint" in finding.message
    assert "new construct id" in finding.message
    assert "API_UpdateInferenceComponent.html" in finding.message


def test_replacing_the_endpoint_moves_every_component_on_it() -> None:
    def rename_endpoint(resources: dict[str, Any]) -> None:
        resources["Endpoint"]["Properties"]["EndpointName"] = "shared-gpu-2"

    diff, findings = pair(rename_endpoint)
    assert the(diff, "Endpoint").kind is ChangeKind.REPLACED
    # The components' EndpointName is the same token in both templates, yet a new value.
    assert kinds(diff)["ComponentVision"] == "modified"
    assert kinds(diff)["ComponentText"] == "modified"
    moved = sorted(f.logical_id for f in findings if f.rule == "inference-component-moved")
    assert moved == ["ComponentText", "ComponentVision"]
    assert all(
        "EndpointName refers to replaced Endpoint" in f.message
        for f in findings
        if f.rule == "inference-component-moved"
    )
    assert "endpoint-replaced" in {f.rule for f in findings}


def test_variant_and_component_renames_are_flagged_and_other_changes_are_not() -> None:
    def rename(resources: dict[str, Any]) -> None:
        props = resources["ComponentVision"]["Properties"]
        props["VariantName"] = "Blue"
        props["InferenceComponentName"] = "vision-2"

    _, findings = pair(rename)
    messages = sorted(f.message.split(":")[0] for f in findings)
    assert messages == [
        "inference component InferenceComponentName changes from null to vision-2",
        "inference component VariantName changes from AllTraffic to Blue",
    ]

    # Tags, copies, specification: no finding of this rule.
    def tag(resources: dict[str, Any]) -> None:
        resources["ComponentVision"]["Properties"]["Tags"] = [{"Key": "k", "Value": "v"}]

    assert pair(tag)[1] == []


def test_an_added_or_removed_component_is_not_a_move() -> None:
    def add(resources: dict[str, Any]) -> None:
        resources["ComponentQa"] = component("Text")

    def remove(resources: dict[str, Any]) -> None:
        del resources["ComponentText"]

    for edit in (add, remove):
        diff, findings = pair(edit)
        assert findings == []
        assert len(diff.changes) == 1


# --- EndpointConfig in component form, and the Endpoint ---------------------------------------


@pytest.mark.parametrize(
    ("what", "edit", "create_only"),
    [
        (
            "execution role",
            lambda r: r["Config"]["Properties"].update(ExecutionRoleArn="arn:aws:iam::1:role/x"),
            "ExecutionRoleArn",
        ),
        (
            "instance scaling bounds",
            lambda r: variant(r)["ManagedInstanceScaling"].update(MaxInstanceCount=2),
            "ProductionVariants",
        ),
        (
            "routing strategy",
            lambda r: variant(r)["RoutingConfig"].update(RoutingStrategy="RANDOM"),
            "ProductionVariants",
        ),
        (
            "instance type",
            lambda r: variant(r).update(InstanceType="ml.g5.2xlarge"),
            "ProductionVariants",
        ),
    ],
)
def test_component_config_changes_replace_it_and_roll_the_shared_fleet(
    what: str, edit: Edit, create_only: str
) -> None:
    diff, findings = pair(edit)
    assert kinds(diff) == {"Config": "replaced", "Endpoint": "modified"}, what
    assert the(diff, "Config").create_only_changed == (create_only,)
    endpoint = the(diff, "Endpoint")
    assert endpoint.notes == (
        "updated: refers to replaced Config",
        ENDPOINT_ROLLOUT,
        SHARED_FLEET_ROLLOUT,
    )
    # The components refer to the endpoint's name, which stays: they are not changed.
    assert diff.change("ComponentVision") is None and diff.change("ComponentText") is None
    # Not even risky: the endpoint keeps its name, so no component moves; the scalable target
    # is on the component (inference-component/...), not on the variant.
    assert findings == []


def test_model_form_config_change_has_no_shared_fleet_note() -> None:
    def model_form(resources: dict[str, Any]) -> None:
        props = resources["Config"]["Properties"]
        del props["ExecutionRoleArn"]
        variant(resources)["ModelName"] = {"Fn::GetAtt": ["ModelVision", "ModelName"]}

    old = shared_stack()
    model_form(old["Resources"])
    new = copy.deepcopy(old)
    variant(new["Resources"]).update(InstanceType="ml.g5.2xlarge")
    endpoint = diff_templates("S", old, new).change("Endpoint")
    assert endpoint is not None and ENDPOINT_ROLLOUT in endpoint.notes
    assert SHARED_FLEET_ROLLOUT not in endpoint.notes


def test_custom_named_component_config_change_will_fail() -> None:
    def named(resources: dict[str, Any]) -> None:
        resources["Config"]["Properties"]["EndpointConfigName"] = "shared-gpu-config"

    old = shared_stack()
    named(old["Resources"])
    new = copy.deepcopy(old)
    variant(new["Resources"])["ManagedInstanceScaling"]["MinInstanceCount"] = 1
    findings = evaluate([diff_templates("Shared", old, new)])
    [finding] = [f for f in findings if f.severity == WILL_FAIL]
    assert (finding.rule, finding.logical_id) == ("named-resource-replaced", "Config")
    assert "EndpointConfigName" in finding.message


def test_report_shows_the_component_update_and_the_move() -> None:
    def both(resources: dict[str, Any]) -> None:
        resources["ModelVision"] = model("2")
        resources["ComponentText"]["Properties"]["EndpointName"] = "other-endpoint"

    diff, findings = pair(both)
    text = render_markdown([diff], findings, "`main`")
    assert "`inference-component-moved`" in text
    assert "UpdateInferenceComponent" in text
    row = next(line for line in text.splitlines() if "| `ComponentVision` |" in line)
    assert row.startswith("| ✏️ modified |") and "blue/green" in row


def test_the_rule_is_registered() -> None:
    assert "inference-component-moved" in {r.name for r in RULES}
