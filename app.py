"""CDK app: one environment from a YAML config file, behind the cdk-nag compliance gate.

The config file is ``-c config=PATH`` (CDK context) or ``HF_TOWERS_CONFIG``, default
``config/default.yaml``. This is the only place that reads context or the environment.
"""

import os
import sys
from pathlib import Path

from aws_cdk import App

from hf_towers.compliance import add_nag_packs
from hf_towers.config import ConfigError, load_config
from hf_towers.constructs.repack.vendor import VendorError
from hf_towers.environment import add_environment
from hf_towers.feature_flags import BUILTIN_CLOUDFORMATION_VALIDATION, FEATURE_FLAGS
from hf_towers.images import ImageResolutionError

DEFAULT_CONFIG = Path(__file__).parent / "config" / "default.yaml"


def main() -> None:
    app = App(
        context=FEATURE_FLAGS,
        builtin_cloud_formation_validation=BUILTIN_CLOUDFORMATION_VALIDATION,
    )
    config_path = (
        app.node.try_get_context("config") or os.environ.get("HF_TOWERS_CONFIG") or DEFAULT_CONFIG
    )
    try:
        config = load_config(Path(config_path))
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    try:
        add_environment(app, config)
    except ImageResolutionError as exc:  # versions the DLC tables do not have: the user's fix
        sys.exit(f"error: {config_path}: {exc}")
    except VendorError as exc:  # the repack function's wheel not downloaded (or not the pinned one)
        sys.exit(f"error: {exc}")
    add_nag_packs(app)
    app.synth()


if __name__ == "__main__":
    main()
