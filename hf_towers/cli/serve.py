"""``python main.py serve``: a tower on loopback, behind the container's own handler.

``--model_type`` picks the tower's inference code (``model_code/<type>/``), laid over
``--model_dir`` unless that directory already has ``code/`` (a repacked artifact).
``--model_dir`` may also be the ``model.tar.gz`` itself: it is checked with the repack's own rules
(the same validator and decompression-ratio bound, ``--max_decompression_ratio``) and extracted to a
temporary folder; an archive the repack would refuse is refused here, with the reason (exit 2).
The server answers ``GET /ping`` and ``POST /invocations`` like a SageMaker endpoint; the environment
(``MAX_BATCH_SIZE``, ``MAIN_MODULE_NAME``, ``TORCH_DTYPE``, ``HF_HUB_OFFLINE`` ...) is passed
through as the container would get it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
from pathlib import Path

from hf_towers.cli.toy_model import missing_inference_packages
from hf_towers.serving.artifact import DEFAULT_MAX_RATIO

MAX_RATIO_LIMIT = 10000.0
"""Upper bound of a tower's ``max_decompression_ratio`` (``hf_towers/config/models.py``)."""


def _ratio(value: str) -> float:
    try:
        ratio = float(value)
    except ValueError:
        ratio = float("nan")
    if not 1 < ratio <= MAX_RATIO_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number above 1 and at most {MAX_RATIO_LIMIT:g}; "
            f"use the tower's max_decompression_ratio (default {DEFAULT_MAX_RATIO:g})"
        )
    return ratio


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a vision or text tower locally (GET /ping, POST /invocations)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model_type",
        choices=("vision", "text", "task"),
        required=True,
        help="vision/text: a tower with our inference code; task: a plain model run by the "
        "toolkit's pipeline (needs --hf_task)",
    )
    parser.add_argument(
        "--hf_task",
        help="task models: the pipeline, as the tower's hf_task (e.g. question-answering, "
        "text2text-generation); sets HF_TASK as the container gets it",
    )
    parser.add_argument(
        "--model_dir",
        type=Path,
        required=True,
        help="checkpoint folder (config.json, weights), or the model.tar.gz you will deploy",
    )
    parser.add_argument(
        "--max_decompression_ratio",
        type=_ratio,
        default=DEFAULT_MAX_RATIO,
        help=f"refuse a model.tar.gz that inflates more than this, as the repack does "
        f"(the tower's max_decompression_ratio; default: {DEFAULT_MAX_RATIO:g})",
    )
    parser.add_argument("--port", type=int, default=8080, help="default: 8080 (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (loopback only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the tower, serve until interrupted; returns the exit code."""
    if args.model_type == "task":
        if not args.hf_task:
            print(
                "serve: --model_type task needs --hf_task, the pipeline to run "
                "(e.g. question-answering), as the tower's hf_task",
                file=sys.stderr,
            )
            return 2
        os.environ["HF_TASK"] = args.hf_task
    elif args.hf_task:
        print(
            f"serve: --hf_task is for --model_type task; the {args.model_type} tower runs its "
            "own code: remove --hf_task",
            file=sys.stderr,
        )
        return 2
    model_dir: Path = args.model_dir
    if not (model_dir.is_dir() or (model_dir.is_file() and tarfile.is_tarfile(model_dir))):
        print(
            f"serve: --model_dir {model_dir} is neither a directory nor a tar archive: "
            "pass the checkpoint folder or the model.tar.gz",
            file=sys.stderr,
        )
        return 2
    # Imported here: torch and the toolkit are heavy and not needed by the other commands.
    try:
        from hf_towers.serving.local_server import build_server
    except ModuleNotFoundError as missing:
        return missing_inference_packages("serve", missing)

    try:
        server = build_server(
            model_dir,
            args.model_type,
            host=args.host,
            port=args.port,
            max_ratio=args.max_decompression_ratio,
        )
    except ValueError as error:  # an archive the repack would refuse, with the reason
        print(f"serve: {error}", file=sys.stderr)
        return 2
    print(
        f"Serving the {args.model_type} tower of {model_dir} on {server.url} "
        "(GET /ping, POST /invocations); Ctrl-C stops.",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
