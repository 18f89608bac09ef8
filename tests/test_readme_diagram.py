"""The README's diagram names stacks and resource types that the app really synthesizes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.synth_helpers import default_data, templates

README = Path(__file__).resolve().parent.parent / "README.md"


def _diagram() -> str:
    match = re.search(r"```mermaid\n(.*?)```", README.read_text(), re.S)
    assert match, "the README opens with a Mermaid diagram"
    return match[1]


def test_the_diagrams_stacks_and_resource_types_are_what_synth_produces() -> None:
    data = default_data()
    data["api"] = {"enabled": True}  # the diagram shows the optional API stack too
    synthesized: dict[str, dict[str, Any]] = templates(data)
    diagram = _diagram()
    stacks = {
        name.replace("&lt;name&gt;", "vision")
        for name in re.findall(r"stack &lt;project&gt;-&lt;env&gt;-([\w&;-]+)", diagram)
    }
    assert stacks == {"artifacts", "tower-vision", "access", "api"}
    for suffix in stacks:
        assert f"hf-towers-dev-{suffix}" in synthesized, suffix
    types = set(re.findall(r"\b((?:AWS|Custom)::[\w:]+)", diagram))
    produced = {
        resource["Type"]
        for template in synthesized.values()
        for resource in template.get("Resources", {}).values()
    }
    assert types - produced == set()
    assert {"AWS::SageMaker::Model", "Custom::RepackedModelData"} <= types
