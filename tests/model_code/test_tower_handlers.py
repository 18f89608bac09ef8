"""Both towers inside the real toolkit handler: agreement with CLIPModel, formats, errors."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessor, CLIPTokenizerFast

from hf_towers.serving.handler_host import HandlerHost

JSON, NPY = "application/json", "application/x-npy"
MAX_BATCH = 4
MAX_PIXELS = 60 * 60  # every image of these tests is smaller, but for the too-large ones


@pytest.fixture(scope="module")
def vision(load_tower):
    env = {"MAX_BATCH_SIZE": str(MAX_BATCH), "MAX_IMAGE_PIXELS": str(MAX_PIXELS)}
    return load_tower("vision", env=env)


@pytest.fixture(scope="module")
def text(load_tower):
    return load_tower("text", env={"MAX_BATCH_SIZE": str(MAX_BATCH)})


def image_bytes(seed: int, fmt: str = "PNG", size: tuple[int, int] = (48, 40)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds 4 bytes of junk as pixel data: only its header
    can be read (decoding it would fail)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"junk")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def embed(host: HandlerHost, body: bytes | str, content_type: str = JSON) -> np.ndarray[Any, Any]:
    payload = body.encode() if isinstance(body, str) else body
    response = host.invoke(payload, content_type)
    assert response.status == 200, response.body
    return np.asarray(response.json()["embeddings"], dtype=np.float32)


def test_text_and_image_land_in_clipmodels_space(vision, text, clip) -> None:
    path, model = clip
    picture, caption = image_bytes(1), "a red bicycle"
    image_vec = embed(vision, picture, "image/png")[0]
    text_vec = embed(text, json.dumps({"inputs": caption}))[0]

    pixels = CLIPImageProcessor.from_pretrained(path)(
        images=[Image.open(io.BytesIO(picture)).convert("RGB")], return_tensors="pt"
    )
    tokens = CLIPTokenizerFast.from_pretrained(path)([caption], return_tensors="pt")
    with torch.no_grad():
        expected_image = torch.nn.functional.normalize(model.get_image_features(**pixels), dim=-1)
        expected_text = torch.nn.functional.normalize(model.get_text_features(**tokens), dim=-1)
    expected_cosine = float(expected_image[0] @ expected_text[0])

    assert float(image_vec @ text_vec) == pytest.approx(expected_cosine, abs=1e-5)
    np.testing.assert_allclose(image_vec, expected_image[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(text_vec, expected_text[0].numpy(), atol=1e-5)
    assert np.linalg.norm(image_vec) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(text_vec) == pytest.approx(1.0, abs=1e-5)


def test_each_tower_holds_only_its_half(vision, text) -> None:
    vision_keys = set(vision.service.model.model[0].state_dict())
    text_keys = set(text.service.model.model[0].state_dict())
    assert any(key.startswith("visual_projection") for key in vision_keys)
    assert any(key.startswith("text_projection") for key in text_keys)
    assert not any(key.startswith(("text_model", "text_projection")) for key in vision_keys)
    assert not any(key.startswith(("vision_model", "visual_projection")) for key in text_keys)


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_raw_image_types_match_json_base64(vision, fmt, content_type) -> None:
    data = image_bytes(2, fmt)
    raw = embed(vision, data, content_type)
    wrapped = embed(vision, json.dumps({"inputs": b64(data)}))
    assert raw.shape == (1, 16)
    np.testing.assert_allclose(raw, wrapped, atol=1e-6)


def test_vision_batch_equals_singles(vision) -> None:
    images = [image_bytes(seed, size=(30 + 9 * seed, 50)) for seed in range(MAX_BATCH)]
    batch = embed(vision, json.dumps({"inputs": [b64(image) for image in images]}))
    singles = np.concatenate([embed(vision, image, "image/png") for image in images])
    assert batch.shape == (MAX_BATCH, 16)
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    assert not np.allclose(batch[0], batch[1])


def test_text_batch_equals_singles(text) -> None:
    texts = ["a dog", "two cats on a sofa", "x", "the sea"]
    batch = embed(text, json.dumps({"inputs": texts}))
    singles = np.concatenate([embed(text, query.encode(), "text/plain") for query in texts])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    assert not np.allclose(batch[0], batch[1])


@pytest.mark.parametrize("accept", [NPY, "application/x-npy; q=1", "text/html, application/x-npy"])
def test_npy_accept_gives_the_json_rows(text, accept) -> None:
    body = json.dumps({"inputs": ["one", "two"]}).encode()
    as_json = np.asarray(text.invoke(body, JSON).json()["embeddings"], dtype=np.float32)
    response = text.invoke(body, JSON, accept)
    assert response.status == 200
    assert response.content_type == accept
    array = np.load(io.BytesIO(response.body))
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, as_json)


def test_vision_npy_and_any_accept(vision) -> None:
    data = image_bytes(3)
    array = np.load(io.BytesIO(vision.invoke(data, "image/png", NPY).body))
    any_accept = vision.invoke(data, "image/png", "*/*")
    assert any_accept.content_type == JSON
    # JSON carries nine significant digits: exactly the float32 values of the NPY answer.
    np.testing.assert_array_equal(array, np.asarray(any_accept.json()["embeddings"], np.float32))


def test_truncation_is_flagged_and_only_the_window_counts(text) -> None:
    prefix = "z" * 40  # the tiny tokenizer has no merges: one token per character
    response = text.invoke(
        json.dumps({"inputs": ["short", prefix + "a", prefix + "b"]}).encode(), JSON
    )
    assert response.status == 200
    answer = response.json()
    assert answer["truncated"] == [False, True, True]
    vectors = np.asarray(answer["embeddings"])
    np.testing.assert_allclose(vectors[1], vectors[2], atol=1e-6)
    assert not np.allclose(vectors[0], vectors[1])


def test_text_at_exactly_the_window_is_not_truncated(text) -> None:
    # 16 positions = start + 14 characters + end.
    answer = text.invoke(json.dumps({"inputs": ["q" * 14, "q" * 15]}).encode(), JSON).json()
    assert answer["truncated"] == [False, True]


GOOD = {"vision": (image_bytes(9), "image/png"), "text": (b'{"inputs": "ok"}', JSON)}
TOO_MANY_IMAGES = json.dumps({"inputs": [b64(image_bytes(0))] * (MAX_BATCH + 1)}).encode()
TOO_MANY_TEXTS = json.dumps({"inputs": ["t"] * (MAX_BATCH + 1)}).encode()
BAD_REQUESTS = [
    ("vision", b"abc", "text/csv", None, "unsupported Content-Type 'text/csv'"),
    ("vision", b"abc", None, None, "unsupported Content-Type None"),
    ("vision", image_bytes(0), "image/png", "text/html", "unsupported Accept 'text/html'"),
    ("vision", b"not an image", "image/jpeg", None, "the request body is not a decodable"),
    ("vision", image_bytes(0, "GIF"), "image/png", None, "not a decodable JPEG, PNG or WebP"),
    (
        "vision",
        image_bytes(0, size=(80, 60)),
        "image/png",
        None,
        f"the request body is 80 x 60 = 4800 pixels, more than MAX_IMAGE_PIXELS ({MAX_PIXELS})",
    ),
    (  # small, but 32 x 6400 once its shortest edge is resized to the model's 32
        "vision",
        image_bytes(0, size=(1, 200)),
        "image/png",
        None,
        "image 0 (1 x 200) would be resized to 204800 pixels, more than MAX_IMAGE_PIXELS",
    ),
    (  # over Pillow's own decompression-bomb limit (2 x 89478485 pixels): Pillow refuses it
        "vision",
        png_header_only(20_000, 10_000),
        "image/png",
        None,
        "the request body is too large to decode",
    ),
    (  # refused from the header alone: nothing is decoded
        "vision",
        png_header_only(50_000, 1_000),
        "image/png",
        None,
        "is 50000 x 1000 = 50000000 pixels, more than MAX_IMAGE_PIXELS",
    ),
    (
        "vision",
        json.dumps(
            {"inputs": [b64(image_bytes(0)), b64(image_bytes(1, "JPEG", (61, 60)))]}
        ).encode(),
        JSON,
        None,
        "inputs[1] is 61 x 60 = 3660 pixels, more than MAX_IMAGE_PIXELS",
    ),
    ("vision", b"", "image/png", None, "the request body is empty"),
    ("vision", b'{"inputs": []}', JSON, None, f"1 to {MAX_BATCH} images, not 0"),
    ("vision", b'{"inputs": ""}', JSON, None, "inputs[0] is empty"),
    ("vision", TOO_MANY_IMAGES, JSON, None, f"1 to {MAX_BATCH} images, not {MAX_BATCH + 1}"),
    ("vision", b'{"inputs": ["aGVsbG8"]}', JSON, None, "inputs[0] is not valid base64"),
    ("vision", b'{"inputs": ["aGVsbG8="]}', JSON, None, "inputs[0] is not a decodable"),
    ("vision", b'{"inputs": [', JSON, None, "malformed JSON"),
    ("vision", b'{"image": "x"}', JSON, None, 'malformed JSON, expected {"inputs"'),
    ("vision", b'{"inputs": [7]}', JSON, None, "inputs[0] must be a base64 string, not int"),
    ("text", b"hi", "image/png", None, "unsupported Content-Type 'image/png'"),
    ("text", b'{"inputs": "a"}', JSON, "text/csv", "unsupported Accept 'text/csv'"),
    ("text", b"{'inputs': 'a'}", JSON, None, "the body is not valid application/json"),
    ("text", b"\xff\xfe", "text/plain", None, "the body is not valid text/plain"),
    ("text", b"", "text/plain", None, "empty text at position(s) [0]"),
    ("text", b'{"inputs": ["a", " "]}', JSON, None, "empty text at position(s) [1]"),
    ("text", b'{"inputs": []}', JSON, None, f"1 to {MAX_BATCH} texts, not 0"),
    ("text", TOO_MANY_TEXTS, JSON, None, f"1 to {MAX_BATCH} texts, not {MAX_BATCH + 1}"),
    ("text", b'{"inputs": 3}', JSON, None, '"inputs" must be a string or a list of strings'),
    ("text", b'{"inputs": ["a", null]}', JSON, None, '"inputs" must be a string or a list'),
    ("text", b'["a"]', JSON, None, 'expected a JSON object {"inputs"'),
    ("text", b'{"text": "a"}', JSON, None, 'expected a JSON object {"inputs"'),
]


@pytest.mark.parametrize(("tower", "body", "content_type", "accept", "message"), BAD_REQUESTS)
def test_bad_request_is_a_400_naming_the_problem_and_serving_goes_on(
    request, tower, body, content_type, accept, message
) -> None:
    host = request.getfixturevalue(tower)
    response = host.invoke(body, content_type, accept)
    assert response.status == 400
    assert message in response.json()["message"]
    assert response.json()["code"] == 400
    good = host.invoke(*GOOD[tower])
    assert good.status == 200
    assert len(good.json()["embeddings"]) == 1


def test_batch_of_max_size_is_accepted(text) -> None:
    body = json.dumps({"inputs": [f"text {i}" for i in range(MAX_BATCH)]}).encode()
    assert len(text.invoke(body, JSON).json()["embeddings"]) == MAX_BATCH


def test_json_with_charset_arrives_as_bytes_and_works(vision, text) -> None:
    body = json.dumps({"inputs": "caf\u00e9"}).encode()
    assert text.invoke(body, "application/json; charset=utf-8").status == 200
    image = json.dumps({"inputs": b64(image_bytes(4))}).encode()
    assert vision.invoke(image, "application/json; charset=utf-8").status == 200
