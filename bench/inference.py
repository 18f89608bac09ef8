"""Inference benchmark of the tower handlers on CPU: ``make bench-inference``.

Builds a small-but-not-tiny CLIP checkpoint locally (``hf_towers.serving.toy_models.SMALL``:
ViT 6x384 at 224 px / patch 32, text 6x256 with a 77-token window, 256-d projection), then for
each tower measures, inside the toolkit's ``HuggingFaceHandlerService``:

* load: handler ``initialize`` (imports code/, ``model_fn``) vs plain ``from_pretrained`` of the
  same tower and its processor/tokenizer;
* overhead: one request through the handler (bytes in, JSON out) vs the raw work a caller would do
  with transformers directly (processor/tokenizer + forward, in ``inference_mode``);
* throughput at batch 1, 8 and 32 through the handler, items per second.

Writes ``bench/results/inference.json``. Medians of several runs after a warm-up.
"""

from __future__ import annotations

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
from hf_towers.serving.toy_models import SMALL, build_clip  # noqa: E402

RESULTS = REPO / "bench" / "results" / "inference.json"
BATCHES = (1, 8, 32)


def median_seconds(action: Callable[[], object], runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    # Smooth gradients plus noise: a photo-like JPEG of a typical catalogue size.
    base = np.linspace(0, 255, 320, dtype=np.float32)[None, :, None].repeat(240, 0).repeat(3, 2)
    pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def load_host(model_dir: Path, tower: str, workdir: Path) -> HandlerHost:
    host = HandlerHost(container_view(model_dir, tower, workdir))
    host.load()
    return host


def bench_tower(tower: str, model_dir: Path, root: Path) -> dict[str, object]:
    counter = iter(range(1000))

    def handler_load() -> HandlerHost:
        workdir = root / f"{tower}-{next(counter)}"
        workdir.mkdir()
        return load_host(model_dir, tower, workdir)

    if tower == "vision":

        def plain_load() -> object:
            model = CLIPVisionModelWithProjection.from_pretrained(model_dir, use_safetensors=True)
            return model.eval(), CLIPImageProcessor.from_pretrained(model_dir)

        items = [jpeg(seed) for seed in range(max(BATCHES))]
        single, content_type = items[0], "image/jpeg"

        def batch_body(n: int) -> bytes:
            return json.dumps(
                {"inputs": [base64.b64encode(i).decode() for i in items[:n]]}
            ).encode()

        def raw_forward(loaded: Any) -> Callable[[], object]:
            model, processor = loaded
            image = Image.open(io.BytesIO(single)).convert("RGB")

            def run() -> object:
                with torch.inference_mode():
                    pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
                    return model(pixel_values=pixels).image_embeds

            return run

    else:

        def plain_load() -> object:
            model = CLIPTextModelWithProjection.from_pretrained(model_dir, use_safetensors=True)
            return model.eval(), AutoTokenizer.from_pretrained(model_dir)

        words = [
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
        texts = [" ".join(words[: 4 + seed % 10]) + f" number {seed}" for seed in range(32)]
        single, content_type = texts[0].encode(), "text/plain"

        def batch_body(n: int) -> bytes:
            return json.dumps({"inputs": texts[:n]}).encode()

        def raw_forward(loaded: Any) -> Callable[[], object]:
            model, tokenizer = loaded

            def run() -> object:
                with torch.inference_mode():
                    batch = tokenizer(
                        [texts[0]], padding=True, truncation=True, return_tensors="pt"
                    )
                    return model(**batch).text_embeds

            return run

    handler_load_s = median_seconds(handler_load, runs=3)
    plain_load_s = median_seconds(plain_load, runs=3)
    host = handler_load()
    raw_s = median_seconds(raw_forward(plain_load()), runs=30, warmup=3)
    handler_s = median_seconds(lambda: host.invoke(single, content_type), runs=30, warmup=3)
    assert host.invoke(single, content_type).status == 200
    throughput = {}
    for n in BATCHES:
        body = batch_body(n)
        assert host.invoke(body, "application/json").status == 200
        seconds = median_seconds(partial(host.invoke, body, "application/json"), runs=7)
        throughput[str(n)] = {"seconds_per_request": seconds, "items_per_second": n / seconds}
    speedup = throughput["32"]["items_per_second"] / throughput["1"]["items_per_second"]
    return {
        "load_seconds": {"handler": handler_load_s, "plain_from_pretrained": plain_load_s},
        "single_request_seconds": {"handler": handler_s, "raw_forward": raw_s},
        "handler_overhead_percent": 100 * (handler_s - raw_s) / raw_s,
        "throughput": throughput,
        "batch32_vs_batch1_per_item": speedup,
    }


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    try:
        model_dir = root / "clip"
        build_clip(model_dir, SMALL)
        results: dict[str, object] = {
            "command": "make bench-inference",
            "machine": {
                "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "device": "cpu",
            },
            "model": {"config": "hf_towers.serving.toy_models.SMALL", **SMALL.__dict__},
            "targets": {"handler_overhead_percent_max": 5, "batch32_vs_batch1_per_item_min": 8},
        }
        for tower in ("vision", "text"):
            results[tower] = bench_tower(tower, model_dir, root)
            print(tower, json.dumps(results[tower], indent=1), flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
