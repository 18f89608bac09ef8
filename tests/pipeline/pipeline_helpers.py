"""The pipeline tests' tooling account, connection, config and synthesized app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment

from hf_towers.compliance import add_nag_packs
from hf_towers.config import EnvironmentConfig
from hf_towers.config.pipeline import PipelineConfig, parse_pipeline_config
from hf_towers.feature_flags import FEATURE_FLAGS
from hf_towers.pipeline.pipeline_stack import PipelineStack

TOOLING = "999999999999"
CONNECTION = (
    "arn:aws:codeconnections:us-east-1:999999999999:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
)


def pipeline_config(environments: list[str], **keys: Any) -> PipelineConfig:
    """A pipeline in the tooling account on ``my-org/hf-towers``, ``environments`` in order,
    plus ``keys``."""
    return parse_pipeline_config(
        {
            "tooling_account": TOOLING,
            "tooling_region": "us-east-1",
            "repository": "my-org/hf-towers",
            "connection_arn": CONNECTION,
            "environments": environments,
            **keys,
        },
        "test",
    )


def synth_pipeline(
    config: PipelineConfig, environments: list[EnvironmentConfig], out: Path
) -> dict[str, Any]:
    """``hf-towers-pipeline`` synthesized into ``out`` through the nag packs: app, stack, out
    and template JSON."""
    app = App(context=FEATURE_FLAGS, outdir=str(out))
    stack = PipelineStack(
        app,
        "hf-towers-pipeline",
        stack_name="hf-towers-pipeline",
        config=config,
        environments=environments,
        env=Environment(account=TOOLING, region="us-east-1"),
    )
    add_nag_packs(app)
    app.synth()
    template = json.loads((out / "hf-towers-pipeline.template.json").read_text())
    return {"app": app, "stack": stack, "out": out, "template": template}
