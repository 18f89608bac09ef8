"""MAIN_MODULE_NAME: a user's own architecture behind the same handlers; loader settings."""

from __future__ import annotations

import ast
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hf_towers.serving.handler_host import HandlerHost

REPO = Path(__file__).resolve().parents[2]

# A user's module: reads its own weights file, embeds images by mean colour and texts by length.
TOY_MODULE = """
import json
from pathlib import Path

import torch


def load_vision_tower(model_dir, device, dtype):
    weights = json.loads((Path(model_dir) / "toy.json").read_text())["vision"]
    return torch.tensor(weights, dtype=dtype, device=device)


def embed_images(model, images):
    means = torch.tensor([[sum(image.getpixel((0, 0))) / 765.0, 1.0] for image in images])
    return means.to(model.dtype) @ model


def load_text_tower(model_dir, device, dtype):
    return json.loads((Path(model_dir) / "toy.json").read_text())["window"]


def embed_texts(model, texts):
    rows = torch.tensor([[float(min(len(t), model)), 1.0, 0.0] for t in texts])
    return rows, [len(t) > model for t in texts]
"""


@pytest.fixture(scope="module")
def toy_hosts(load_tower):
    hosts = {
        tower: load_tower(
            tower,
            env={"MAIN_MODULE_NAME": "toy_embedder.py"},
            extra_code={"toy_embedder.py": TOY_MODULE},
        )
        for tower in ("vision", "text")
    }
    return hosts


@pytest.fixture(scope="module", autouse=True)
def toy_weights(clip):
    # The model dirs are copies of the CLIP dir made when the hosts load; add the toy file first.
    path = clip[0] / "toy.json"
    path.write_text(json.dumps({"vision": [[3.0, 0.0, 4.0], [0.0, 1.0, 0.0]], "window": 5}))
    yield
    path.unlink()


def test_custom_text_module_is_used_and_normalised(toy_hosts) -> None:
    answer = toy_hosts["text"].invoke(b'{"inputs": ["abc", "abcdefgh"]}', "application/json").json()
    expected = np.array([[3.0, 1.0, 0.0], [5.0, 1.0, 0.0]])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(answer["embeddings"], expected, atol=1e-6)
    assert answer["truncated"] == [False, True]


def test_custom_vision_module_is_used_and_normalised(toy_hosts) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 255, 255)).save(buffer, "PNG")
    answer = toy_hosts["vision"].invoke(buffer.getvalue(), "image/png").json()
    # mean 1.0 -> [1, 1] @ [[3, 0, 4], [0, 1, 0]] = [3, 1, 4]
    expected = np.array([3.0, 1.0, 4.0]) / np.sqrt(26.0)
    np.testing.assert_allclose(answer["embeddings"][0], expected, atol=1e-6)


NAN_MODULE = """
import torch


def load_text_tower(model_dir, device, dtype):
    return None


def embed_texts(model, texts):
    return torch.full((len(texts), 3), float("nan")), [False] * len(texts)
"""


NEGATIVE_ZERO_MODULE = """
import torch


def load_text_tower(model_dir, device, dtype):
    return None


def embed_texts(model, texts):
    return torch.tensor([[-0.0, 3.0, 4.0]] * len(texts)), [False] * len(texts)
"""


def test_negative_zero_leaves_as_zero_in_json_and_npy_alike(load_tower) -> None:
    host = load_tower(
        "text",
        env={"MAIN_MODULE_NAME": "negative_zero"},
        extra_code={"negative_zero.py": NEGATIVE_ZERO_MODULE},
    )
    as_json = host.invoke(b"a boat", "text/plain")
    assert (
        as_json.body.decode() == '{"embeddings":[[0,0.600000024,0.800000012]],"truncated":[false]}'
    )
    as_npy = np.load(io.BytesIO(host.invoke(b"a boat", "text/plain", "application/x-npy").body))
    assert not np.signbit(as_npy).any()
    parsed = np.asarray(as_json.json()["embeddings"], dtype=np.float32)
    assert parsed.tobytes() == as_npy.tobytes()  # bit for bit


def test_non_finite_embeddings_are_refused_not_sent_as_invalid_json(load_tower) -> None:
    host = load_tower(
        "text", env={"MAIN_MODULE_NAME": "nan_embedder"}, extra_code={"nan_embedder.py": NAN_MODULE}
    )
    response = host.invoke(b'{"inputs": "a boat"}', "application/json")
    assert response.status == 400
    assert "non-finite embeddings" in response.json()["message"]
    assert host.invoke(b"a boat", "text/plain", "application/x-npy").status == 200


WRONG_SHAPE_MODULE = """
import torch


def load_vision_tower(model_dir, device, dtype):
    return None


def embed_images(model, images):
    return torch.ones(3)  # one vector for the whole request, not a row per image


def load_text_tower(model_dir, device, dtype):
    return None


def embed_texts(model, texts):
    return torch.ones(len(texts), 3), []  # no truncation flags
"""


def test_a_main_module_breaking_the_output_contract_gets_a_message_naming_it(load_tower) -> None:
    hosts = {
        tower: load_tower(
            tower,
            env={"MAIN_MODULE_NAME": "wrong_shape"},
            extra_code={"wrong_shape.py": WRONG_SHAPE_MODULE},
        )
        for tower in ("vision", "text")
    }
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    vision = hosts["vision"].invoke(buffer.getvalue(), "image/png")
    assert "embed_images returned shape (3,) for 1 image(s)" in vision.json()["message"]
    text = hosts["text"].invoke(b'{"inputs": ["a", "b"]}', "application/json")
    assert "embed_texts returned shape (2, 3) and 0 flag(s) for 2 text(s)" in text.json()["message"]


def test_main_module_without_the_contract_fails_at_load(load_tower) -> None:
    with pytest.raises(TypeError, match="must define load_text_tower"):
        load_tower("text", env={"MAIN_MODULE_NAME": "empty"}, extra_code={"empty.py": "X = 1\n"})


def test_unknown_dtype_fails_at_load(load_tower) -> None:
    for tower in ("vision", "text"):
        with pytest.raises(ValueError, match=r"TORCH_DTYPE must be auto, .* not float8"):
            load_tower(tower, env={"TORCH_DTYPE": "float8"})


def test_bad_max_batch_size_fails_at_load(load_tower) -> None:
    with pytest.raises(ValueError, match="MAX_BATCH_SIZE must be at least 1"):
        load_tower("text", env={"MAX_BATCH_SIZE": "0"})


def test_bad_max_image_pixels_fails_at_load(load_tower) -> None:
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS must be at least 1, not 0"):
        load_tower("vision", env={"MAX_IMAGE_PIXELS": "0"})
    # The tiny model resizes to 32 x 32: a limit below that would refuse every image.
    with pytest.raises(ValueError, match=r"MAX_IMAGE_PIXELS \(1000\) is below .*\(32 x 32 = 1024"):
        load_tower("vision", env={"MAX_IMAGE_PIXELS": "1000"})


@pytest.mark.parametrize("tower", ["vision", "text"])
def test_a_checkpoint_without_safetensors_is_refused_with_the_fix(
    tower: str, clip, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(clip[0], model_dir)
    (model_dir / "model.safetensors").unlink()
    clip[1].save_pretrained(model_dir, safe_serialization=False)  # pytorch_model.bin only
    shutil.copytree(REPO / "model_code" / tower, model_dir / "code")
    with pytest.raises(FileNotFoundError, match=r"no \*\.safetensors weights .*pytorch_model\.bin"):
        HandlerHost(model_dir).load()


def test_bfloat16_tower_loads_in_bfloat16_and_stays_close(load_tower) -> None:
    half = load_tower("text", env={"TORCH_DTYPE": "bfloat16"})
    full = load_tower("text")
    assert half.service.model.model[0].dtype == torch.bfloat16
    body = b'{"inputs": "a small boat"}'
    a = np.asarray(half.invoke(body, "application/json").json()["embeddings"])
    b = np.asarray(full.invoke(body, "application/json").json()["embeddings"])
    assert float((a * b).sum()) > 0.99


ALLOWED_IMPORTS = {
    "__future__",
    "base64",
    "binascii",
    "collections",
    "dataclasses",
    "importlib",
    "re",
    "io",
    "json",
    "os",
    "pathlib",
    "sys",
    "typing",
    "numpy",
    "torch",
    "PIL",
    "transformers",
    "sagemaker_huggingface_inference_toolkit",
}


@pytest.mark.parametrize("tower", ["vision", "text"])
def test_code_dir_is_standalone(tower) -> None:
    code = REPO / "model_code" / tower
    assert sorted(p.name for p in code.iterdir() if p.name != "__pycache__") == [
        "inference.py",
        "requirements.txt",
    ]
    requirements = (code / "requirements.txt").read_text().splitlines()
    assert [line for line in requirements if line.strip() and not line.startswith("#")] == []
    tree = ast.parse((code / "inference.py").read_text())
    imported = {
        ((node.module or "") if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"model_fn", "input_fn", "predict_fn", "output_fn"} <= functions


SKELETON_START = "# --- shared skeleton: identical in model_code/vision and model_code/text"
SKELETON_END = "# --- end of the shared skeleton ---"


def _skeleton(tower: str) -> str:
    text = (REPO / "model_code" / tower / "inference.py").read_text()
    start, end = text.index(SKELETON_START), text.index(SKELETON_END)
    return text[start:end]


def test_the_towers_share_one_skeleton_byte_for_byte() -> None:
    """Each code/ must stay standalone (it is a container's code folder), so the helpers both
    towers need are copied: this keeps the copies identical."""
    vision, text = _skeleton("vision"), _skeleton("text")
    assert vision == text
    defined = {
        node.name
        for node in ast.parse(vision.split("\n", 1)[1]).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }
    assert defined == {
        "BadRequest",
        "_require_safetensors",
        "json_rows",
        "Answer",
        "_error_answer",
        "_headers",
        "transform_batch",
        "handle",
    }
