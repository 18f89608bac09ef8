"""``python main.py <command>``: the seed's deploy CLI and its companions.

Each command lives in its own module exposing ``add_parser(subparsers)``; the parser it adds
sets ``func`` to a callable taking the parsed namespace and returning an exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path

# Module names under hf_towers.cli, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "deploy",
    "serve",
    "toy_model",
    "recommend",
    "publish",
    "resolve_packages",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command registered."""
    parser = argparse.ArgumentParser(
        # "main.py" (the seed's entry point) or "hf-towers" (the console script), as invoked.
        prog=Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "hf-towers",
        description="Deploy Hugging Face models (vision/text towers, task models) to SageMaker with CDK.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"hf_towers.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns its exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
