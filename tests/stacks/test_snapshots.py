"""One snapshot per stack of the default config: guards refactors (update with --snapshot-update)."""

from __future__ import annotations

from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

STACKS = [
    "hf-towers-dev-artifacts",
    "hf-towers-dev-tower-vision",
    "hf-towers-dev-tower-text",
    "hf-towers-dev-tower-qa",
    "hf-towers-dev-access",
]


@pytest.mark.parametrize("stack", STACKS)
def test_template_matches_snapshot(
    stack: str, default_templates: dict[str, Any], snapshot: SnapshotAssertion
) -> None:
    assert default_templates[stack] == snapshot


def test_synth_warns_about_nothing_cdk_asks_to_be_set() -> None:
    """CDK printed a cross-stack-reference WARNING on every synth until the flag was set."""
    from aws_cdk.assertions import Annotations, Match

    from tests.synth_helpers import build, default_data

    _, deployed = build(default_data())
    for stack in deployed.stacks:
        assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []
