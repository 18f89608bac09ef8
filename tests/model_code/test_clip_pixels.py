"""The vision tower's ClipPixels: CLIPImageProcessor's pixel_values, bit for bit, or the processor."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

from hf_towers.serving.handler_host import HandlerHost

REPO = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
# transformers' annotations are partial (untyped constructors).
hf: Any = transformers


@pytest.fixture(scope="module")
def vision_code() -> Iterator[ModuleType]:
    """model_code/vision/inference.py, imported under a name of its own."""
    spec = importlib.util.spec_from_file_location(
        "vision_code_under_test", REPO / "model_code" / "vision" / "inference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while it executes
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def picture(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


PROCESSORS = {
    "clip-224": hf.CLIPImageProcessor(),  # openai/clip-vit-* settings: edge 224, crop 224
    "tiny-32": hf.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ),
    "crop-smaller": hf.CLIPImageProcessor(
        size={"shortest_edge": 40}, crop_size={"height": 24, "width": 36}
    ),
    # A factor whose float32 division differs from transformers' float64 rescale.
    "odd-rescale": hf.CLIPImageProcessor(rescale_factor=0.003),
}
# Landscape, portrait, square, up-scaled, one pixel off square, odd, very long.
SIZES = [(48, 40), (40, 48), (32, 32), (20, 12), (33, 32), (13, 50), (501, 333), (1000, 30)]


@pytest.mark.parametrize("name", PROCESSORS)
def test_same_tensor_as_the_processor_to_the_bit(vision_code: ModuleType, name: str) -> None:
    processor = PROCESSORS[name]
    assert vision_code.ClipPixels.reproduces(processor)
    images = [picture(w, h, seed) for seed, (w, h) in enumerate(SIZES)]
    expected = processor(images=images, return_tensors="pt")["pixel_values"]
    pixels = vision_code.ClipPixels(processor, CPU)
    assert (pixels.divisor is None) == (name == "odd-rescale")  # both rescale paths are covered
    actual = pixels(images)
    assert actual.dtype == torch.float32
    assert actual.shape == expected.shape
    assert torch.equal(actual, expected)


@pytest.mark.parametrize(
    "settings",
    [
        {"do_center_crop": False},
        {"do_normalize": False},
        {"size": {"height": 32, "width": 32}},
        {"size": {"shortest_edge": 32}, "crop_size": {"height": 40, "width": 40}},  # would pad
        {"image_mean": [0.5], "image_std": [0.5]},
    ],
)
def test_other_settings_are_left_to_the_processor(
    vision_code: ModuleType, settings: dict[str, Any]
) -> None:
    assert not vision_code.ClipPixels.reproduces(hf.CLIPImageProcessor(**settings))


def test_a_processor_subclass_is_left_to_itself(vision_code: ModuleType) -> None:
    custom = type("Custom", (hf.CLIPImageProcessor,), {})
    assert not vision_code.ClipPixels.reproduces(custom())


def test_the_handler_uses_it_for_a_clip_checkpoint(load_tower) -> None:
    host = load_tower("vision")
    assert type(host.service.model.model[1]).__name__ == "ClipPixels"


def test_any_other_processor_config_is_served_by_the_processor(
    tmp_path: Path, clip: tuple[Path, Any]
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(clip[0], model_dir)
    shutil.copytree(REPO / "model_code" / "vision", model_dir / "code")
    config_file = model_dir / "preprocessor_config.json"
    config = json.loads(config_file.read_text())
    config["do_center_crop"] = False
    config["size"] = {"height": 32, "width": 32}
    config_file.write_text(json.dumps(config))
    host = HandlerHost(model_dir)
    host.load()
    assert type(host.service.model.model[1]).__name__ != "ClipPixels"

    image = picture(48, 40)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    response = host.invoke(buffer.getvalue(), "image/png")
    assert response.status == 200, response.body
    processor = hf.CLIPImageProcessor.from_pretrained(model_dir)
    model = hf.CLIPVisionModelWithProjection.from_pretrained(model_dir).eval()
    with torch.no_grad():
        expected = model(**processor(images=[image], return_tensors="pt")).image_embeds
    expected = torch.nn.functional.normalize(expected, dim=-1)[0].numpy()
    np.testing.assert_allclose(response.json()["embeddings"][0], expected, atol=1e-5)
