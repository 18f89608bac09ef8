"""``main.py deploy|synth|diff``: the seed's deployment job, as CDK stacks of one tower.

Flags and defaults are those of the seed (``--model_type``, ``--model_name``, ``--model_uri``,
``--endpoint_name``, ``--instance_type ml.g5.8xlarge``, ``--initial_instance_count_endpoint 1``,
``--deploy_model_as_endpoint`` off, ``--usr_code_dir``, ``--docker_image``,
``--main_module_name``); the seed's environment variables fill in flags not given. The tower is
written as a config file under ``cdk.out.cli/`` (the user's config files are never changed)
and the pinned CDK CLI runs on it.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hf_towers.config import ConfigError, EnvironmentConfig, load_config, parse_config
from hf_towers.tools.cdk_cli import REPO, quiet_run_cdk, run_cdk

DEFAULT_BASE_CONFIG = REPO / "config" / "default.yaml"
GENERATED_DIR = REPO / "cdk.out.cli"
# --import-existing-resources: a log group kept by a deleted tower stack (fixed name, retained)
# is imported by the next deploy instead of failing it (constructs/log_encryption.py).
DEPLOY_FLAGS = ["--import-existing-resources"]
APPROVALS = ("broadening", "any-change", "destructive", "never")
"""``cdk deploy --require-approval`` (the pinned CLI's choices): ask before IAM widening
(default), before any change, before a destructive change, or never (CI, where nobody can answer;
review the change with ``diff`` first)."""
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}

# flag -> the seed's environment variable that supplies it when the flag is absent
ENV_VARS: Mapping[str, str] = {
    "model_name": "MODEL_NAME",
    "model_uri": "MODEL_URI",
    "endpoint_name": "ENDPOINT_NAME",
    "instance_type": "INSTANCE_TYPE",
    "initial_instance_count_endpoint": "INITIAL_INSTANCE_COUNT",
    "deploy_model_as_endpoint": "DEPLOY_MODEL_AS_ENDPOINT",
    "usr_code_dir": "USR_CODE_DIR",
    "main_module_name": "MAIN_MODULE_NAME",
    "model_entry_point": "MODEL_ENTRY_POINT",
}


def add_parser(subparsers: Any) -> None:
    """Register ``deploy``, ``synth`` and ``diff``."""
    for verb, text in (
        ("deploy", "deploy a vision or text tower (cdk deploy)"),
        ("synth", "synthesize a tower's stacks without deploying (cdk synth)"),
        (
            "diff",
            "compare a tower's stacks with what is deployed (cdk diff), or with a git ref offline (--base)",
        ),
    ):
        parser = subparsers.add_parser(verb, help=text, description=text)
        _add_tower_flags(parser, required=verb != "diff", repeat_config=verb == "diff")
        if verb == "diff":
            _add_offline_diff_flags(parser)
        parser.set_defaults(func=run, verb=verb, parser=parser)


def _add_tower_flags(
    parser: argparse.ArgumentParser, *, required: bool, repeat_config: bool = False
) -> None:
    parser.add_argument("--model_type", choices=["vision", "text"], help="which tower (required)")
    parser.add_argument("--model_name", help="tower/model name (env MODEL_NAME)")
    parser.add_argument("--model_uri", help="S3 URI of the trained model.tar.gz (env MODEL_URI)")
    parser.add_argument("--endpoint_name", help="SageMaker endpoint name (env ENDPOINT_NAME)")
    parser.add_argument(
        "--instance_type", help="instance type (env INSTANCE_TYPE; default ml.g5.8xlarge)"
    )
    parser.add_argument(
        "--initial_instance_count_endpoint",
        help="initial instance count (env INITIAL_INSTANCE_COUNT; default 1)",
    )
    parser.add_argument(
        "--deploy_model_as_endpoint",
        action="store_const",
        const="true",
        help="create the endpoint too; without it only the Model is created (env DEPLOY_MODEL_AS_ENDPOINT; default off)",
    )
    parser.add_argument(
        "--usr_code_dir",
        help="folder put into the artifact as code/ (env USR_CODE_DIR; default model_code/<type>)",
    )
    parser.add_argument("--docker_image", help="ECR image URI instead of the Hugging Face DLC")
    parser.add_argument(
        "--main_module_name", help="your architecture's module in code/ (env MAIN_MODULE_NAME)"
    )
    parser.add_argument(
        "--model_entry_point",
        help="the endpoint script (env MODEL_ENTRY_POINT; default model_code/<type>/inference.py): "
        "a file name in --usr_code_dir, or a path whose folder becomes the code folder",
    )
    if not repeat_config:
        parser.add_argument(
            "--require-approval",
            dest="require_approval",
            choices=APPROVALS,
            default="broadening",
            help="deploy: when cdk asks before deploying (default broadening: IAM widening); "
            "never for CI",
        )
    if repeat_config:
        # diff: repeatable; `--base` reports on each given file (default every deployed one),
        # `cdk diff` runs once per file (default config/default.yaml).
        parser.add_argument(
            "--config",
            type=Path,
            action="append",
            help="environment file (repeatable): with --base, the environments to report on "
            "(default every config/*.yaml and the pipeline's environments); without, the "
            "files to cdk diff (default config/default.yaml)",
        )
    else:
        parser.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_BASE_CONFIG,
            help="environment file giving project, environment, account, region and tags (default config/default.yaml)",
        )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the generated tower config and stop"
    )
    parser.set_defaults(tower_required=required)


def _add_offline_diff_flags(parser: argparse.ArgumentParser) -> None:
    try:
        from hf_towers.cli.diff_report import add_arguments
    except ImportError:  # the offline report ships with hf_towers.risk
        return
    add_arguments(parser, config=False)


def _value(args: argparse.Namespace, flag: str, environ: Mapping[str, str]) -> str | None:
    given: str | None = getattr(args, flag)
    if given is not None:
        return given
    var = ENV_VARS.get(flag)
    return environ.get(var) if var else None


def tower_name(model_name: str) -> str:
    """The stack-safe tower key for a seed model name (``My_Model`` -> ``my-model``)."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")[:32].strip("-")
    if len(name) < 2 or not name[0].isalpha():
        raise ValueError(
            f"--model_name {model_name!r} gives no usable name: it becomes the tower name, which needs "
            "at least two letters, digits or '-', starting with a letter (e.g. my-model)"
        )
    return name


def tower_config(
    args: argparse.Namespace, environ: Mapping[str, str], parser: argparse.ArgumentParser
) -> dict[str, Any]:
    """The tower entry of the generated config, from flags then environment variables."""
    count_text = _value(args, "initial_instance_count_endpoint", environ) or "1"
    try:
        count = int(count_text)
    except ValueError:
        parser.error(
            f"--initial_instance_count_endpoint / INITIAL_INSTANCE_COUNT: {count_text!r} is not an integer"
        )
    deploy_text = (_value(args, "deploy_model_as_endpoint", environ) or "false").strip().lower()
    if deploy_text not in TRUE | FALSE:
        parser.error(f"DEPLOY_MODEL_AS_ENDPOINT={deploy_text!r}: use true or false")
    tower: dict[str, Any] = {
        "kind": args.model_type,
        "model_uri": _value(args, "model_uri", environ),
        "endpoint_name": _value(args, "endpoint_name", environ),
        "instance_type": _value(args, "instance_type", environ) or "ml.g5.8xlarge",
        "initial_instance_count": count,
        "deploy_endpoint": deploy_text in TRUE,
    }
    for flag, key in (("usr_code_dir", "code_dir"), ("main_module_name", "main_module_name")):
        value = _value(args, flag, environ)
        if value:
            tower[key] = value
    entry_point = _value(args, "model_entry_point", environ)
    if entry_point:
        # The seed's MODEL_ENTRY_POINT is the endpoint script's location: its file name is the
        # entry module, its folder the code folder unless --usr_code_dir names one.
        script = Path(entry_point)
        if not script.name.endswith(".py"):
            parser.error(
                f"--model_entry_point / MODEL_ENTRY_POINT {entry_point!r} is not a Python file: "
                "give the endpoint script, e.g. model_code/vision/inference.py"
            )
        tower["entry_module"] = script.name
        if str(script.parent) not in ("", ".") and "code_dir" not in tower:
            tower["code_dir"] = str(script.parent)
    if args.docker_image:
        tower["image"] = args.docker_image
    if (
        tower.get("code_dir")
        and not (REPO / tower["code_dir"]).is_dir()
        and not Path(tower["code_dir"]).is_dir()
    ):
        parser.error(
            f"--usr_code_dir {tower['code_dir']!r} is not a directory: pass the folder holding inference.py"
        )
    return tower


def build_config(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[str, EnvironmentConfig, dict[str, Any]]:
    """(tower name, validated config, raw data) for the flags on top of ``--config``."""
    parser: argparse.ArgumentParser = args.parser
    missing = [
        f"--{flag}"
        for flag in ("model_type", "model_name", "model_uri", "endpoint_name")
        if not _value(args, flag, environ)
    ]
    if missing:
        parser.error(
            f"the following arguments are required: {', '.join(missing)} (or their environment variables)"
        )
    try:
        base = load_config(args.config)
    except ConfigError as exc:
        parser.error(str(exc))
    try:
        name = tower_name(str(_value(args, "model_name", environ) or ""))
    except ValueError as exc:
        parser.error(str(exc))
    if name in base.towers:
        parser.error(
            f"--model_name {name!r}: {args.config} already has a tower {name!r}, deployed from "
            f"that file (npx cdk deploy -c config={args.config}): pick another name"
        )
    # The CLI's tower joins the environment's own towers, so the shared access stack it deploys
    # keeps every tower's deployer permissions (a one-tower config would strip them).
    data = base.model_dump(mode="json", exclude_unset=True)
    data["towers"] = {**data.get("towers", {}), name: tower_config(args, environ, parser)}
    try:
        config = parse_config(data, f"{args.verb} flags on {args.config}")
    except ConfigError as exc:
        parser.error(str(exc))
    return name, config, data


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Write the one-tower config and run ``cdk <verb>`` on its stacks."""
    environ = os.environ if environ is None else environ
    if args.verb == "diff":
        configs: list[Path] = list(args.config or [])
        if getattr(args, "base", None):
            from hf_towers.cli.diff_report import run_offline_diff

            return run_offline_diff(REPO, args.base, args.fail_on, args.output, configs or None)
        configs = configs or [DEFAULT_BASE_CONFIG]
        if not args.model_type and not _value(args, "model_name", environ):
            # One `cdk diff` per environment file; the worst exit code wins.
            return max(quiet_run_cdk(["diff", "-c", f"config={config}"]) for config in configs)
        if len(configs) > 1:
            args.parser.error(
                "--config: a tower's diff (--model_type/--model_name) takes one environment "
                f"file, not {len(configs)}: pass --config once"
            )
        args.config = configs[0]
    name, config, data = build_config(args, environ)
    text = yaml.safe_dump(data, sort_keys=False)
    if args.dry_run:
        print(text, end="")
        return 0
    GENERATED_DIR.mkdir(exist_ok=True)
    path = GENERATED_DIR / f"{config.prefix}-{name}.yaml"
    path.write_text(
        f"# generated by main.py {args.verb}; edit config/ files instead\n{text}", encoding="utf-8"
    )
    stacks = [config.artifacts_stack_name, config.tower_stack_name(name), config.access_stack_name]
    extra = (
        ["--require-approval", args.require_approval, *DEPLOY_FLAGS]
        if args.verb == "deploy"
        else []
    )
    # deploy talks to the terminal (progress, the approval prompt): passed through as it is;
    # synth and diff print their result once done, without the CLI's noise lines.
    runner = run_cdk if args.verb == "deploy" else quiet_run_cdk
    return runner([args.verb, *stacks, "-c", f"config={path}", *extra])
