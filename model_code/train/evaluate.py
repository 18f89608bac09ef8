"""Retrieval recall@k of a trained dual encoder on the held-out pairs (SageMaker processing job).

Defaults are the processing job's paths (the pipeline's Evaluate step):

    --model       /opt/ml/processing/model        the training job's model.tar.gz (or a folder)
    --validation  /opt/ml/processing/validation   the held-out pairs (pairs.jsonl + images)
    --output      /opt/ml/processing/evaluation   evaluation.json is written here

``evaluation.json`` (clip_train.report)::

    {"retrieval_metrics": {"recall_at_1": {"value": 0.5}, "image_to_text_recall_at_1": {...},
                           "text_to_image_recall_at_1": {...}, "recall_at_5": {...}, ...},
     "pairs": 12}

``recall_at_<k>`` is the mean of both directions. The pipeline's condition reads it with
``JsonGet`` at the path ``retrieval_metrics.<metric>.value``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from model_code.train import clip_train
else:  # the job runs this file from its own folder, which is on sys.path
    import clip_train


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="/opt/ml/processing/model")
    parser.add_argument("--validation", default="/opt/ml/processing/validation")
    parser.add_argument("--output", default="/opt/ml/processing/evaluation")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch_size must be >= 1")
    return args


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Write ``<output>/evaluation.json`` and return it."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pairs = clip_train.read_pairs(args.validation)
    model, tokenizer, processor, window = clip_train.load_clip(args.model, device)
    result = clip_train.evaluate_model(model, tokenizer, processor, window, pairs, args.batch_size)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / clip_train.REPORT_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    try:
        result = evaluate(parse_args(argv))
    except clip_train.DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
