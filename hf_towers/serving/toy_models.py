"""Build small Hugging Face checkpoints locally, without a hub download.

Used by the tests, the inference benchmark and local smoke tests of ``serve``: a CLIP-style dual
encoder (``CLIPModel`` layout, byte-level BPE tokenizer, image processor), a DistilBERT
question-answering model with a WordPiece tokenizer and a Flan-T5-style text-to-text model. Weights are random (seeded) and saved as
safetensors, so the files look exactly like a fine-tuned checkpoint would.

Needs the inference requirements (``requirements-inference.txt``), not the CDK runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers.models.clip.tokenization_clip import bytes_to_unicode

# transformers' annotations are partial (untyped constructors, names not re-exported).
hf: Any = transformers

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"


@dataclass(frozen=True)
class ClipSize:
    """Dimensions of a generated CLIP checkpoint."""

    projection_dim: int
    text_hidden: int
    text_layers: int
    text_heads: int
    max_positions: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    image_size: int
    patch_size: int


# Seconds to build, milliseconds to run: for tests.
TINY = ClipSize(16, 32, 2, 2, 16, 32, 2, 2, 32, 8)
# Big enough that a forward pass dominates per-request costs the way it does for real models.
SMALL = ClipSize(256, 256, 6, 4, 77, 384, 6, 6, 224, 32)
# The dimensions of openai/clip-vit-base-patch32, the smallest CLIP users fine-tune (151 M).
BASE = ClipSize(512, 512, 12, 8, 77, 768, 12, 12, 224, 32)
SIZES = {"small": SMALL, "base": BASE}


def _write_clip_tokenizer(path: Path) -> dict[str, int]:
    """A byte-level BPE vocabulary (every byte, with and without end-of-word) and no merges."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [f"{s}</w>" for s in symbols] + [BOS, EOS]
    vocab = {token: index for index, token in enumerate(tokens)}
    (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (path / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return vocab


def build_clip(path: Path, size: ClipSize = TINY, seed: int = 0) -> Any:
    """Save a ``CLIPModel`` checkpoint with its tokenizer and image processor into ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = _write_clip_tokenizer(path)
    slow = hf.CLIPTokenizer(
        str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=size.max_positions
    )
    slow.save_pretrained(path)
    # Converting once here writes tokenizer.json, so the endpoint loads the fast tokenizer directly.
    hf.CLIPTokenizerFast.from_pretrained(path).save_pretrained(path)
    hf.CLIPImageProcessor(
        size={"shortest_edge": size.image_size},
        crop_size={"height": size.image_size, "width": size.image_size},
    ).save_pretrained(path)
    ids = {"bos_token_id": vocab[BOS], "eos_token_id": vocab[EOS], "pad_token_id": vocab[EOS]}
    config = hf.CLIPConfig(
        projection_dim=size.projection_dim,
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": size.text_hidden,
            "intermediate_size": size.text_hidden * 4,
            "num_hidden_layers": size.text_layers,
            "num_attention_heads": size.text_heads,
            "max_position_embeddings": size.max_positions,
            # Without it the sub-config keeps 512 and the tower's own projection mismatches.
            "projection_dim": size.projection_dim,
            **ids,
        },
        vision_config={
            "hidden_size": size.vision_hidden,
            "intermediate_size": size.vision_hidden * 4,
            "num_hidden_layers": size.vision_layers,
            "num_attention_heads": size.vision_heads,
            "image_size": size.image_size,
            "patch_size": size.patch_size,
            "projection_dim": size.projection_dim,
        },
    )
    torch.manual_seed(seed)
    model = hf.CLIPModel(config).eval()
    model.save_pretrained(path, safe_serialization=True)
    return model


QA_WORDS = (
    "the",
    "a",
    "is",
    "of",
    "in",
    "to",
    "and",
    "what",
    "where",
    "who",
    "when",
    "which",
    "paris",
    "france",
    "capital",
    "city",
    "london",
    "england",
    "river",
    "seine",
    "thames",
    "bridge",
    "museum",
    "louvre",
    "tower",
    "eiffel",
    "built",
    "year",
    "people",
    "live",
    "many",
)


def build_distilbert_qa(path: Path, seed: int = 0) -> None:
    """Save a small ``DistilBertForQuestionAnswering`` with a lower-case WordPiece tokenizer."""
    path.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = list(dict.fromkeys([*specials, *QA_WORDS, *"abcdefghijklmnopqrstuvwxyz0123456789.,?!"]))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    hf.DistilBertTokenizerFast(str(path / "vocab.txt"), do_lower_case=True).save_pretrained(path)
    config = hf.DistilBertConfig(
        vocab_size=len(vocab), dim=32, hidden_dim=64, n_layers=2, n_heads=2
    )
    torch.manual_seed(seed)
    hf.DistilBertForQuestionAnswering(config).save_pretrained(path, safe_serialization=True)


T5_WORDS = (
    "translate",
    "english",
    "to",
    "german",
    ":",
    "the",
    "house",
    "is",
    "small",
    "das",
    "haus",
)


def build_t5(path: Path, seed: int = 0) -> None:
    """Save a small ``T5ForConditionalGeneration`` (Flan-T5 layout) with a word-level tokenizer.

    The tokenizer is a ``tokenizers`` word-level model with T5's special tokens (pad 0, eos 1,
    unk 2), saved as ``tokenizer.json`` so ``AutoTokenizer`` loads it without SentencePiece.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    path.mkdir(parents=True, exist_ok=True)
    # T5's special tokens, in T5's id order (as kwargs: *_token="<...>" reads like a secret).
    specials = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    vocab = {token: index for index, token in enumerate([*specials.values(), *T5_WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, specials["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    hf.PreTrainedTokenizerFast(tokenizer_object=tokenizer, **specials).save_pretrained(path)
    config = hf.T5Config(
        vocab_size=len(vocab),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",  # Flan-T5's feed-forward
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(seed)
    hf.T5ForConditionalGeneration(config).save_pretrained(path, safe_serialization=True)
