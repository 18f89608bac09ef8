"""The pipeline's smoke test invokes each inference component of a shared endpoint by name
(hf_towers/pipeline/smoke.py)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from aws_cdk import App
from aws_cdk.assertions import Template

from hf_towers.config import parse_config
from hf_towers.feature_flags import FEATURE_FLAGS
from hf_towers.pipeline.smoke import SmokeTestStack, smoke_commands
from tests.synth_helpers import default_data

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "shared-gpu.yaml"


def test_each_component_is_invoked_with_its_name() -> None:
    config = parse_config(yaml.safe_load(EXAMPLE.read_text()), "shared-gpu.yaml")
    commands = "\n".join(smoke_commands(config))
    for tower in ("vision", "text"):
        variable = f"ENDPOINT_{tower.upper()}"
        assert (
            f'--endpoint-name "${variable}" --inference-component-name hf-towers-shared-{tower} '
            in commands
        )


def test_separate_endpoints_are_invoked_without_a_component() -> None:
    config = parse_config(default_data(), "default.yaml")
    assert "--inference-component-name" not in "\n".join(smoke_commands(config))


def test_the_smoke_role_may_invoke_the_endpoint_and_its_components() -> None:
    config = parse_config(yaml.safe_load(EXAMPLE.read_text()), "shared-gpu.yaml")
    stack = SmokeTestStack(
        App(context=FEATURE_FLAGS),
        "Smoke",
        config=config,
        tooling_account="111111111111",
        pipeline_stack_name="hf-towers-pipeline",
    )
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    resources = json.dumps(statement["Resource"])
    assert resources.count(":endpoint/hf-towers-shared-gpu") == 1
    assert ":inference-component/hf-towers-shared-vision" in resources
    assert ":inference-component/hf-towers-shared-text" in resources
