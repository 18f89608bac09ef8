"""Vision tower of a dual encoder, served by the SageMaker Hugging Face inference container.

This folder is the model artifact's ``code/`` directory as it is: the container puts it on
``sys.path``, imports this module and calls ``model_fn`` once, then ``input_fn``, ``predict_fn``
and ``output_fn`` per request. It needs nothing the container lacks (torch, transformers, Pillow,
numpy and the toolkit are there), and nothing outside this folder.

Requests (``Content-Type``)
    ``image/jpeg``, ``image/png``, ``image/webp``: one image, raw bytes.
    ``application/json``: ``{"inputs": "<base64>"}`` or ``{"inputs": ["<base64>", ...]}``.
Responses (``Accept``)
    ``application/json`` (default): ``{"embeddings": [[...], ...]}``, one L2-normalised row
    per image, in request order.
    ``application/x-npy``: the same rows as one float32 array of shape ``(n, dim)``.

Environment
    ``MAX_BATCH_SIZE``: most images one request may carry; they share one forward pass (32).
    ``MAX_IMAGE_PIXELS``: largest image accepted, width x height, checked before decoding, and
    largest size its shortest-edge resize may reach (64000000; Pillow refuses more than ~179 M
    itself). A request decodes all its images at once: Pillow holds RGB in 4 bytes a pixel, so
    at most MAX_BATCH_SIZE x this x 4 bytes.
    ``MAIN_MODULE_NAME``: a module importable from ``code/`` that replaces the default CLIP tower
    by defining ``load_vision_tower(model_dir, device, dtype)`` (returns any model object) and
    ``embed_images(model, images)`` (a list of RGB ``PIL.Image.Image`` in, an ``(n, dim)``
    tensor out; no normalisation needed). Unset: this module's CLIP implementation.
    ``TORCH_DTYPE``: ``auto`` (float16 on GPU, float32 on CPU), ``float32``, ``float16`` or
    ``bfloat16``; set ``float32`` for a model that is not stable in half precision.

A bad request raises ``BadRequest``; the toolkit's ``handle`` answers every exception from these
functions with HTTP 400 and ``str(exception)`` as the message, and the worker keeps serving.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import io
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from sagemaker_huggingface_inference_toolkit.content_types import UTF8_TYPES
from sagemaker_huggingface_inference_toolkit.decoder_encoder import encode
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

JSON, NPY = "application/json", "application/x-npy"
IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
MAX_BATCH_SIZE = int(os.environ.get("MAX_BATCH_SIZE", "32"))
if MAX_BATCH_SIZE < 1:
    raise ValueError(f"MAX_BATCH_SIZE must be at least 1, not {MAX_BATCH_SIZE}")
# A small file can declare a huge image (a decompression bomb); 32 of them would take the worker's
# memory. The size is read from the header, before anything is decoded.
MAX_IMAGE_PIXELS = int(os.environ.get("MAX_IMAGE_PIXELS", "64000000"))
if MAX_IMAGE_PIXELS < 1:
    raise ValueError(f"MAX_IMAGE_PIXELS must be at least 1, not {MAX_IMAGE_PIXELS}")


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


@dataclass(frozen=True)
class Tower:
    """What ``model_fn`` hands the other handlers: the loaded model and how to run it."""

    model: Any
    embed: Callable[[Any, list[Image.Image]], torch.Tensor]


def check_resized_size(images: list[Image.Image], edge: int) -> None:
    """Refuse an image that resizing its shortest edge to ``edge`` would blow up.

    A thin image is small, but its resized copy is not: 1 x 5000 pixels becomes 224 x 1120000.
    Its resized size is held to ``MAX_IMAGE_PIXELS`` too.
    """
    for index, image in enumerate(images):
        short, long = sorted(image.size)
        resized = edge * int(edge * long / short)
        if resized > MAX_IMAGE_PIXELS:
            raise BadRequest(
                f"image {index} ({image.size[0]} x {image.size[1]}) would be resized to {resized} "
                f"pixels, more than MAX_IMAGE_PIXELS ({MAX_IMAGE_PIXELS}): send an image closer "
                "to square"
            )


class ClipPixels:
    """``CLIPImageProcessor``'s ``pixel_values``, the same tensor to the bit, for less CPU.

    Per image only what the processor does with Pillow: resize the shortest edge (its resample
    filter) and crop the centre. Rescaling and normalising then run once for the whole batch in
    torch, on the model's device, with the processor's arithmetic (float64 rescale, float32
    normalisation). The processor's per-image numpy passes and checks are skipped, and a GPU
    receives uint8 crops, not float32 arrays four times their size.
    """

    def __init__(self, processor: Any, device: torch.device) -> None:
        self.edge = int(processor.size["shortest_edge"])
        self.crop = (int(processor.crop_size["height"]), int(processor.crop_size["width"]))
        self.resample = Image.Resampling(int(processor.resample))
        self.scale = float(processor.rescale_factor)
        # transformers rescales in float64 and rounds to float32. For CLIP's 1/255 a float32
        # division by 255 gives the same 256 values, at half the cost; check, don't assume.
        levels = np.arange(256)
        divisor = np.float32(1 / self.scale)
        exact = np.array_equal(
            (levels * self.scale).astype(np.float32), levels.astype(np.float32) / divisor
        )
        self.divisor = torch.tensor(divisor, device=device) if exact else None
        self.mean = torch.tensor(processor.image_mean, dtype=torch.float32, device=device)
        self.std = torch.tensor(processor.image_std, dtype=torch.float32, device=device)
        self.device = device

    @staticmethod
    def reproduces(processor: object) -> bool:
        """Whether ``processor`` is a plain CLIP processor with the settings reproduced here."""
        if type(processor) is not CLIPImageProcessor:
            return False
        p: Any = processor
        steps = (p.do_resize, p.do_center_crop, p.do_rescale, p.do_normalize)
        return (
            all(steps)
            and set(p.size) == {"shortest_edge"}
            and max(p.crop_size["height"], p.crop_size["width"]) <= p.size["shortest_edge"]
            and len(p.image_mean) == len(p.image_std) == 3
        )

    def _resized_crop(self, image: Image.Image) -> np.ndarray[Any, Any]:
        width, height = image.size
        short, long = sorted((width, height))
        size = (self.edge, int(self.edge * long / short))  # (short, long), as transformers does
        width, height = size if width <= height else size[::-1]
        resized = np.asarray(image.resize((width, height), self.resample, reducing_gap=None))
        top, left = (height - self.crop[0]) // 2, (width - self.crop[1]) // 2
        # A copy, so that the resized image is freed now, not when the batch is stacked.
        return resized[top : top + self.crop[0], left : left + self.crop[1]].copy()

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        check_resized_size(images, self.edge)
        crops = torch.from_numpy(np.stack([self._resized_crop(image) for image in images]))
        crops = crops.to(self.device)
        if self.divisor is not None:
            batch = crops.to(torch.float32).div_(self.divisor)
        else:
            batch = crops.to(torch.float64).mul_(self.scale).to(torch.float32)
        return batch.sub_(self.mean).div_(self.std).permute(0, 3, 1, 2).contiguous()


def load_vision_tower(model_dir: str, device: torch.device, dtype: torch.dtype) -> Any:
    """Default tower: CLIP's vision transformer and visual projection, read from safetensors.

    A full ``CLIPModel`` checkpoint works as it is; the text tower's weights are never kept.
    Returns the model and the function that turns images into its ``pixel_values``: ``ClipPixels``
    for a plain CLIP image processor, else the saved processor itself.
    """
    _require_safetensors(model_dir)
    # The processor's settings are checked before the weights are read: a bad limit fails fast.
    processor = CLIPImageProcessor.from_pretrained(model_dir)
    edge = int(processor.size.get("shortest_edge", 0))  # 0: a fixed height x width resize
    if edge * edge > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"MAX_IMAGE_PIXELS ({MAX_IMAGE_PIXELS}) is below the model's resized image "
            f"({edge} x {edge} = {edge * edge} pixels): every image would be refused; raise it"
        )
    if ClipPixels.reproduces(processor):
        pixels: Callable[[list[Image.Image]], torch.Tensor] = ClipPixels(processor, device)
    else:

        def pixels(images: list[Image.Image]) -> torch.Tensor:
            if edge:
                check_resized_size(images, edge)
            values: torch.Tensor = processor(images=images, return_tensors="pt")["pixel_values"]
            return values

    model = CLIPVisionModelWithProjection.from_pretrained(
        model_dir, torch_dtype=dtype, use_safetensors=True
    )
    return model.to(device).eval(), pixels


def embed_images(model: Any, images: list[Image.Image]) -> torch.Tensor:
    """Image embeddings of the default CLIP tower, one forward pass for the whole list."""
    clip, pixels = model
    values = pixels(images).to(clip.device, clip.dtype)
    image_embeds: torch.Tensor = clip(pixel_values=values).image_embeds
    return image_embeds


def model_fn(model_dir: str) -> Tower:
    """Load the tower once per worker, on the GPU in half precision when there is one."""
    name = os.environ.get("MAIN_MODULE_NAME", "").strip().removesuffix(".py")
    module = importlib.import_module(name) if name else sys.modules[__name__]
    load, embed = getattr(module, "load_vision_tower", None), getattr(module, "embed_images", None)
    if not (callable(load) and callable(embed)):
        raise TypeError(f"{module.__name__} must define load_vision_tower() and embed_images()")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    dtypes["auto"] = dtypes["float16" if device.type == "cuda" else "float32"]
    wanted = os.environ.get("TORCH_DTYPE", "auto")
    if wanted not in dtypes:
        raise ValueError(f"TORCH_DTYPE must be auto, float32, float16 or bfloat16, not {wanted}")
    return Tower(load(model_dir, device, dtypes[wanted]), embed)


def _image(data: bytes, where: str) -> Image.Image:
    if not data:
        raise BadRequest(f"{where} is empty")
    try:
        with Image.open(io.BytesIO(data), formats=tuple(IMAGE_TYPES.values())) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise BadRequest(
                    f"{where} is {width} x {height} = {width * height} pixels, more than "
                    f"MAX_IMAGE_PIXELS ({MAX_IMAGE_PIXELS}): send a smaller image"
                )
            rgb: Image.Image = image.convert("RGB")
            return rgb
    except BadRequest:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own limit, above ~179 M pixels
        raise BadRequest(
            f"{where} is too large to decode ({error}): send a smaller image"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        detail = "" if isinstance(error, UnidentifiedImageError) else f" ({error})"
        raise BadRequest(f"{where} is not a decodable JPEG, PNG or WebP image{detail}") from error


def _decode_base64(item: object, where: str) -> Image.Image:
    if not isinstance(item, str):
        raise BadRequest(f"{where} must be a base64 string, not {type(item).__name__}")
    try:
        return _image(base64.b64decode(item, validate=True), where)
    except binascii.Error as error:
        raise BadRequest(f"{where} is not valid base64: {error}") from error


def input_fn(input_data: str | bytes | bytearray, content_type: str | None) -> list[Image.Image]:
    """Decode the request into RGB images (at most ``MAX_BATCH_SIZE``)."""
    body = input_data.encode() if isinstance(input_data, str) else bytes(input_data)
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in IMAGE_TYPES:
        return [_image(body, "the request body")]
    if media_type != JSON:
        allowed = ", ".join([*IMAGE_TYPES, JSON])
        raise BadRequest(f"unsupported Content-Type {content_type!r}: send one of {allowed}")
    try:
        inputs = json.loads(body)["inputs"]
    except (ValueError, TypeError, KeyError) as error:  # JSONDecodeError is a ValueError
        raise BadRequest(f'malformed JSON, expected {{"inputs": ...}}: {error!r}') from error
    items = inputs if isinstance(inputs, list) else [inputs]
    if not 0 < len(items) <= MAX_BATCH_SIZE:
        raise BadRequest(f"a request carries 1 to {MAX_BATCH_SIZE} images, not {len(items)}")
    return [_decode_base64(item, f"inputs[{index}]") for index, item in enumerate(items)]


def predict_fn(images: list[Image.Image], tower: Tower) -> dict[str, np.ndarray[Any, Any]]:
    """Embed every image in one forward pass; rows come back float32 and L2-normalised."""
    with torch.inference_mode():
        vectors = tower.embed(tower.model, images).float()
    if vectors.ndim != 2 or vectors.shape[0] != len(images):
        raise RuntimeError(
            f"embed_images returned shape {tuple(vectors.shape)} for {len(images)} image(s): "
            "it must return one row per image, (n, dim)"
        )
    rows = torch.nn.functional.normalize(vectors, dim=-1).cpu().numpy()
    return {"embeddings": rows + np.float32(0.0)}  # -0.0 -> 0.0: JSON and NPY agree bit for bit


def output_fn(prediction: dict[str, Any], accept: str) -> bytes | str:
    """Serialise per ``Accept``: JSON (the default) or NPY of the embeddings alone."""
    for media_type in (part.split(";")[0].strip().lower() for part in accept.split(",")):
        if media_type == NPY:
            array: bytes = encode(prediction["embeddings"], NPY)
            return array
        if media_type in (JSON, "*/*", "application/*"):
            return '{"embeddings":' + json_rows(prediction["embeddings"]) + "}"
    raise BadRequest(f"unsupported Accept {accept!r}: this endpoint answers {JSON} or {NPY}")
