"""Load and validate one environment's YAML file into an ``EnvironmentConfig``.

Every problem is reported at once, each line naming the file, the key path, the bad value
and the fix, e.g. ``config/dev.yaml: towers.vision.instance_type = 'g5.xlarge': must be a
SageMaker instance type: use an ml.* type such as ml.g5.xlarge``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hf_towers.config.base import load_file, parse_file_data
from hf_towers.config.models import EnvironmentConfig

# The fix to suggest, by the last key of the failing path.
HINTS: Mapping[str, str] = {
    "instance_type": "must be a SageMaker instance type: use an ml.* type such as ml.g5.xlarge",
    "initial_instance_count": "must be an integer from 1 to 100",
    "region": "must be an AWS region code such as us-east-1 or eu-west-1",
    "account": "must be a 12-digit AWS account id in quotes, e.g. '123456789012', or null",
    "model_uri": "must be an S3 URI s3://<bucket>/<key> whose bucket name is 3-63 lowercase "
    "letters, digits, '.' or '-', e.g. s3://my-bucket/path/model.tar.gz",
    "endpoint_name": "must be 1-63 letters, digits or hyphens, starting with a letter or digit",
    "environment": "must be lowercase letters, digits and hyphens, 2-32 chars, e.g. dev",
    "project": "must be lowercase letters, digits and hyphens, 2-32 chars, e.g. hf-towers",
    "towers": "must map tower names (lowercase, e.g. vision) to tower settings; at least one",
    "removal_policy": "must be retain or destroy",
    "kind": "must be vision, text or task",
    "entry_module": "must be a Python file name such as inference.py",
    "log_retention_days": "must be one of CloudWatch Logs' retention values, e.g. 30, 90, 365",
}


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message lists every problem."""


def parse_config(data: Any, source: str) -> EnvironmentConfig:
    """Validate already-loaded YAML data; ``source`` names it in error messages."""
    return parse_file_data(
        EnvironmentConfig,
        data,
        source,
        error=ConfigError,
        title="invalid configuration",
        keys="project, environment, region, towers",
        hints=HINTS,
    )


def load_config(path: Path) -> EnvironmentConfig:
    """Read ``path`` (YAML) and validate it."""
    data = load_file(path, error=ConfigError, what="config file", example="config/default.yaml")
    return parse_config(data, str(path))
