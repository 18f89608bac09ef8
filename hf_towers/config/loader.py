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
from hf_towers.config.packages import RESOLVE_COMMAND, RESOLVED_DIR, read_resolved, resolved_path

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
    "group": "must be a Model Package Group name: 1-63 letters, digits and hyphens, e.g. hf-towers-dual-encoder",
}


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message lists every problem."""


def parse_config(
    data: Any,
    source: str,
    *,
    resolved_dir: Path = RESOLVED_DIR,
    require_resolved: bool = True,
) -> EnvironmentConfig:
    """Validate already-loaded YAML data; ``source`` names it in error messages.

    Towers with ``model_package`` get their entry of ``<resolved_dir>/<environment>.packages.json``
    (README, 'Registry and approval'); one without a matching entry is an error naming the
    command that writes it, unless ``require_resolved`` is false (``resolve-packages`` itself).
    """
    config = parse_file_data(
        EnvironmentConfig,
        data,
        source,
        error=ConfigError,
        title="invalid configuration",
        keys="project, environment, region, towers",
        hints=HINTS,
    )
    return bind_packages(config, source, resolved_dir, require_resolved=require_resolved)


def bind_packages(
    config: EnvironmentConfig, source: str, resolved_dir: Path, *, require_resolved: bool = True
) -> EnvironmentConfig:
    """``config`` with each ``model_package`` carrying its entry of the resolved file."""
    packaged = {n: t for n, t in config.towers.items() if t.model_package is not None}
    if not packaged:
        return config
    path = resolved_path(config.environment, resolved_dir)
    resolved = read_resolved(path, ConfigError)
    entries = resolved.towers if resolved is not None else {}
    problems: list[str] = []
    if resolved is not None and resolved.environment != config.environment:
        problems.append(
            f"{path}: environment = {resolved.environment!r}: the file is for another "
            f"environment than {config.environment!r}"
        )
    towers = dict(config.towers)
    for name, tower in packaged.items():
        assert tower.model_package is not None
        entry = entries.get(name)
        why = tower.model_package.check_entry(entry)
        if why is None and entry is not None:
            towers[name] = tower.model_copy(
                update={"model_package": tower.model_package.bound(entry)}
            )
        else:
            problems.append(
                f"{source}: towers.{name}.model_package = "
                f"{tower.model_package.group}/{tower.model_package.version}: {why} {path}"
            )
    if problems and require_resolved:
        command = RESOLVE_COMMAND.format(config=source)
        raise ConfigError(
            "unresolved model packages (synth makes no AWS calls; the registry's answer is a "
            "committed file):\n  "
            + "\n  ".join(problems)
            + f"\n  fix: run `{command}` with credentials for the registry account, and commit "
            "the file it writes"
        )
    return config.model_copy(update={"towers": towers})


def load_config(
    path: Path, *, resolved_dir: Path = RESOLVED_DIR, require_resolved: bool = True
) -> EnvironmentConfig:
    """Read ``path`` (YAML) and validate it (with its resolved packages, see ``parse_config``)."""
    data = load_file(path, error=ConfigError, what="config file", example="config/default.yaml")
    return parse_config(
        data, str(path), resolved_dir=resolved_dir, require_resolved=require_resolved
    )
