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
