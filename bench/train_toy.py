"""Fine-tuning figure on toy data: recall@k of a tiny random CLIP before and after train.py.

Builds the tiny CLIP of the tests (``hf_towers.serving.toy_models``, room for 24 tokens), writes
36 training and 12 held-out coloured-shape pairs (``tests/model_code/train/shapes.py``), runs
``model_code/train/evaluate.py`` on the base model, ``train.py`` (20 epochs, lr 1e-3, batch 12,
seed 0) and ``evaluate.py`` on the result, on this machine's CPU or GPU, and prints recall@1 and
@5 before and after, the chance level and the training time. ``--epochs N`` changes the run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "model_code" / "train")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hf_towers.serving.toy_models import ClipSize, build_clip  # noqa: E402
from tests.model_code.train.shapes import CAPTIONS, write_split  # noqa: E402


def script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", REPO / "model_code" / "train" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    train, evaluate = script("train"), script("evaluate")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_clip(root / "base", ClipSize(16, 32, 2, 2, 24, 32, 2, 2, 32, 8), seed=0)
        write_split(root / "train", per_caption=3, seed=1)
        write_split(root / "validation", per_caption=1, seed=2)
        reports = {}
        for name, model in (("before", root / "base"), ("after", root / "model")):
            if name == "after":
                started = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    train.main(["--epochs", str(args.epochs), "--learning_rate", "1e-3",
                                "--batch_size", "12", "--base_model", str(root / "base"),
                                "--train", str(root / "train"), "--model_dir", str(model)])  # fmt: skip
                seconds = time.perf_counter() - started
            with contextlib.redirect_stdout(io.StringIO()):
                evaluate.main(["--model", str(model), "--validation", str(root / "validation"),
                               "--output", str(root / name)])  # fmt: skip
            reports[name] = json.loads((root / name / "evaluation.json").read_text())
    print(f"held-out pairs: {len(CAPTIONS)}, chance recall@1: {1 / len(CAPTIONS):.3f}")
    print(f"training: {args.epochs} epochs of 36 pairs in {seconds:.1f} s")
    print(f"{'metric':32} {'before':>8} {'after':>8}")
    for metric in reports["before"]["retrieval_metrics"]:
        values = [reports[n]["retrieval_metrics"][metric]["value"] for n in ("before", "after")]
        print(f"{metric:32} {values[0]:8.3f} {values[1]:8.3f}")


if __name__ == "__main__":
    main()
