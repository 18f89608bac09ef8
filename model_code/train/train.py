"""Fine-tune a CLIP dual encoder contrastively on image-text pairs (SageMaker training job).

The SageMaker training contract (the Hugging Face training image runs ``python train.py
--<hyperparameter> <value> ...`` in this folder):

    SM_CHANNEL_TRAIN        folder of the training pairs (``pairs.jsonl`` + images; clip_train.py)
    SM_CHANNEL_VALIDATION   the held-out pairs (optional): recall@k is logged after training
    SM_CHANNEL_MODEL        the base checkpoint (a ``model.tar.gz`` or a folder); or --base_model
    SM_MODEL_DIR            where the fine-tuned model is written; SageMaker tars it into the
                            job's ``model.tar.gz``, the layout the vision and text towers serve

Hyperparameters: ``--epochs`` (3), ``--learning_rate`` (1e-5), ``--batch_size`` (32),
``--weight_decay`` (0.1), ``--seed`` (0), ``--base_model`` (a Hub id, used when no model
channel is given). Both towers train; the temperature (CLIP's ``logit_scale``) is learned and
clamped to 100 as in CLIP. Log lines ``epoch=<n> train_loss=<x>`` and
``validation_recall_at_1=<x>`` are the job's metric definitions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from model_code.train import clip_train
else:  # the job runs this file from its own folder, which is on sys.path
    import clip_train


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning_rate", type=float, default=1e-5)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--weight_decay", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base_model", default=env("SM_CHANNEL_MODEL"))
    parser.add_argument("--train", default=env("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=env("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--model_dir", default=env("SM_MODEL_DIR", "/opt/ml/model"))
    args = parser.parse_args(argv)
    for name in ("base_model", "train"):
        if not getattr(args, name):
            parser.error(f"--{name} is required (or its SageMaker channel, SM_CHANNEL_*)")
    if args.epochs < 1 or args.batch_size < 2 or args.learning_rate <= 0:
        parser.error(
            "--epochs must be >= 1, --batch_size >= 2 (a batch is its own negatives) and "
            "--learning_rate > 0"
        )
    return args


def fine_tune(args: argparse.Namespace) -> dict[str, object]:
    """Train, save to ``args.model_dir`` and return a summary (losses, validation recall)."""
    clip_train.seed_everything(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pairs = clip_train.read_pairs(args.train)
    validation = clip_train.read_pairs(args.validation) if args.validation else None
    model, tokenizer, processor, window = clip_train.load_clip(args.base_model, device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay
    )
    generator = torch.Generator().manual_seed(args.seed)
    losses: list[float] = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(pairs), generator=generator).tolist()
        total, batches = 0.0, 0
        for start in range(0, len(order), args.batch_size):
            batch = [pairs[i] for i in order[start : start + args.batch_size]]
            if len(batch) < 2:  # a batch of one has no negatives
                continue
            inputs = clip_train.batch_inputs(batch, tokenizer, processor, window, device)
            logits = model(**inputs).logits_per_image
            loss = clip_train.contrastive_loss(logits, clip_train.positives(batch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, clip_train.MAX_LOGIT_SCALE)
            total, batches = total + loss.item(), batches + 1
        losses.append(total / max(batches, 1))
        print(f"epoch={epoch} train_loss={losses[-1]:.6f}", flush=True)
    summary: dict[str, object] = {"train_pairs": len(pairs), "losses": losses}
    if validation is not None:
        result = clip_train.evaluate_model(
            model, tokenizer, processor, window, validation, args.batch_size
        )
        for name, metric in result["retrieval_metrics"].items():
            print(f"validation_{name}={metric['value']:.6f}", flush=True)
        summary["validation"] = result
    out = Path(args.model_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    processor.save_pretrained(out)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    try:
        summary = fine_tune(parse_args(argv))
    except clip_train.DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
