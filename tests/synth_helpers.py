"""Build the product's app in-process from config data, as app.py does."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from aws_cdk import App
from aws_cdk.assertions import Template

from hf_towers.compliance import add_nag_packs
from hf_towers.config import parse_config
from hf_towers.environment import DeployedEnvironment, add_environment
from hf_towers.feature_flags import FEATURE_FLAGS

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "config" / "default.yaml"


def default_data() -> dict[str, Any]:
    """A fresh copy of the built-in default config's data."""
    return copy.deepcopy(yaml.safe_load(DEFAULT_CONFIG.read_text()))


def build(
    data: dict[str, Any], *, nag: bool = False, outdir: Path | None = None
) -> tuple[App, DeployedEnvironment]:
    """An App with one environment from ``data``; nag packs registered when ``nag``."""
    app = App(context=FEATURE_FLAGS, outdir=str(outdir) if outdir else None)
    deployed = add_environment(app, parse_config(data, "test"))
    if nag:
        add_nag_packs(app)
    return app, deployed


def templates(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Stack name -> template JSON for ``data`` (no nag)."""
    _, deployed = build(data)
    stacks = [deployed.artifacts, *deployed.towers.values(), deployed.access]
    return {stack.stack_name: dict(Template.from_stack(stack).to_json()) for stack in stacks}
