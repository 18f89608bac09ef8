"""A generated image-text dataset: coloured shapes on a grey field, captioned "a red square"."""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 30),
    "blue": (30, 60, 220),
    "yellow": (230, 210, 20),
}
SHAPES = ("square", "circle", "triangle")
CAPTIONS = [f"a {colour} {shape}" for colour in COLOURS for shape in SHAPES]


def draw(colour: str, shape: str, rng: random.Random, size: int = 32) -> Image.Image:
    """One shape of random size and position."""
    image = Image.new("RGB", (size, size), (128, 128, 128))
    pen = ImageDraw.Draw(image)
    extent = rng.randint(size // 2, size - 4)
    left, top = rng.randint(0, size - extent), rng.randint(0, size - extent)
    box = (left, top, left + extent, top + extent)
    fill = COLOURS[colour]
    if shape == "square":
        pen.rectangle(box, fill=fill)
    elif shape == "circle":
        pen.ellipse(box, fill=fill)
    else:
        pen.polygon(
            [(left, top + extent), (left + extent, top + extent), (left + extent // 2, top)],
            fill=fill,
        )
    return image


def write_split(folder: Path, per_caption: int, seed: int) -> list[str]:
    """``per_caption`` images of each caption under ``folder``, listed in ``pairs.jsonl``."""
    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines, texts = [], []
    for index, caption in enumerate(CAPTIONS * per_caption):
        _, colour, shape = caption.split()
        name = f"images/{index:04d}.png"
        draw(colour, shape, rng).save(folder / name)
        lines.append(json.dumps({"image": name, "text": caption}))
        texts.append(caption)
    (folder / "pairs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return texts
