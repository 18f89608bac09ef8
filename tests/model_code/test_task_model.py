"""Plain task models (no code/): the toolkit's own pipeline via HF_TASK answers."""

from __future__ import annotations

import json

import pytest

from hf_towers.serving.handler_host import HandlerHost
from hf_towers.serving.toy_models import T5_WORDS, build_distilbert_qa, build_t5


def test_distilbert_qa_artifact_answers_through_the_toolkit(tmp_path, monkeypatch) -> None:
    build_distilbert_qa(tmp_path)
    assert not (tmp_path / "code").exists()
    monkeypatch.setenv("HF_TASK", "question-answering")
    host = HandlerHost(tmp_path)
    host.load()
    context = "paris is the capital of france and the louvre is a museum in paris"
    body = json.dumps(
        {"inputs": {"question": "what is the capital of france?", "context": context}}
    )
    response = host.invoke(body.encode(), "application/json")
    assert response.status == 200, response.body
    answer = response.json()
    assert set(answer) >= {"answer", "score", "start", "end"}
    assert 0 <= answer["start"] <= answer["end"] <= len(context)
    assert answer["answer"] == context[answer["start"] : answer["end"]]
    assert 0.0 <= answer["score"] <= 1.0
    # The pipeline's own validation is also a client error, and the worker goes on.
    missing = host.invoke(b'{"inputs": {"question": "where?"}}', "application/json")
    assert missing.status == 400
    assert host.invoke(body.encode(), "application/json").status == 200


def test_flan_t5_artifact_generates_through_the_toolkit(tmp_path, monkeypatch) -> None:
    build_t5(tmp_path)
    assert not (tmp_path / "code").exists()
    monkeypatch.setenv("HF_TASK", "text2text-generation")
    host = HandlerHost(tmp_path)
    host.load()
    # Generation parameters reach generate(): random weights favour <pad>, so ban it and <unk>
    # and ask for exactly four new tokens, which must then be four words of the vocabulary.
    body = {
        "inputs": "translate english to german: the house is small",
        "parameters": {"min_new_tokens": 4, "max_new_tokens": 4, "bad_words_ids": [[0], [2]]},
    }
    response = host.invoke(json.dumps(body).encode(), "application/json")
    assert response.status == 200, response.body
    [answer] = response.json()
    words = answer["generated_text"].split()
    assert len(words) == 4
    assert set(words) <= set(T5_WORDS)
    # Greedy decoding is deterministic: the same request gives the same text.
    again = host.invoke(json.dumps(body).encode(), "application/json")
    assert again.json() == [answer]
    assert host.invoke(b'{"inputs": 3}', "application/json").status == 400


def test_without_task_or_code_the_load_fails(tmp_path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="HF_TASK"):
        HandlerHost(tmp_path).load()
