"""``python main.py toy-model --kind clip --out DIR``: a small random-weight checkpoint to try
``serve`` with, in seconds and without a hub download.

``clip`` writes a CLIP-style dual encoder (both towers, tokenizer, image processor) for
``serve --model_type vision|text``; ``distilbert-qa`` and ``t5`` write the task models the
toolkit's pipelines run (question answering, text-to-text). Weights are seeded random values
saved as safetensors, laid out exactly as ``save_pretrained`` writes a fine-tuned checkpoint: the
answers are meaningless, the request/response contract is the real one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

KINDS = ("clip", "distilbert-qa", "t5")
CLIP_SIZES = ("tiny", "small", "base")
INFERENCE_HINT = (
    "needs the inference requirements (torch, transformers, the SageMaker Hugging Face toolkit): "
    "run `make test` once, or `.venv/bin/python -m pip install -r requirements-inference.txt`"
)


def missing_inference_packages(command: str, missing: ModuleNotFoundError) -> int:
    """Say the one command that installs what ``command`` needs; the exit code 3."""
    print(f"{command}: {INFERENCE_HINT} ({missing.name} is missing)", file=sys.stderr)
    return 3


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``toy-model``."""
    parser = subparsers.add_parser(
        "toy-model",
        help="write a small random-weight checkpoint to try `serve` with",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kind", choices=KINDS, default="clip", help="default: clip")
    parser.add_argument("--out", type=Path, required=True, help="new or empty folder to write")
    parser.add_argument(
        "--size",
        choices=CLIP_SIZES,
        default="tiny",
        help="clip only: tiny (seconds), small, or base (openai/clip-vit-base-patch32's "
        "dimensions, 151 M parameters); default tiny",
    )
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the checkpoint; 2 for a folder that is not empty, 3 without the inference packages."""
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(
            f"toy-model: --out {out} exists and is not an empty folder: pick a new folder "
            "(nothing is overwritten)",
            file=sys.stderr,
        )
        return 2
    try:
        from hf_towers.serving import toy_models
    except ModuleNotFoundError as missing:
        return missing_inference_packages("toy-model", missing)
    out.mkdir(parents=True, exist_ok=True)
    if args.kind == "clip":
        size = toy_models.TINY if args.size == "tiny" else toy_models.SIZES[args.size]
        toy_models.build_clip(out, size, seed=args.seed)
        serve = "serve --model_type vision|text"
    elif args.kind == "distilbert-qa":
        toy_models.build_distilbert_qa(out, seed=args.seed)
        serve = "kind: task with hf_task: question-answering"
    else:
        toy_models.build_t5(out, seed=args.seed)
        serve = "kind: task with hf_task: text2text-generation"
    files = sorted(p.name for p in out.iterdir())
    print(
        f"wrote a random-weight {args.kind} checkpoint to {out} ({', '.join(files)}); use it with {serve}"
    )
    return 0
