"""CDK app of the delivery pipeline (tooling account); `app.py` stays the one-environment app.

    npx cdk -a ".venv/bin/python pipeline_app.py" deploy -c pipeline=config/pipeline.yaml

The pipeline config is ``-c pipeline=PATH`` or ``HF_TOWERS_PIPELINE``, default
``config/pipeline.yaml``; its ``environments`` are read relative to this directory.
"""

import os
import sys
from pathlib import Path

from aws_cdk import App, Environment

from hf_towers.compliance import add_nag_packs
from hf_towers.config import ConfigError, EnvironmentConfig
from hf_towers.config.pipeline import (
    PipelineConfig,
    PipelineConfigError,
    load_pipeline_config,
    load_pipeline_environments,
)
from hf_towers.constructs.repack.vendor import VendorError
from hf_towers.feature_flags import BUILTIN_CLOUDFORMATION_VALIDATION, FEATURE_FLAGS
from hf_towers.images import ImageResolutionError
from hf_towers.pipeline.pipeline_stack import PIPELINE_CONFIG_CONTEXT, PipelineStack

REPO = Path(__file__).parent
DEFAULT_PIPELINE_CONFIG = "config/pipeline.yaml"


def main() -> None:
    app = App(
        context=FEATURE_FLAGS,
        builtin_cloud_formation_validation=BUILTIN_CLOUDFORMATION_VALIDATION,
    )
    config_file = str(
        app.node.try_get_context(PIPELINE_CONFIG_CONTEXT)
        or os.environ.get("HF_TOWERS_PIPELINE")
        or DEFAULT_PIPELINE_CONFIG
    )
    try:
        config = load_pipeline_config(REPO / config_file)
        environments = load_pipeline_environments(config, REPO)
    except (PipelineConfigError, ConfigError) as exc:
        sys.exit(f"error: {exc}")
    try:
        _pipeline(app, config, environments, config_file)
    except (ImageResolutionError, VendorError) as exc:  # the user's fix: a version, make
        sys.exit(f"error: {exc}")
    add_nag_packs(app)
    app.synth()


def _pipeline(
    app: App, config: PipelineConfig, environments: list[EnvironmentConfig], config_file: str
) -> None:
    PipelineStack(
        app,
        f"{config.project}-pipeline",
        stack_name=f"{config.project}-pipeline",
        config=config,
        environments=environments,
        pipeline_config_file=config_file,
        env=Environment(account=config.tooling_account, region=config.tooling_region),
        description=f"{config.project}: self-mutating delivery pipeline (tooling account)",
        termination_protection=True,
    )


if __name__ == "__main__":
    main()
