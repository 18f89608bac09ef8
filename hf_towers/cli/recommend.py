"""``python main.py recommend ARTIFACT``: instance types that hold the model, cheapest first.

ARTIFACT is a local file or folder, or an S3 URI (``s3://bucket/model.tar.gz`` or a prefix
ending in ``/``) read with your AWS credentials (boto3's usual chain; ``AWS_ENDPOINT_URL_S3``
is honoured). A type fits when size x workers x overhead fits its memory (and, on GPU types,
the workers of one GPU fit that GPU's memory). Prices: hf_towers/recommend/data/instance_prices.json
(on-demand hosting, dated, one region).

``python main.py recommend --config FILE``: the monthly cost (730 h) of the file's towers on
separate endpoints (each its instance_type x initial_instance_count) and on one shared endpoint
of inference components (the cheapest type whose accelerators, vCPUs and memory hold the
towers' reservations; and each configured ``shared_endpoints:`` entry's type), and what scaling
the shared endpoint to zero saves, as price x idle hours.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hf_towers.cli.recommend_costs import run_costs
from hf_towers.recommend import (
    DEFAULT_OVERHEAD,
    GIB,
    ArtifactError,
    S3AccessError,
    artifact_size,
    load_prices,
    recommend,
)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return int(text)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``recommend``."""
    parser = subparsers.add_parser(
        "recommend",
        help="suggest SageMaker instance types for a model artifact, cheapest first; or "
        "(--config) compare shared vs separate endpoint cost of a config's towers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "artifact", nargs="?", help="local file/folder or s3://bucket/key (or prefix/)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="instead of an artifact: compare the monthly cost of FILE's towers on separate "
        "endpoints and on one shared endpoint (inference components)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="model-server workers (default: one per vCPU on CPU types, one per GPU on GPU types)",
    )
    parser.add_argument(
        "--overhead",
        type=_positive_float,
        default=DEFAULT_OVERHEAD,
        help=f"memory per worker as a multiple of the model size (default {DEFAULT_OVERHEAD})",
    )
    parser.add_argument(
        "--budget", type=_positive_float, default=None, help="most USD per instance-hour"
    )
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--gpu", dest="gpu", action="store_const", const=True, help="GPU types only")
    kind.add_argument("--cpu", dest="gpu", action="store_const", const=False, help="CPU types only")
    parser.add_argument("--top", type=_positive_int, default=10, help="show this many (default 10)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the table; 0 when something fits, 1 when nothing does, 2 on a bad artifact or flag,
    3 when S3 cannot be asked (no credentials, no network). With ``--config``: see
    ``recommend_costs.run_costs``."""
    if (args.config is None) == (args.artifact is None):
        print(
            "recommend: give an ARTIFACT to size instance types for, or --config FILE to compare "
            "shared and separate endpoint costs (not both)",
            file=sys.stderr,
        )
        return 2
    if args.config is not None:
        sizing = {
            "--workers": args.workers is not None,
            "--overhead": args.overhead != DEFAULT_OVERHEAD,
            "--budget": args.budget is not None,
            "--gpu/--cpu": args.gpu is not None,
            "--top": args.top != 10,
        }
        if given := [flag for flag, used in sizing.items() if used]:
            print(
                f"recommend: {', '.join(given)} size an ARTIFACT and do nothing with --config: "
                "drop them, or size an artifact instead",
                file=sys.stderr,
            )
            return 2
        return run_costs(args.config)
    if args.overhead < 1:
        print(f"recommend: --overhead {args.overhead} must be at least 1", file=sys.stderr)
        return 2
    try:
        size = artifact_size(args.artifact)
    except ArtifactError as exc:
        print(f"recommend: {exc}", file=sys.stderr)
        return 2
    except S3AccessError as exc:
        print(f"recommend: {exc}", file=sys.stderr)
        return 3
    table = load_prices()
    try:
        found = recommend(
            size,
            table,
            workers=args.workers,
            overhead=args.overhead,
            budget=args.budget,
            gpu=args.gpu,
        )
    except ArtifactError as exc:
        print(f"recommend: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.artifact}: {size / GIB:.2f} GiB; overhead x{args.overhead:g} per worker; "
        f"prices: {table.region} on-demand hosting as of {table.as_of} ({table.currency}/hour)"
    )
    if not found:
        limit = f" under {args.budget:g} {table.currency}/hour" if args.budget else ""
        print(
            f"no instance type fits{limit}: raise --budget, lower --workers or --overhead, "
            "or shrink the model (quantize, shard)",
            file=sys.stderr,
        )
        return 1
    print(
        f"{'instance type':<18} {'$/hour':>8} {'workers':>7} {'needs GiB':>9} {'of GiB':>7} {'headroom':>8}"
    )
    for rec in found[: args.top]:
        print(
            f"{rec.instance.name:<18} {rec.instance.price:>8.3f} {rec.workers:>7} "
            f"{rec.needed_gib:>9.2f} {rec.available_gib:>7.1f} {rec.headroom:>8.0%}"
        )
    return 0
