"""Bumping a tower's model version: new Model and EndpointConfig, Endpoint updated in place."""

from __future__ import annotations

from typing import Any

from hf_towers.risk.template_diff import ChangeKind, diff_templates
from tests.synth_helpers import default_data, templates

STACK = "hf-towers-dev-tower-vision"


def test_version_bump_replaces_model_and_config_and_updates_endpoint(
    default_templates: dict[str, Any],
) -> None:
    data = default_data()
    data["towers"]["vision"]["model_version"] = "2"
    data["towers"]["vision"]["model_uri"] = "s3://example-ml-artifacts/dual-encoder/v2/model.tar.gz"
    bumped = templates(data)
    diff = diff_templates(STACK, default_templates[STACK], bumped[STACK])
    kinds = {change.resource_type: change.kind for change in diff.changes}
    assert kinds["AWS::SageMaker::Model"] is ChangeKind.REPLACED
    assert kinds["AWS::SageMaker::EndpointConfig"] is ChangeKind.REPLACED
    assert kinds["AWS::SageMaker::Endpoint"] is ChangeKind.MODIFIED
    # Only generated-name resources are replaced: a replaced custom-named resource would
    # block the update ("cannot update a stack when a custom-named resource requires replacing").
    for change in diff.changes:
        if change.kind is ChangeKind.REPLACED:
            assert not {"ModelName", "EndpointConfigName"} & set(change.new_properties)
    # The stateful stack and the other towers do not change at all.
    for other in ("hf-towers-dev-artifacts", "hf-towers-dev-tower-text", "hf-towers-dev-tower-qa"):
        assert diff_templates(other, default_templates[other], bumped[other]).changes == ()
