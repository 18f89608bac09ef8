"""``python main.py publish``: a model card and the model folder, pushed to the Hugging Face Hub.

The model is a tower of ``--config`` (a vision or text tower publishes the dual encoder, one
checkpoint for both towers; a task tower its model). Its files come from ``--model`` (a
checkpoint folder, a ``model.tar.gz`` or an ``s3://`` URI), else from the registered package's
artifact (``--model-package-arn``), else from the tower's ``model_uri``/``model_path``; an
archive is read with the repack's rules and the tower's ``max_decompression_ratio``. The metrics
come from the registered package's evaluation report (``--model-package-arn``, read with your AWS
credentials; only an Approved version) or from a local ``evaluation.json`` (``--metrics``).

``--dry-run OUT_DIR`` writes exactly the folder it would upload (the model's files and the card as
README.md) into a new or empty OUT_DIR and uploads nothing. Without it, the token is ``HF_TOKEN``
or the stored ``hf auth login``; the repository is created if missing (``--private``: private) and
the folder is uploaded as one commit.

Exit status: 0 done, 1 the Hub refused or could not be reached, 2 a bad flag, config or artifact,
3 no Hugging Face token or no AWS credentials.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hf_towers.cli.toy_model import missing_inference_packages
from hf_towers.config import ConfigError, EnvironmentConfig, load_config

DEFAULT_CONFIG = Path("config/default.yaml")
# The Hub's repository ids: namespace/name, letters, digits, '-', '_', '.', at most 96 characters
# (huggingface_hub.utils.validate_repo_id).
REPO_ID = re.compile(r"(?!.*(?:--|\.\.))[A-Za-z0-9][\w.-]{0,94}/[A-Za-z0-9][\w.-]{0,94}")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(?:/[A-Za-z0-9][\w.-]*)?")
LICENSE = re.compile(r"[a-z0-9][a-z0-9.-]*")


def _repo_id(value: str) -> str:
    if not REPO_ID.fullmatch(value) or value.endswith((".git", ".")) or len(value) > 96:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a Hub repository id: give namespace/name (your user or "
            "organisation, then the model's name: letters, digits, '-', '_', '.'), e.g. "
            "my-org/clip-retrieval"
        )
    return value


def _hub_id(value: str) -> str:
    if not HUB_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a Hub id: give name or namespace/name, e.g. "
            "openai/clip-vit-base-patch32"
        )
    return value


def _license(value: str) -> str:
    if not LICENSE.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a Hub license id: use a lowercase id such as apache-2.0, mit or "
            "other (https://huggingface.co/docs/hub/repositories-licenses)"
        )
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``publish``."""
    parser = subparsers.add_parser(
        "publish",
        help="write a model card and push the model folder to the Hugging Face Hub",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="environment file whose tower is published (default config/default.yaml)",
    )
    parser.add_argument(
        "--tower", required=True, help="the tower (vision/text: the dual encoder; or a task tower)"
    )
    parser.add_argument(
        "--repo-id", dest="repo_id", type=_repo_id, required=True, help="Hub repo: namespace/name"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model-package-arn",
        dest="model_package_arn",
        help="an Approved model package version: metrics from its evaluation report, files from "
        "its artifact (AWS credentials)",
    )
    source.add_argument(
        "--metrics", type=Path, help="a local evaluation.json (offline): the card's metrics"
    )
    parser.add_argument(
        "--model",
        help="checkpoint folder, model.tar.gz or s3:// URI (default: the package's artifact, "
        "else the tower's model_uri/model_path)",
    )
    parser.add_argument(
        "--base-model",
        dest="base_model",
        type=_hub_id,
        help="Hub id of the model it was fine-tuned from (default: the package's base_model "
        "metadata)",
    )
    parser.add_argument(
        "--dataset",
        dest="datasets",
        type=_hub_id,
        action="append",
        default=[],
        help="Hub dataset id it was trained on (repeatable)",
    )
    parser.add_argument(
        "--training-data",
        dest="training_data",
        help="a sentence describing the training data (default: the package's training_data "
        "metadata)",
    )
    parser.add_argument("--license", type=_license, help="Hub license id, e.g. apache-2.0")
    parser.add_argument(
        "--private", action="store_true", help="create the repository private (default public)"
    )
    parser.add_argument(
        "--commit-message", dest="commit_message", help="default: Publish <name> (<source>)"
    )
    parser.add_argument(
        "--dry-run",
        dest="dry_run",
        type=Path,
        metavar="OUT_DIR",
        help="write the folder it would upload into this new or empty folder; upload nothing",
    )
    parser.set_defaults(func=run)


def _error(message: str, code: int = 2) -> int:
    print(f"publish: {message}", file=sys.stderr)
    return code


def hub_api(token: str) -> Any:
    """The ``HfApi`` the upload uses (tests replace this function)."""
    from huggingface_hub import HfApi

    return HfApi(token=token)


def boto3_client(service: str, region: str | None = None) -> Any:
    """A boto3 client with the usual credential chain (tests point it at moto)."""
    import boto3

    return boto3.client(service, region_name=region)


def _endpoints(config: EnvironmentConfig, tower: str) -> tuple[Any, ...]:
    """The towers that serve this model: for a dual-encoder tower, every vision/text tower with
    the same artifact; for a task tower, itself."""
    from hf_towers.publish.card import Endpoint

    chosen = config.towers[tower]
    names = [tower]
    if chosen.kind.value in ("vision", "text"):
        names = [
            name
            for name, t in config.towers.items()
            if t.kind.value in ("vision", "text")
            and (t.model_uri, t.model_path) == (chosen.model_uri, chosen.model_path)
        ]
    routed = set(config.api_towers) if config.api.enabled else set()
    return tuple(
        Endpoint(
            tower=name,
            kind=config.towers[name].kind.value,
            endpoint_name=config.endpoint_name(name),
            mode=config.towers[name].inference_mode.value,
            deploys_endpoint=config.towers[name].deploy_endpoint,
            api_route=f"/towers/{name}/invocations" if name in routed else None,
        )
        for name in names
    )


def _out_dir_problem(out: Path) -> str | None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        return (
            f"--dry-run {out} exists and is not an empty folder: pick a new or empty folder "
            "(nothing is overwritten)"
        )
    return None


def run(args: argparse.Namespace) -> int:
    """Write the card and the folder, then push it (or stop at ``--dry-run``); 3 without
    huggingface_hub or boto3 (the inference and test requirements)."""
    try:
        return _run(args)
    except ModuleNotFoundError as missing:
        return missing_inference_packages("publish", missing)


def _run(args: argparse.Namespace) -> int:
    from hf_towers.publish import folder as folders
    from hf_towers.publish import hub, registry
    from hf_towers.publish.card import CardInputs, card_text
    from hf_towers.publish.metrics import ReportError, load_report

    out: Path | None = args.dry_run
    if out is not None and (problem := _out_dir_problem(out)):
        return _error(problem)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _error(f"--config {args.config}: {exc}")
    if args.tower not in config.towers:
        return _error(
            f"--tower {args.tower!r} is not a tower of {args.config} (its towers: "
            f"{', '.join(config.towers)}): pick one of those"
        )
    tower = config.towers[args.tower]
    token = None
    if out is None:
        token = hub.token()
        if token is None:
            return _error(f"no Hugging Face token found: {hub.LOGIN_HINT}", 3)

    package = None
    try:
        if args.model_package_arn:
            region = registry.region_of(args.model_package_arn)
            package = registry.describe(
                args.model_package_arn,
                boto3_client("sagemaker", region),
                boto3_client("s3", region),
            )
            metrics = package.metrics
            metrics_source = (
                f"From the evaluation report `{package.report_uri}` of model package "
                f"`{package.arn}` ({package.status})."
            )
        else:
            metrics = load_report(args.metrics)
            metrics_source = (
                f"From `{args.metrics.name}`, the evaluation report given at publication."
            )
    except (registry.RegistryError, ReportError) as exc:
        return _error(str(exc))
    except registry.AwsAccessError as exc:
        return _error(str(exc), 3)

    if args.model:
        location, what = str(args.model), "--model"
    elif package is not None and package.model_data_url:
        location, what = package.model_data_url, f"{args.model_package_arn}'s ModelDataUrl"
    elif tower.model_uri:
        location, what = tower.model_uri, f"{args.config}: towers.{args.tower}.model_uri"
    else:
        from hf_towers.config.models import PROJECT_ROOT

        location = str(PROJECT_ROOT / str(tower.model_path))
        what = f"{args.config}: towers.{args.tower}.model_path"
    dual = tower.kind.value in ("vision", "text")
    metadata = package.metadata if package else {}
    base_model = args.base_model or metadata.get("base_model")
    training_data = args.training_data or metadata.get("training_data")
    commit_message = args.commit_message or (
        f"Publish {args.repo_id.split('/', 1)[1]} (model package {package.group} version "
        f"{package.version})"
        if package
        else f"Publish {args.repo_id.split('/', 1)[1]} ({config.prefix} tower {args.tower})"
    )
    try:
        with folders.model_folder(
            location,
            what,
            max_ratio=tower.max_decompression_ratio,
            s3=lambda: boto3_client("s3", config.region),
        ) as (source, ours):
            if out is not None and out.resolve().is_relative_to(source.resolve()):
                return _error(
                    f"--dry-run {out} is inside the model folder {source}: pick a folder outside it"
                )
            model_config = folders.check_checkpoint(source, needs_safetensors=dual)
            files, notes = folders.plan(source)
            card = card_text(
                CardInputs(
                    repo_id=args.repo_id,
                    kind=tower.kind.value,
                    hf_task=tower.hf_task,
                    project=config.project,
                    environment=config.environment,
                    region=config.region,
                    config_file=str(args.config),
                    endpoints=_endpoints(config, args.tower),
                    metrics=tuple(metrics),
                    metrics_source=metrics_source,
                    model_config=model_config,
                    files=tuple(rel for rel, _ in files),
                    base_model=base_model,
                    datasets=tuple(args.datasets),
                    training_data=training_data,
                    license=args.license,
                    package=package,
                    api_auth=config.api.auth.value,
                    main_module=tower.main_module_name,
                )
            )
            for note in notes:
                print(f"publish: note: {note}", file=sys.stderr)
            if out is not None:
                return _dry_run(out, files, card, ours=ours, repo_id=args.repo_id)
            with tempfile.TemporaryDirectory(prefix="hf-towers-publish-stage-") as staging:
                folders.stage(files, Path(staging), card, link=True)
                assert token is not None
                pushed = hub.push(
                    hub_api(token),
                    args.repo_id,
                    Path(staging),
                    private=args.private,
                    commit_message=commit_message,
                )
    except folders.FolderError as exc:
        return _error(str(exc))
    except registry.AwsAccessError as exc:
        return _error(str(exc), 3)
    except hub.HubError as exc:
        return _error(str(exc), 1)
    except OSError as exc:
        return _error(
            f"cannot write the folder to publish ({exc}): free space or pick another place"
        )
    visibility = {True: "private", False: "public", None: "visibility unknown"}[pushed.private]
    print(
        f"published {len(files)} files and README.md to {pushed.url} ({visibility})"
        + (f": {pushed.commit_url}" if pushed.commit_url else "")
    )
    return 0


def _dry_run(
    out: Path, files: list[tuple[str, Path]], card: str, *, ours: bool, repo_id: str
) -> int:
    """Write the folder into ``out`` (new or empty: on failure what was written is removed)."""
    from hf_towers.publish.folder import stage

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        size = stage(files, out, card, link=ours)
    except BaseException:
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        if created:
            out.rmdir()
        raise
    print(
        f"wrote {len(files)} files ({size / 2**20:.1f} MiB) and README.md (the model card) to "
        f"{out}; nothing was uploaded. Without --dry-run this folder is pushed to "
        f"https://huggingface.co/{repo_id}"
    )
    return 0
