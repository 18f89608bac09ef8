"""The towers' batch entry points: ``transform_batch`` and MMS's ``inference:handle``."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from mms.context import Context, RequestProcessor
from PIL import Image

from hf_towers.serving.handler_host import HandlerHost

JSON = "application/json"


@pytest.fixture(scope="module")
def text(load_tower):
    return load_tower("text", env={"MAX_BATCH_SIZE": "4"})


@pytest.fixture(scope="module")
def vision(load_tower):
    return load_tower("vision", env={"MAX_BATCH_SIZE": "4"})


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def alone(host: HandlerHost, body: bytes, content_type: str) -> list[list[float]]:
    answer = host.invoke(body, content_type)
    assert answer.status == 200, answer.body
    return list(answer.json()["embeddings"])


def test_each_client_gets_its_own_rows_in_order(text) -> None:
    texts = [f"query number {i}" for i in range(7)]
    requests: list[tuple[bytes, str | None, str | None]] = [
        (t.encode(), "text/plain", None) for t in texts
    ]
    requests.insert(3, (json.dumps({"inputs": ["two", "texts"]}).encode(), JSON, JSON))
    assert text.batches
    answers = text.invoke_batch(requests)
    assert [a.status for a in answers] == [200] * len(requests)
    for (body, content_type, _), answer in zip(requests, answers, strict=True):
        got = answer.json()["embeddings"]
        np.testing.assert_allclose(got, alone(text, body, content_type or JSON), atol=1e-5)
    assert len(answers[3].json()["embeddings"]) == 2


def test_a_bad_request_gets_its_own_400_and_the_others_their_rows(vision) -> None:
    good = [(png(i), "image/png", None) for i in range(3)]
    bad = (b"not an image", "image/png", None)
    wrong_accept = (png(9), "image/png", "text/html")
    answers = vision.invoke_batch([good[0], bad, good[1], wrong_accept, good[2]])
    assert [a.status for a in answers] == [200, 400, 200, 400, 200]
    assert "not a decodable" in answers[1].json()["message"]
    assert answers[1].json()["type"] == "InternalServerException"
    assert "unsupported Accept" in answers[3].json()["message"]
    for (body, ct, _), answer in zip(good, (answers[0], answers[2], answers[4]), strict=True):
        np.testing.assert_allclose(answer.json()["embeddings"], alone(vision, body, ct), atol=1e-5)


def test_the_same_error_as_one_request_alone(text) -> None:
    body = json.dumps({"inputs": [""]}).encode()
    [batched] = text.invoke_batch([(body, JSON, None)])
    single = text.invoke(body, JSON)
    assert (batched.status, batched.json()["message"]) == (single.status, single.json()["message"])


def test_passes_hold_at_most_max_batch_size_items_and_a_failing_pass_is_split(text) -> None:
    module = text._transform_batch.__globals__
    sizes: list[int] = []
    real = module["predict_fn"]

    def spy(items: list[str], tower: Any) -> Any:
        sizes.append(len(items))
        if "boom" in items:
            raise RuntimeError("this request's model failure")
        return real(items, tower)

    module["predict_fn"] = spy
    try:
        three = json.dumps({"inputs": ["a", "b", "c"]}).encode()
        plain = [(word, "text/plain", None) for word in (b"x", b"y", b"boom", b"z")]
        answers = text.invoke_batch([(three, JSON, None), *plain])
    finally:
        module["predict_fn"] = real
    assert [a.status for a in answers] == [200, 200, 200, 400, 200]
    assert "this request's model failure" in answers[3].json()["message"]
    # [a b c x] fills MAX_BATCH_SIZE=4; [y boom z] fails and is rerun request by request.
    assert sizes == [4, 3, 1, 1, 1]
    assert max(sizes) <= 4


def test_mms_handle_answers_a_batch_with_per_request_status(text, monkeypatch) -> None:
    module = text._transform_batch.__globals__
    handle = module["handle"]
    # This process holds several towers' modules; MMS's worker loads one with model_fn.
    monkeypatch.setitem(module["_LOADED"], "tower", text.service.model)
    context = Context("model", str(text.model_dir), {}, 3, None, "1.1.11")
    assert handle(None, context) is None  # MMS's load call
    headers = [
        {"Content-Type": "text/plain"},
        {"content-type": JSON, "Accept": "application/x-npy"},
        {"Content-Type": "image/png"},
    ]
    context.request_processor = [RequestProcessor(h) for h in headers]
    data = [{"body": bytearray(b"a cat")}, {"body": b'{"inputs": "a dog"}'}, {"body": b"x"}]
    bodies = handle(data, context)
    assert len(bodies) == 3
    assert [context.get_response_status(i)[0] for i in range(3)] == [200, 200, 400]
    assert context.get_response_content_type(0) == JSON
    assert context.get_response_content_type(1) == "application/x-npy"
    assert json.loads(bodies[0])["embeddings"] != []
    assert bytes(bodies[1]).startswith(b"\x93NUMPY")
    assert "unsupported Content-Type" in json.loads(bodies[2])["message"]


def test_task_models_answer_one_by_one(load_tower, tmp_path) -> None:
    host = load_tower("text")
    host._transform_batch = None  # a code/ without transform_batch
    answers = host.invoke_batch([(b"a", "text/plain", None), (b"", "text/plain", None)])
    assert [a.status for a in answers] == [200, 400]
