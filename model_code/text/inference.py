"""Text tower of a dual encoder, served by the SageMaker Hugging Face inference container.

This folder is the model artifact's ``code/`` directory as it is: the container puts it on
``sys.path``, imports this module and calls ``model_fn`` once, then ``input_fn``, ``predict_fn``
and ``output_fn`` per request. It needs nothing the container lacks (torch, transformers, numpy
and the toolkit are there), and nothing outside this folder.

Requests (``Content-Type``)
    ``application/json``: ``{"inputs": "a query"}`` or ``{"inputs": ["a query", ...]}``.
    ``text/plain``: one text, UTF-8.
Responses (``Accept``)
    ``application/json`` (default): ``{"embeddings": [[...], ...], "truncated": [false, ...]}``,
    one L2-normalised row per text in request order; ``truncated[i]`` is true when text ``i``
    was longer than the model's window and only its beginning was embedded.
    ``application/x-npy``: the rows as one float32 array of shape ``(n, dim)`` (no flags).

Environment
    ``MAX_BATCH_SIZE``: most texts one request may carry; they share one forward pass (32).
    ``MAIN_MODULE_NAME``: a module importable from ``code/`` that replaces the default CLIP tower
    by defining ``load_text_tower(model_dir, device, dtype)`` (returns any model object) and
    ``embed_texts(model, texts)`` (a list of non-empty ``str`` in; out an ``(n, dim)`` tensor and
    a list of n bools, true where a text was truncated; no normalisation needed). Unset: this
    module's CLIP implementation.
    ``TORCH_DTYPE``: ``auto`` (float16 on GPU, float32 on CPU), ``float32``, ``float16`` or
    ``bfloat16``; set ``float32`` for a model that is not stable in half precision.

A bad request raises ``BadRequest``; the toolkit's ``handle`` answers every exception from these
functions with HTTP 400 and ``str(exception)`` as the message, and the worker keeps serving.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from sagemaker_huggingface_inference_toolkit.content_types import UTF8_TYPES
from sagemaker_huggingface_inference_toolkit.decoder_encoder import encode
from transformers import CLIPTextModelWithProjection
from transformers.models.auto.tokenization_auto import AutoTokenizer

MAX_BATCH_SIZE = int(os.environ.get("MAX_BATCH_SIZE", "32"))
if MAX_BATCH_SIZE < 1:
    raise ValueError(f"MAX_BATCH_SIZE must be at least 1, not {MAX_BATCH_SIZE}")
ANSWERS = {"application/json": "json", "*/*": "json", "application/*": "json"}
ANSWERS["application/x-npy"] = "npy"

Embedder = Callable[[Any, list[str]], tuple[torch.Tensor, Sequence[bool]]]


# --- shared skeleton: identical in model_code/vision and model_code/text (tests/model_code) ---


class BadRequest(ValueError):
    """The request is at fault: answered with HTTP 400 and this message."""


def _require_safetensors(model_dir: str) -> None:
    """Weights are read from safetensors only: a pickled ``.bin`` can run code when loaded."""
    if not any(Path(model_dir).glob("*.safetensors")):
        found = sorted(path.name for path in Path(model_dir).iterdir())
        raise FileNotFoundError(
            f"{model_dir} has no *.safetensors weights (it has {found}): save the checkpoint "
            "with save_pretrained(dir, safe_serialization=True) and package it again"
        )


def json_rows(rows: np.ndarray[Any, Any]) -> str:
    """An ``(n, dim)`` float32 array as a JSON array of rows, in one format call per row.

    Nine significant digits give back the exact float32 on parsing; ``json.dumps`` of the
    rows would print each as a 17-digit float64, about 3x slower and half again as long.
    """
    if not np.isfinite(rows).all():
        raise RuntimeError("the model returned non-finite embeddings; try TORCH_DTYPE=float32")
    row = "[" + ",".join(["%.9g"] * rows.shape[1]) + "]"
    return "[" + ",".join(row % tuple(values) for values in rows.tolist()) + "]"


class Answer(NamedTuple):
    """One request's answer in a batch: HTTP status, body and its content type."""

    status: int
    body: bytes | str
    content_type: str


def _error_answer(error: Exception) -> Answer:
    # The status and body the toolkit's handle() gets from MMS for any exception of this code.
    body = {"code": 400, "type": "InternalServerException", "message": str(error)}
    return Answer(400, json.dumps(body), "application/json")


CONTENT_TYPE = re.compile("^[Cc]ontent-?[Tt]ype")


def _headers(properties: dict[str, Any]) -> tuple[str | None, str]:
    """(Content-Type, Accept) of one request as the toolkit reads them: any spelling of the
    content type header; no Accept or ``*/*`` means JSON."""
    # sagemaker_inference.utils.retrieve_content_type_header: the first key matching this.
    found = (value for key, value in properties.items() if CONTENT_TYPE.match(key))
    content_type = next(found, None)
    accept = properties.get("Accept") or properties.get("accept")
    return content_type, "application/json" if not accept or accept == "*/*" else str(accept)


def transform_batch(tower: Any, requests: Sequence[tuple[Any, str | None, str]]) -> list[Answer]:
    """Answer several clients' requests, ``(body, content_type, accept)`` each, in as few
    forward passes as ``MAX_BATCH_SIZE`` items allow; answers in request order.

    Each request is decoded and encoded alone, so a bad one gets its own 400 and the others
    their embeddings. Requests are packed greedily, in order, into passes of at most
    ``MAX_BATCH_SIZE`` items (a request has at most that many), so at most one pass's items and
    the next request's are decoded at once. A pass that fails is rerun request by request, so
    its error reaches only the request that causes it.
    """
    answers: list[Answer | None] = [None] * len(requests)
    group: list[tuple[int, list[Any]]] = []

    def run(members: list[tuple[int, list[Any]]]) -> None:
        items = [item for _, decoded in members for item in decoded]
        try:
            prediction = predict_fn(items, tower)
        except Exception as error:
            if len(members) > 1:
                for member in members:
                    run([member])
                return
            answers[members[0][0]] = _error_answer(error)
            return
        start = 0
        for index, decoded in members:
            part = {key: value[start : start + len(decoded)] for key, value in prediction.items()}
            start += len(decoded)
            accept = requests[index][2]
            try:
                answers[index] = Answer(200, output_fn(part, accept), accept)
            except Exception as error:
                answers[index] = _error_answer(error)

    for index, (body, content_type, _) in enumerate(requests):
        try:
            if content_type in UTF8_TYPES and isinstance(body, bytes | bytearray):
                body = bytes(body).decode("utf-8")
            decoded = input_fn(body, content_type)
        except Exception as error:
            answers[index] = _error_answer(error)
            continue
        if sum(len(items) for _, items in group) + len(decoded) > MAX_BATCH_SIZE:
            run(group)
            group = []
        group.append((index, decoded))
    if group:
        run(group)
    return [answer for answer in answers if answer is not None]


_LOADED: dict[str, Any] = {}


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[bytes | str] | None:
    """Model-server entry point (``inference:handle``) that answers a whole batch at once.

    Multi-model-server hands a worker up to its model's ``batch_size`` requests queued within
    ``max_batch_delay`` ms; the toolkit's own ``handle`` answers only the first. This one
    answers each in place: its body in the list, its status and content type on ``context``
    (per request, as ``mms.protocol.otf_message_handler.create_predict_response`` sends them).
    Called with ``data=None`` once at load: loads the tower (``model_fn``), as MMS expects.
    """
    if "tower" not in _LOADED:
        model_dir = context.system_properties["model_dir"]
        code_dir = Path(model_dir) / "code"  # where MAIN_MODULE_NAME is imported from
        if code_dir.is_dir() and str(code_dir) not in sys.path:
            sys.path.insert(0, str(code_dir))
        _LOADED["tower"] = model_fn(model_dir)
    if data is None:
        return None
    requests = []
    for index in range(len(data)):
        body = data[index].get("body") or data[index].get("data") or b""
        requests.append((body, *_headers(context.get_all_request_header(index))))
    answers = transform_batch(_LOADED["tower"], requests)
    for index, answer in enumerate(answers):
        context.set_response_content_type(index, answer.content_type)
        context.set_response_status(answer.status, "", index)
    return [answer.body for answer in answers]


# --- end of the shared skeleton ---


class Tower(NamedTuple):
    """What ``model_fn`` hands the other handlers: the loaded model and how to run it."""

    model: Any
    embed: Embedder


def load_text_tower(model_dir: str, device: torch.device, dtype: torch.dtype) -> Any:
    """Default tower: CLIP's text transformer and text projection, read from safetensors.

    A full ``CLIPModel`` checkpoint works as it is; the vision tower's weights are never kept.
    The window is the shorter of the position table and the tokenizer's ``model_max_length``.
    """
    _require_safetensors(model_dir)
    clip = CLIPTextModelWithProjection.from_pretrained(
        model_dir, torch_dtype=dtype, use_safetensors=True
    ).to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    window = min(clip.config.max_position_embeddings, tokenizer.model_max_length)
    return clip.eval(), tokenizer, window


def embed_texts(model: Any, texts: list[str]) -> tuple[torch.Tensor, list[bool]]:
    """Text embeddings of the default CLIP tower (one padded batch) and the truncation flags."""
    clip, tokenizer, window = model
    # A byte-level BPE token covers at least one byte of the text and a SentencePiece word at
    # most adds one marker token per character, so a text of at most (window - 2) / 2 UTF-8
    # bytes (room for the start/end tokens) cannot be truncated: only longer texts are counted
    # by a second tokenizer call, which keeps short queries on one call.
    long = [i for i, text in enumerate(texts) if 2 * len(text.encode("utf-8")) > window - 2]
    truncated = [False] * len(texts)
    if long:
        counted = tokenizer([texts[i] for i in long], verbose=False)["input_ids"]
        for i, ids in zip(long, counted, strict=True):
            truncated[i] = len(ids) > window
    batch = tokenizer(texts, padding=True, truncation=True, max_length=window, return_tensors="pt")
    text_embeds: torch.Tensor = clip(**batch.to(clip.device)).text_embeds
    return text_embeds, truncated


def model_fn(model_dir: str) -> Tower:
    """Load the tower once per worker, on the GPU (half precision unless told) or the CPU."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    wanted = os.environ.get("TORCH_DTYPE", "auto")
    if wanted == "auto":
        wanted = "float16" if device.type == "cuda" else "float32"
    if wanted not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"TORCH_DTYPE must be auto, float32, float16 or bfloat16, not {wanted}")
    name = os.environ.get("MAIN_MODULE_NAME", "").strip().removesuffix(".py")
    module = importlib.import_module(name) if name else sys.modules[__name__]
    if not callable(getattr(module, "load_text_tower", None)) or not callable(
        getattr(module, "embed_texts", None)
    ):
        raise TypeError(f"{module.__name__} must define load_text_tower() and embed_texts()")
    model = module.load_text_tower(model_dir, device, getattr(torch, wanted))
    return Tower(model, module.embed_texts)


def _texts(request: Any) -> list[str]:
    """``{"inputs": str | [str, ...]}`` -> the texts, checked."""
    inputs = request.get("inputs") if isinstance(request, dict) else None
    if inputs is None:
        raise BadRequest('expected a JSON object {"inputs": <text or list of texts>}')
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or any(not isinstance(text, str) for text in texts):
        raise BadRequest('"inputs" must be a string or a list of strings')
    return texts


def input_fn(input_data: str | bytes | bytearray, content_type: str | None) -> list[str]:
    """Decode the request into texts (between 1 and ``MAX_BATCH_SIZE``, none blank)."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type not in ("application/json", "text/plain"):
        raise BadRequest(
            f"unsupported Content-Type {content_type!r}: send application/json or text/plain"
        )
    try:
        body = input_data if isinstance(input_data, str) else bytes(input_data).decode("utf-8")
        texts = [body] if media_type == "text/plain" else _texts(json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"the body is not valid {media_type}: {error}") from error
    if len(texts) > MAX_BATCH_SIZE or not texts:
        raise BadRequest(f"a request carries 1 to {MAX_BATCH_SIZE} texts, not {len(texts)}")
    blank = [index for index, text in enumerate(texts) if not text.strip()]
    if blank:
        raise BadRequest(f"empty text at position(s) {blank}")
    return texts


def predict_fn(texts: list[str], tower: Tower) -> dict[str, Any]:
    """Embed every text in one forward pass; rows come back float32 and L2-normalised."""
    with torch.inference_mode():
        vectors, truncated = tower.embed(tower.model, texts)
        if vectors.ndim != 2 or len(vectors) != len(texts) or len(truncated) != len(texts):
            raise RuntimeError(
                f"embed_texts returned shape {tuple(vectors.shape)} and {len(truncated)} flag(s) "
                f"for {len(texts)} text(s): it must return (n, dim) rows and n flags"
            )
        rows = torch.nn.functional.normalize(vectors.float(), dim=-1).cpu().numpy()
    rows = rows + np.float32(0.0)  # -0.0 -> 0.0: JSON and NPY agree bit for bit
    return {"embeddings": rows, "truncated": [bool(flag) for flag in truncated]}


def output_fn(prediction: dict[str, Any], accept: str) -> bytes | str:
    """Serialise per ``Accept``: JSON (the default, with the flags) or NPY of the rows alone."""
    kinds = [ANSWERS.get(part.split(";")[0].strip().lower()) for part in accept.split(",")]
    kind = next((kind for kind in kinds if kind), None)
    if kind is None:
        wanted = "application/json or application/x-npy"
        raise BadRequest(f"unsupported Accept {accept!r}: ask for {wanted}")
    if kind == "npy":
        array: bytes = encode(prediction["embeddings"], "application/x-npy")
        return array
    flags = json.dumps(prediction["truncated"])
    return '{"embeddings":' + json_rows(prediction["embeddings"]) + ',"truncated":' + flags + "}"
