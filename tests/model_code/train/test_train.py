"""train.py and evaluate.py for real: a tiny random CLIP fine-tuned on generated shapes, on CPU.

The scripts run through their SageMaker contract (channels and SM_MODEL_DIR from the
environment, hyperparameters as arguments); the model they write is loaded by the towers' own
handlers, inside the real toolkit.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from hf_towers.serving.handler_host import HandlerHost
from hf_towers.serving.toy_models import ClipSize, build_clip
from tests.model_code.train.shapes import CAPTIONS, write_split

REPO = Path(__file__).resolve().parents[3]
CODE = REPO / "model_code" / "train"
# TINY, with room for the longest caption ("a yellow triangle": 17 bytes + start and end).
SIZE = ClipSize(16, 32, 2, 2, 24, 32, 2, 2, 32, 8)
HYPERPARAMETERS = ["--epochs", "20", "--learning_rate", "1e-3", "--batch_size", "12"]
CHANCE = 1 / len(CAPTIONS)


def script(name: str) -> ModuleType:
    """``model_code/train/<name>.py`` as the job runs it: its folder first on ``sys.path``."""
    if str(CODE) not in sys.path:
        sys.path.insert(0, str(CODE))
    if name == "clip_train":  # the one the scripts import
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(f"train_job_{name}", CODE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Base model, data, the base model's evaluation, one training job and its evaluation."""
    root = tmp_path_factory.mktemp("train-job")
    torch.manual_seed(0)
    build_clip(root / "base", SIZE, seed=0)
    write_split(root / "train", per_caption=3, seed=1)  # 36 pairs
    write_split(root / "validation", per_caption=1, seed=2)  # 12 held-out pairs
    evaluate = script("evaluate")
    assert evaluate.main(["--model", str(root / "base"), "--validation", str(root / "validation"),
                          "--output", str(root / "before")]) == 0  # fmt: skip
    env = {
        "SM_CHANNEL_TRAIN": str(root / "train"),
        "SM_CHANNEL_VALIDATION": str(root / "validation"),
        "SM_CHANNEL_MODEL": str(root / "base"),
        "SM_MODEL_DIR": str(root / "model"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        assert script("train").main(HYPERPARAMETERS) == 0
    # What SageMaker does with SM_MODEL_DIR: one model.tar.gz, the Evaluate step's input.
    (root / "job-output").mkdir()
    with tarfile.open(root / "job-output" / "model.tar.gz", "w:gz") as tar:
        for entry in sorted((root / "model").iterdir()):
            tar.add(entry, arcname=entry.name)
    assert evaluate.main(["--model", str(root / "job-output"), "--validation",
                          str(root / "validation"), "--output", str(root / "after")]) == 0  # fmt: skip
    before, after = (
        json.loads((root / n / "evaluation.json").read_text()) for n in ("before", "after")
    )
    return {"root": root, "before": before, "after": after}


def metric(report: dict[str, Any], name: str) -> float:
    """The value at the pipeline's JsonGet path ``retrieval_metrics.<name>.value``."""
    value: float = report["retrieval_metrics"][name]["value"]
    return value


def test_report_has_every_direction_and_k(run) -> None:
    names = set(run["after"]["retrieval_metrics"])
    assert names == {
        f"{prefix}recall_at_{k}"
        for prefix in ("", "image_to_text_", "text_to_image_")
        for k in (1, 5)
    }
    assert run["after"]["pairs"] == len(CAPTIONS)


def test_fine_tuning_improves_recall_over_the_base_model_and_beats_chance(run) -> None:
    before, after = run["before"], run["after"]
    for direction in ("image_to_text_", "text_to_image_"):
        assert metric(after, f"{direction}recall_at_1") > metric(before, f"{direction}recall_at_1")
        assert metric(after, f"{direction}recall_at_1") >= 3 * CHANCE
    assert metric(after, "recall_at_1") >= metric(before, "recall_at_1") + 0.2
    assert metric(after, "recall_at_5") > metric(before, "recall_at_5")


def tower(run: dict[str, Any], kind: str) -> HandlerHost:
    model_dir = run["root"] / f"{kind}-tower"
    shutil.copytree(run["root"] / "model", model_dir)
    shutil.copytree(REPO / "model_code" / kind, model_dir / "code")
    host = HandlerHost(model_dir)
    host.load()
    return host


def test_the_written_model_is_what_the_towers_serve(run) -> None:
    """Both towers load the job's output and embed as the evaluation did (same space)."""
    clip_train = script("clip_train")
    model, tokenizer, processor, window = clip_train.load_clip(
        run["root"] / "model", torch.device("cpu")
    )
    pairs = clip_train.read_pairs(run["root"] / "validation")[:3]
    images, texts = clip_train.embed_pairs(model, tokenizer, processor, window, pairs, 8)

    body = json.dumps({"inputs": [p.text for p in pairs]}).encode()
    answer = tower(run, "text").invoke(body, "application/json")
    assert answer.status == 200, answer.body
    np.testing.assert_allclose(answer.json()["embeddings"], texts.numpy(), atol=1e-5)

    vision = tower(run, "vision")
    for pair, expected in zip(pairs, images.numpy(), strict=True):
        answer = vision.invoke(pair.image.read_bytes(), "image/png")
        assert answer.status == 200, answer.body
        np.testing.assert_allclose(answer.json()["embeddings"][0], expected, atol=1e-5)


def test_the_model_is_saved_as_safetensors_with_its_preprocessors(run) -> None:
    files = {p.name for p in (run["root"] / "model").iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "tokenizer.json",
    } <= files
    assert not any(name.endswith(".bin") for name in files)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "not JSON"),
        ('{"image": "images/0000.png"}', 'exactly "image" and "text"'),
        ('{"image": "images/none.png", "text": "a red square"}', "does not exist"),
        ('{"image": "../outside.png", "text": "a red square"}', "lies outside"),
        ('{"image": "images/0000.png", "text": " "}', "non-empty string"),
    ],
)
def test_bad_pairs_are_refused_naming_the_line(tmp_path, capsys, line: str, problem: str) -> None:
    write_split(tmp_path / "data", per_caption=1, seed=0)
    (tmp_path / "outside.png").write_bytes(b"")
    pairs = tmp_path / "data" / "pairs.jsonl"
    pairs.write_text(pairs.read_text() + line + "\n")
    code = script("evaluate").main(["--model", "unused", "--validation", str(tmp_path / "data")])
    assert code == 2
    error = capsys.readouterr().err
    assert f"pairs.jsonl:{len(CAPTIONS) + 1}:" in error and problem in error


def test_a_missing_pairs_file_says_what_to_put_there(tmp_path, capsys) -> None:
    assert script("evaluate").main(["--model", "unused", "--validation", str(tmp_path)]) == 2
    assert "no pairs file" in capsys.readouterr().err


def test_duplicate_captions_count_as_right_answers() -> None:
    clip_train = script("clip_train")
    pairs = [clip_train.Pair(Path(f"{i}.png"), text) for i, text in enumerate("aab")]
    # Image 0 ranks text 1 first: the same caption as its own, so a hit at k=1.
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[0.9, 0.1], [1.0, 0.0], [0.0, 1.0]])
    recalls = clip_train.recall_at_k(images, texts, clip_train.positives(pairs), ks=(1,))
    assert recalls == {"image_to_text": {1: 1.0}, "text_to_image": {1: 1.0}}
    shifted = clip_train.recall_at_k(images, texts[[2, 1, 0]], clip_train.positives(pairs), ks=(1,))
    assert shifted["image_to_text"][1] < 1.0


def test_loss_is_clip_cross_entropy_with_one_positive_per_row() -> None:
    clip_train = script("clip_train")
    logits = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    expected = (
        torch.nn.functional.cross_entropy(logits, torch.arange(4))
        + torch.nn.functional.cross_entropy(logits.t(), torch.arange(4))
    ) / 2
    assert torch.allclose(
        clip_train.contrastive_loss(logits, torch.eye(4, dtype=torch.bool)), expected
    )


def test_training_needs_data_and_a_base_model(capsys, monkeypatch) -> None:
    for name in ("SM_CHANNEL_TRAIN", "SM_CHANNEL_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit):
        script("train").parse_args([])
    assert "--base_model is required" in capsys.readouterr().err


def test_a_base_model_archive_of_any_name_is_extracted(run, tmp_path) -> None:
    """The model channel holds the S3 object under its own name (clip-v1.tar.gz, ...)."""
    clip_train = script("clip_train")
    channel = tmp_path / "channel"
    channel.mkdir()
    shutil.copy(run["root"] / "job-output" / "model.tar.gz", channel / "clip-v1.tar.gz")
    folder = Path(clip_train.model_folder(channel, work=tmp_path))
    assert folder != channel and (folder / "model.safetensors").is_file()
    assert clip_train.model_folder(run["root"] / "model") == str(run["root"] / "model")
    assert clip_train.model_folder("openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"
