"""What ``train.py`` and ``evaluate.py`` share: the data format, loading, the loss and recall@k.

This folder is the source directory of the SageMaker training job (``sagemaker_program`` is
``train.py``) and the code of the evaluation processing job (``evaluate.py``); both run in the
Hugging Face PyTorch training image, which has torch, transformers and Pillow. Nothing here
needs the network unless the base model is a Hub id.

Data (one folder per split: a SageMaker channel, i.e. an S3 prefix copied to local disk)
    ``pairs.jsonl``: one JSON object per line, ``{"image": "<path>", "text": "<caption>"}``;
    ``image`` is relative to the folder (JPEG, PNG or WebP, any size), ``text`` is non-empty.
    Blank lines are skipped. The images lie anywhere below the folder.

Model
    A ``CLIPModel`` checkpoint in ``save_pretrained`` layout (config, safetensors weights,
    tokenizer, image processor): a folder, a folder holding ``model.tar.gz`` (a model channel
    or a processing input of a training job's output), or a Hugging Face Hub id. The trained
    model is written in the same layout, which is what ``model_code/vision`` and
    ``model_code/text`` load.
"""

from __future__ import annotations

import json
import math
import random
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

PAIRS_FILE = "pairs.jsonl"
REPORT_FILE = "evaluation.json"
RECALL_KS = (1, 5)
DIRECTIONS = ("image_to_text", "text_to_image")
# CLIP clamps its learnable temperature so that logits are scaled by at most 100.
MAX_LOGIT_SCALE = math.log(100.0)


class DataError(ValueError):
    """The data or the model folder is unusable; the message names the file, line and fix."""


@dataclass(frozen=True)
class Pair:
    """One image and its caption."""

    image: Path
    text: str


def seed_everything(seed: int) -> None:
    """Python, numpy and torch (every device) from one seed."""
    random.seed(seed)
    np.random.seed(seed)  # the legacy global generator, for any library that uses it
    torch.manual_seed(seed)


def read_pairs(folder: str | Path) -> list[Pair]:
    """The pairs of ``<folder>/pairs.jsonl``, every line checked (at least two pairs)."""
    root = Path(folder).resolve()
    source = root / PAIRS_FILE
    if not source.is_file():
        found = sorted(p.name for p in root.iterdir())[:10] if root.is_dir() else "no folder"
        raise DataError(
            f"{source}: no pairs file (found {found}): put a {PAIRS_FILE} with lines like "
            '{"image": "images/0001.png", "text": "a red square"} at the top of the data prefix'
        )
    pairs: list[Pair] = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not JSON ({error.msg}): one object per line") from None
        if not isinstance(item, dict) or set(item) != {"image", "text"}:
            raise DataError(
                f'{where}: expected an object with exactly "image" and "text", got {line[:80]!r}'
            )
        image, text = item["image"], item["text"]
        if not isinstance(image, str) or not isinstance(text, str) or not text.strip():
            raise DataError(f'{where}: "image" must be a path and "text" a non-empty string')
        path = (root / image).resolve()
        if not path.is_relative_to(root):
            raise DataError(
                f"{where}: image {image!r} lies outside {root}: use a relative path below it"
            )
        if not path.is_file():
            raise DataError(f"{where}: image {image!r} does not exist below {root}")
        pairs.append(Pair(path, text.strip()))
    if len(pairs) < 2:
        raise DataError(
            f"{source}: {len(pairs)} pair(s); contrastive training and retrieval need at least 2"
        )
    return pairs


def open_images(pairs: Sequence[Pair]) -> list[Image.Image]:
    """The pairs' images as RGB."""
    images = []
    for pair in pairs:
        with Image.open(pair.image) as image:
            images.append(image.convert("RGB"))
    return images


def model_folder(location: str | Path, work: Path | None = None) -> str:
    """A loadable checkpoint: ``location`` itself, or the one ``.tar.gz`` in it, extracted.

    A string that is not an existing path is returned as it is (a Hub id).
    """
    path = Path(location)
    if not path.exists():
        return str(location)
    if path.is_dir():
        # A channel or processing input of one S3 object holds that object under its own name.
        archives = sorted(path.glob("*.tar.gz"))
        if (path / "config.json").is_file() or len(archives) != 1:
            return str(path)
        archive = archives[0]
    elif path.name.endswith(".tar.gz"):
        archive = path
    else:
        return str(path)
    target = Path(tempfile.mkdtemp(prefix="model-", dir=work))
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")  # no absolute paths, no links out, no devices
    return str(target)


def load_clip(location: str | Path, device: torch.device) -> tuple[Any, Any, Any, int]:
    """``(model, tokenizer, image_processor, text window)`` of a ``CLIPModel`` checkpoint."""
    from transformers import CLIPImageProcessor, CLIPModel
    from transformers.models.auto.tokenization_auto import AutoTokenizer

    folder = model_folder(location)
    model = CLIPModel.from_pretrained(folder).to(device)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    processor = CLIPImageProcessor.from_pretrained(folder)
    window = min(model.config.text_config.max_position_embeddings, tokenizer.model_max_length)
    return model, tokenizer, processor, int(window)


def batch_inputs(
    pairs: Sequence[Pair], tokenizer: Any, processor: Any, window: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Token ids, attention mask and pixel values of ``pairs`` (the towers' preprocessing)."""
    texts = tokenizer(
        [p.text for p in pairs],
        padding=True,
        truncation=True,
        max_length=window,
        return_tensors="pt",
    )
    pixels = processor(images=open_images(pairs), return_tensors="pt")["pixel_values"]
    return {
        "input_ids": texts["input_ids"].to(device),
        "attention_mask": texts["attention_mask"].to(device),
        "pixel_values": pixels.to(device),
    }


def positives(pairs: Sequence[Pair]) -> torch.Tensor:
    """``[i, j]`` true when pair j is a right answer for pair i: same caption or same image."""
    texts = [p.text for p in pairs]
    images = [p.image for p in pairs]
    n = len(pairs)
    return torch.tensor(
        [[texts[i] == texts[j] or images[i] == images[j] for j in range(n)] for i in range(n)]
    )


def contrastive_loss(logits_per_image: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP's loss), with every same-caption pair of a batch a positive.

    ``logits_per_image`` is CLIP's ``exp(logit_scale) * image @ text.T``; each row and column
    is a softmax over the batch whose probability mass on the positives is maximised. With one
    positive per row this is exactly CLIP's cross-entropy on the diagonal.
    """
    mask = positive.to(logits_per_image.device)
    neg_inf = torch.finfo(logits_per_image.dtype).min

    def one_side(logits: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        log_all = torch.logsumexp(logits, dim=1)
        log_pos = torch.logsumexp(logits.masked_fill(~pos, neg_inf), dim=1)
        return (log_all - log_pos).mean()

    return (one_side(logits_per_image, mask) + one_side(logits_per_image.t(), mask.t())) / 2


@torch.no_grad()
def embed_pairs(
    model: Any,
    tokenizer: Any,
    processor: Any,
    window: int,
    pairs: Sequence[Pair],
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised image and text embeddings of ``pairs``, as the towers compute them."""
    model.eval()
    device = next(model.parameters()).device
    images, texts = [], []
    for start in range(0, len(pairs), batch_size):
        inputs = batch_inputs(
            pairs[start : start + batch_size], tokenizer, processor, window, device
        )
        images.append(model.get_image_features(pixel_values=inputs["pixel_values"]))
        texts.append(
            model.get_text_features(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            )
        )
    normalize = torch.nn.functional.normalize
    return normalize(torch.cat(images).float(), dim=-1), normalize(torch.cat(texts).float(), dim=-1)


def recall_at_k(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    positive: torch.Tensor,
    ks: Sequence[int] = RECALL_KS,
) -> dict[str, dict[int, float]]:
    """Share of queries with a right answer among the top k, both ways.

    ``image_to_text``: each image queries every caption; ``text_to_image``: each caption
    queries every image. A right answer is a pair with the same caption or the same image
    (``positives``), so repeated captions do not count as misses. k is capped at the split size.
    """
    similarity = image_embeds @ text_embeds.t()
    result: dict[str, dict[int, float]] = {}
    for direction, scores, pos in (
        ("image_to_text", similarity, positive),
        ("text_to_image", similarity.t(), positive.t()),
    ):
        result[direction] = {}
        for k in ks:
            top = scores.topk(min(k, scores.shape[1]), dim=1).indices
            hits = pos.gather(1, top).any(dim=1)
            result[direction][k] = float(hits.float().mean())
    return result


def metric_name(direction: str, k: int) -> str:
    """``recall_at_<k>`` (mean of both directions) or ``<direction>_recall_at_<k>``."""
    return f"recall_at_{k}" if direction == "mean" else f"{direction}_recall_at_{k}"


def report(recalls: dict[str, dict[int, float]], pairs: int) -> dict[str, Any]:
    """The evaluation report: ``retrieval_metrics.<name>.value`` for every direction and k.

    The shape of SageMaker's model-quality statistics (``{"<metric>": {"value": ...}}``), read
    by the pipeline's ``JsonGet`` (``retrieval_metrics.recall_at_1.value``) and registered as
    the package's ``ModelMetrics.ModelQuality.Statistics``.
    """
    metrics: dict[str, dict[str, float]] = {}
    ks = sorted(next(iter(recalls.values())))
    for k in ks:
        mean = sum(recalls[d][k] for d in DIRECTIONS) / len(DIRECTIONS)
        metrics[metric_name("mean", k)] = {"value": round(mean, 6)}
        for direction in DIRECTIONS:
            metrics[metric_name(direction, k)] = {"value": round(recalls[direction][k], 6)}
    return {"retrieval_metrics": metrics, "pairs": pairs}


def evaluate_model(
    model: Any, tokenizer: Any, processor: Any, window: int, pairs: Sequence[Pair], batch_size: int
) -> dict[str, Any]:
    """The evaluation report of ``model`` on ``pairs``."""
    image_embeds, text_embeds = embed_pairs(model, tokenizer, processor, window, pairs, batch_size)
    return report(recall_at_k(image_embeds, text_embeds, positives(pairs)), len(pairs))
