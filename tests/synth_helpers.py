"""Build the product's app in-process from config data, as app.py does."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from aws_cdk import App
from aws_cdk.assertions import Template
from constructs import IConstruct

from hf_towers.compliance import ACKNOWLEDGED_METADATA, PACKS, add_nag_packs
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
    return {
        stack.stack_name: dict(Template.from_stack(stack).to_json()) for stack in deployed.stacks
    }


def assert_packs_pass(report: dict[str, Any]) -> None:
    """Every cdk-nag pack in a CDK validation report concluded ``success``."""
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    for name in PACKS:
        assert name in plugins, f"pack {name} did not run"
        assert plugins[name]["conclusion"] == "success", plugins[name].get("violations")


def used_acknowledgements(report: dict[str, Any]) -> set[tuple[str, str]]:
    """(construct path, qualified rule id) of every finding an acknowledgement suppressed."""
    return {
        (s["acknowledgedAt"], s["acknowledgedId"])
        for p in report["pluginReports"]
        for s in p.get("suppressedViolations", [])
    }


def declared_acknowledgements(app: IConstruct) -> set[tuple[str, str]]:
    """(construct path, qualified rule id) of every ``compliance.acknowledge`` under ``app``."""
    return {
        (node.node.path, str(entry.data))
        for node in app.node.find_all()
        for entry in node.node.metadata
        if entry.type == ACKNOWLEDGED_METADATA
    }
