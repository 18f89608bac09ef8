"""The risk report on real templates of a tower: what CloudFormation will do with a code change
(a new repacked artifact replaces the Model and the EndpointConfig) and which instance-type
changes SageMaker rejects (an auto-scaled variant) — synthesized through the product's app."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from hf_towers.config.models import PROJECT_ROOT
from hf_towers.risk.rules import AUTOSCALING_UPDATE_PAGE, WILL_FAIL, Finding, evaluate
from hf_towers.risk.template_diff import ENDPOINT_ROLLOUT, ChangeKind, StackDiff, diff_assemblies
from tests.synth_helpers import default_data, templates

STACK = "hf-towers-dev-tower-text"
Variant = Callable[[dict[str, Any]], None]


def _text_tower(*changes: Variant) -> dict[str, dict[str, Any]]:
    data = default_data()
    data["towers"] = {"text": data["towers"]["text"]}
    for change in changes:
        change(data["towers"]["text"])
    return templates(data)


def instance_type(value: str) -> Variant:
    return lambda tower: tower.update(instance_type=value)


def autoscaling(enabled: bool) -> Variant:
    return lambda tower: tower.update(autoscaling={"enabled": enabled})


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, dict[str, Any]]]:
    cache: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}
    edited = tmp_path_factory.mktemp("code") / "text"
    shutil.copytree(PROJECT_ROOT / "model_code" / "text", edited)
    with (edited / "inference.py").open("a", encoding="utf-8") as fh:
        fh.write("\n# a code change\n")

    def code_changed(tower: dict[str, Any]) -> None:
        tower["code_dir"] = str(edited)  # absolute: PROJECT_ROOT / code_dir is this path

    named: dict[str, Variant] = {
        "code": code_changed,
        "c5": instance_type("ml.c5.xlarge"),
        "unscaled": autoscaling(False),
    }

    def build(*names: str) -> dict[str, dict[str, Any]]:
        if names not in cache:
            cache[names] = _text_tower(*(named[name] for name in names))
        return cache[names]

    return build


def _tower_diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[StackDiff, list[Finding]]:
    diffs = diff_assemblies(old, new)
    return next(d for d in diffs if d.stack == STACK), evaluate(diffs)


def _by_type(diff: StackDiff, rtype: str) -> list[Any]:
    return [change for change in diff.changes if change.resource_type == rtype]


def test_code_change_replaces_artifact_model_and_config(synth: Any) -> None:
    diff, findings = _tower_diff(synth(), synth("code"))
    [repack] = _by_type(diff, "Custom::RepackedModelData")
    assert repack.kind is ChangeKind.REPLACED  # was "modified": a new physical id on AWS
    assert repack.create_only_changed == ("CodeKey",)
    [model] = _by_type(diff, "AWS::SageMaker::Model")
    [config] = _by_type(diff, "AWS::SageMaker::EndpointConfig")
    [endpoint] = _by_type(diff, "AWS::SageMaker::Endpoint")
    assert model.kind is ChangeKind.REPLACED
    assert f"refers to replaced {repack.logical_id}" in model.replacement_reasons[0]
    assert config.kind is ChangeKind.REPLACED
    assert endpoint.kind is ChangeKind.MODIFIED and ENDPOINT_ROLLOUT in endpoint.notes
    assert diff.count(ChangeKind.REPLACED) == 3
    # A new model for an auto-scaled variant is allowed (the documented exception).
    assert [f for f in findings if f.severity == WILL_FAIL] == []


def test_instance_type_change_of_autoscaled_tower_will_fail(synth: Any) -> None:
    _, findings = _tower_diff(synth(), synth("c5"))
    [finding] = [f for f in findings if f.severity == WILL_FAIL]
    assert (finding.stack, finding.rule) == (STACK, "autoscaled-variant-update")
    assert "changes InstanceType from ml.m5.xlarge to ml.c5.xlarge" in finding.message
    assert "endpoint/hf-towers-dev-text/variant/AllTraffic" in finding.message
    assert AUTOSCALING_UPDATE_PAGE in finding.message


def test_instance_type_change_without_autoscaling_does_not_fail(synth: Any) -> None:
    diff, findings = _tower_diff(synth("unscaled"), synth("unscaled", "c5"))
    assert [f for f in findings if f.severity == WILL_FAIL] == []
    [config] = _by_type(diff, "AWS::SageMaker::EndpointConfig")
    assert config.kind is ChangeKind.REPLACED


def test_way_out_sequence_of_templates_never_fails(synth: Any) -> None:
    steps = [synth(), synth("unscaled"), synth("unscaled", "c5"), synth("c5")]
    for before, after in itertools.pairwise(steps):
        diff, findings = _tower_diff(before, after)
        assert diff.changes, "each step changes the tower"
        assert [f for f in findings if f.severity == WILL_FAIL] == []
    # Step 1 really deregisters the variant; step 3 registers it again.
    removed = _tower_diff(steps[0], steps[1])[0]
    assert [c.kind for c in _by_type(removed, "AWS::ApplicationAutoScaling::ScalableTarget")] == [
        ChangeKind.REMOVED
    ]
    added = _tower_diff(steps[2], steps[3])[0]
    assert [c.kind for c in _by_type(added, "AWS::ApplicationAutoScaling::ScalableTarget")] == [
        ChangeKind.ADDED
    ]
    # Skipping the steps (disable and change in one deploy) still fails.
    _, direct = _tower_diff(steps[0], steps[2])
    assert [f.rule for f in direct if f.severity == WILL_FAIL] == ["autoscaled-variant-update"]
