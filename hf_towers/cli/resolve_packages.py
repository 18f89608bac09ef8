"""``python main.py resolve-packages --config config/dev.yaml``: resolve the towers'
``model_package`` (``latest-approved`` or a pinned version) against the SageMaker Model Registry
and write ``config/resolved/<environment>.packages.json`` (group, version, ModelPackageArn,
ModelDataUrl, approval status, resolved_at per tower), the committed file synthesis reads.

Runs with your AWS credentials (boto3's usual chain) in the registry account and the config's
region; synthesis itself never calls AWS. The delivery pipeline runs it before ``cdk synth``.
``--check`` writes nothing and exits 1 when the file would change (a newer approved version).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hf_towers.config import ConfigError, load_config
from hf_towers.config.packages import RESOLVED_DIR, read_resolved, resolved_path


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``resolve-packages``."""
    parser = subparsers.add_parser(
        "resolve-packages",
        help="resolve model_package towers against the Model Registry into config/resolved/",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, required=True, action="append", help="environment file (repeatable)"
    )
    parser.add_argument(
        "--resolved-dir",
        type=Path,
        default=RESOLVED_DIR,
        help="where <environment>.packages.json goes (default: config/resolved)",
    )
    parser.add_argument(
        "--region",
        default=None,
        help="region of the registry (default: each config's region; the pipeline passes its own)",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a file would change"
    )
    parser.set_defaults(func=run)


def _client(region: str) -> Any:
    import boto3

    return boto3.client("sagemaker", region_name=region)


def run(args: argparse.Namespace) -> int:
    """0: written (or unchanged); 1: ``--check`` found a change; 2: bad config; 3: registry."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        from hf_towers.registry import RegistryError, resolve_environment
    except ModuleNotFoundError as missing:
        print(
            f"resolve-packages: needs boto3 ({missing.name} is missing): run `make test` once, "
            "or `.venv/bin/python -m pip install -r requirements-dev.txt`",
            file=sys.stderr,
        )
        return 3
    changed = False
    for config_file in args.config:
        try:
            config = load_config(
                config_file, resolved_dir=args.resolved_dir, require_resolved=False
            )
        except ConfigError as exc:
            print(f"resolve-packages: {exc}", file=sys.stderr)
            return 2
        if not any(t.model_package is not None for t in config.towers.values()):
            print(f"{config_file}: no model_package towers, nothing to resolve")
            continue
        path = resolved_path(config.environment, args.resolved_dir)
        try:
            previous = read_resolved(path, ConfigError)
        except ConfigError:
            previous = None  # rewritten below
        try:
            resolved = resolve_environment(
                config, _client(args.region or config.region), previous=previous
            )
        except RegistryError as exc:
            print(f"resolve-packages: {config_file}:\n  {exc}", file=sys.stderr)
            return 3
        except (BotoCoreError, ClientError) as exc:
            print(
                f"resolve-packages: {config_file}: the registry could not be asked in "
                f"{args.region or config.region} ({exc}): check credentials for the registry account and "
                "that the groups exist",
                file=sys.stderr,
            )
            return 3
        text = resolved.dumps()
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        for name, entry in sorted(resolved.towers.items()):
            print(
                f"{config_file}: {name}: {entry.group} version {entry.version} "
                f"({entry.requested}) {entry.model_data_url}"
            )
        if old == text:
            print(f"{path}: unchanged")
            continue
        changed = True
        if args.check:
            print(f"{path}: would change (run without --check to write it)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"{path}: written")
    return 1 if args.check and changed else 0
