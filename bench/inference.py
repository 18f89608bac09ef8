"""Inference benchmark of the tower handlers: ``make bench-inference``.

Builds CLIP checkpoints locally with random weights (``hf_towers.serving.toy_models``): ``small``
(ViT 6 x 384, text 6 x 256, 256-d projection) and ``base`` (the dimensions of
openai/clip-vit-base-patch32: ViT-B/32 12 x 768, text 12 x 512, 512-d projection; 151 M
parameters). For each size and tower it measures, inside the toolkit's
``HuggingFaceHandlerService`` on this machine's device (CUDA in half precision when there is
one, else the CPU):

* load: handler ``initialize`` (imports ``code/``, runs ``model_fn``) vs plain
  ``from_pretrained`` of the same tower and its image processor / tokenizer;
* overhead: one request through the handler (request bytes in, response bytes out, JSON and
  NPY) vs the raw work a caller does with transformers from the same request bytes (vision:
  decode the JPEG, image processor, forward; text: tokenizer, forward), in ``inference_mode``.
  The three are timed in turns; the overhead is the median of the per-round differences over
  the median raw time, so the machine's drift between rounds does not count;
* throughput through the handler at batch 1, 8 and 32 (JSON in and out): the same 32 items
  sent in 32, 4 or 1 requests, items per second.

Writes ``bench/results/inference.json`` (medians after a warm-up) and prints a summary table.
``--sizes small`` runs one size only.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import (  # noqa: E402
    CLIPImageProcessor,
    CLIPTextModelWithProjection,
    CLIPVisionModelWithProjection,
)
from transformers.models.auto.tokenization_auto import AutoTokenizer  # noqa: E402

from hf_towers.serving.handler_host import HandlerHost  # noqa: E402
from hf_towers.serving.local_server import container_view  # noqa: E402
from hf_towers.serving.toy_models import SIZES, build_clip  # noqa: E402

RESULTS = REPO / "bench" / "results" / "inference.json"
BATCHES = (1, 8, 32)
NPY = "application/x-npy"
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DTYPE = torch.float16 if DEVICE.type == "cuda" else torch.float32  # the handlers' "auto"
WORDS = [
    "a",
    "photo",
    "of",
    "a",
    "red",
    "bicycle",
    "leaning",
    "on",
    "a",
    "stone",
    "wall",
    "near",
    "the",
    "old",
    "harbour",
]
TEXTS = [" ".join(WORDS[: 4 + seed % 10]) + f" number {seed}" for seed in range(max(BATCHES))]


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    sync()
    return time.perf_counter() - start


def median_seconds(action: Callable[[], object], runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        action()
    return statistics.median(timed(action) for _ in range(runs))


def alternating_times(
    actions: dict[str, Callable[[], object]], runs: int, warmup: int = 3
) -> dict[str, list[float]]:
    """Seconds of each action per round, timed in turns (a, b, c, a, b, c, ...)."""
    for action in actions.values():
        for _ in range(warmup):
            action()
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            times[name].append(timed(action))
    return times


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    # Smooth gradients plus noise: a photo-like 320 x 240 JPEG.
    base = np.linspace(0, 255, 320, dtype=np.float32)[None, :, None].repeat(240, 0).repeat(3, 2)
    pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class Vision:
    content_type = "image/jpeg"

    def __init__(self) -> None:
        self.items = [jpeg(seed) for seed in range(max(BATCHES))]
        self.single = self.items[0]

    def batch_bodies(self, n: int) -> list[bytes]:
        encoded = [base64.b64encode(item).decode() for item in self.items]
        return [
            json.dumps({"inputs": encoded[i : i + n]}).encode() for i in range(0, len(encoded), n)
        ]

    @staticmethod
    def plain_load(model_dir: Path) -> Any:
        model = CLIPVisionModelWithProjection.from_pretrained(
            model_dir, torch_dtype=DTYPE, use_safetensors=True
        )
        return model.to(DEVICE).eval(), CLIPImageProcessor.from_pretrained(model_dir)

    def raw(self, loaded: Any) -> Callable[[], object]:
        model, processor = loaded

        def run() -> object:
            with torch.inference_mode():
                image = Image.open(io.BytesIO(self.single)).convert("RGB")
                pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
                return model(pixel_values=pixels.to(DEVICE, DTYPE)).image_embeds.cpu()

        return run

    def preprocessing(self, loaded: Any, host: HandlerHost) -> dict[str, float]:
        """Per-image milliseconds for the 32 images: JPEG decode, then pixel values by the image
        processor and by the tower's own ``ClipPixels`` (the same tensor)."""
        processor, tower_pixels = loaded[1], host.service.model.model[1]
        images = [Image.open(io.BytesIO(item)).convert("RGB") for item in self.items]

        def ms(action: Callable[[], object]) -> float:
            return 1e3 * median_seconds(action, runs=5) / len(self.items)

        return {
            "decode": ms(lambda: [Image.open(io.BytesIO(i)).convert("RGB") for i in self.items]),
            "processor": ms(partial(processor, images=images, return_tensors="pt")),
            "tower_pixels": ms(partial(tower_pixels, images)),
        }


class Text:
    content_type = "text/plain"
    single = TEXTS[0].encode()

    @staticmethod
    def batch_bodies(n: int) -> list[bytes]:
        return [json.dumps({"inputs": TEXTS[i : i + n]}).encode() for i in range(0, len(TEXTS), n)]

    @staticmethod
    def plain_load(model_dir: Path) -> Any:
        model = CLIPTextModelWithProjection.from_pretrained(
            model_dir, torch_dtype=DTYPE, use_safetensors=True
        )
        return model.to(DEVICE).eval(), AutoTokenizer.from_pretrained(model_dir)

    @staticmethod
    def raw(loaded: Any) -> Callable[[], object]:
        model, tokenizer = loaded

        def run() -> object:
            with torch.inference_mode():
                batch = tokenizer([TEXTS[0]], padding=True, truncation=True, return_tensors="pt")
                return model(**batch.to(DEVICE)).text_embeds.cpu()

        return run

    @staticmethod
    def preprocessing(loaded: Any, host: HandlerHost) -> dict[str, float]:
        """Per-text CPU milliseconds of tokenizing the 32 texts as one padded batch."""
        tokenizer = loaded[1]
        tokenize = partial(tokenizer, TEXTS, padding=True, truncation=True, return_tensors="pt")
        return {"tokenizer": 1e3 * median_seconds(tokenize, runs=5) / len(TEXTS)}


def invoke_all(host: HandlerHost, bodies: list[bytes]) -> None:
    for body in bodies:
        host.invoke(body, "application/json")


def bench_tower(tower: str, model_dir: Path, root: Path) -> dict[str, Any]:
    shape = Vision() if tower == "vision" else Text()
    counter = iter(range(1000))

    def handler_load() -> HandlerHost:
        workdir = root / f"{model_dir.name}-{tower}-{next(counter)}"
        workdir.mkdir()
        host = HandlerHost(container_view(model_dir, tower, workdir))
        host.load()
        return host

    load = {
        "handler": median_seconds(handler_load, runs=3),
        "plain_from_pretrained": median_seconds(partial(shape.plain_load, model_dir), runs=3),
    }
    host = handler_load()
    for accept in (None, NPY):
        assert host.invoke(shape.single, shape.content_type, accept).status == 200
    plain = shape.plain_load(model_dir)
    rounds = alternating_times(
        {
            "raw": shape.raw(plain),
            "handler_json": partial(host.invoke, shape.single, shape.content_type),
            "handler_npy": partial(host.invoke, shape.single, shape.content_type, NPY),
        },
        runs=60,
    )
    single = {name: statistics.median(times) for name, times in rounds.items()}
    # Overhead: the median of the per-round differences (handler - raw, timed back to back),
    # which the machine's drift between rounds does not reach, over the median raw time.
    overhead = {
        accept: 100
        * statistics.median(
            h - r for h, r in zip(rounds[f"handler_{accept}"], rounds["raw"], strict=True)
        )
        / single["raw"]
        for accept in ("json", "npy")
    }
    throughput = {}
    for n in BATCHES:
        # The same 32 items at every batch size, in 32 / n requests.
        bodies = shape.batch_bodies(n)
        assert all(host.invoke(body, "application/json").status == 200 for body in bodies)
        seconds = median_seconds(partial(invoke_all, host, bodies), runs=3)
        throughput[str(n)] = {
            "seconds_per_request": seconds / len(bodies),
            "items_per_second": len(TEXTS) / seconds,
        }
    return {
        "load_seconds": load,
        "single_request_seconds": single,
        "handler_overhead_percent": overhead,
        "throughput": throughput,
        # CPU work per item before the forward, at batch 32 (where a GPU run's time would go).
        "preprocessing_ms_per_item": shape.preprocessing(plain, host),
        "batch32_vs_batch1_per_item": (
            throughput["32"]["items_per_second"] / throughput["1"]["items_per_second"]
        ),
    }


def summary(results: dict[str, Any]) -> str:
    lines = ["size   tower   raw ms  json ms (+%)     npy ms (+%)      b1/b8/b32 items/s   b32/b1"]
    for size, towers in results["models"].items():
        for tower in ("vision", "text"):
            r = towers[tower]
            s, o, t = r["single_request_seconds"], r["handler_overhead_percent"], r["throughput"]
            lines.append(
                f"{size:6} {tower:6} {1e3 * s['raw']:7.2f} {1e3 * s['handler_json']:8.2f}"
                f" ({o['json']:+5.1f}) {1e3 * s['handler_npy']:8.2f} ({o['npy']:+5.1f})  "
                + "/".join(f"{t[str(n)]['items_per_second']:.1f}" for n in BATCHES)
                + f"  {r['batch32_vs_batch1_per_item']:.2f}x"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: small,base")
    sizes = parser.parse_args(argv).sizes.split(",")
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown:
        parser.error(f"unknown size(s) {unknown}: choose from {sorted(SIZES)}")
    results: dict[str, Any] = {
        "command": "make bench-inference",
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu",
            "dtype": str(DTYPE).removeprefix("torch."),
        },
        "targets": {"handler_overhead_percent_max": 5, "batch32_vs_batch1_per_item_min": 8},
        "models": {},
    }
    root = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    try:
        for size in sizes:
            model_dir = root / size
            build_clip(model_dir, SIZES[size])
            models = results["models"][size] = {"config": {"name": size, **SIZES[size].__dict__}}
            for tower in ("vision", "text"):
                models[tower] = bench_tower(tower, model_dir, root)
                print(size, tower, json.dumps(models[tower]), flush=True)
            shutil.rmtree(model_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(summary(results))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
