"""``hf_towers.publish.card``: the card's YAML metadata parses with huggingface_hub's own reader
(``ModelCard``) and carries the metrics as ``model-index`` results; the body tells how to call
each endpoint that serves the model."""

from __future__ import annotations

import dataclasses

from huggingface_hub import ModelCard, ModelCardData

from hf_towers.publish.card import CardInputs, Endpoint, card_text
from hf_towers.publish.metrics import parse_report
from hf_towers.publish.registry import Package
from tests.publish.conftest import CONFIG

METRICS = tuple(
    parse_report(
        {"image_to_text": {"recall_at_1": {"value": 0.61}}, "text_to_image": {"recall_at_1": 0.58}},
        "evaluation.json",
    )
)
DUAL = CardInputs(
    repo_id="my-org/clip-retrieval",
    kind="vision",
    hf_task=None,
    project="hf-towers",
    environment="prod",
    region="eu-west-1",
    config_file="config/prod.yaml",
    endpoints=(
        Endpoint("vision", "vision", "hf-towers-prod-vision", "realtime", True),
        Endpoint("text", "text", "search-text", "realtime", True, "/towers/text/invocations"),
    ),
    metrics=METRICS,
    metrics_source="From `evaluation.json`.",
    model_config=CONFIG,
    files=("config.json", "model.safetensors", "code/inference.py"),
    base_model="openai/clip-vit-base-patch32",
    datasets=("my-org/pairs",),
    training_data="120 000 product photos with their titles",
    license="apache-2.0",
    api_auth="iam",
)


def _data(card: ModelCard) -> ModelCardData:
    """The card's metadata as huggingface_hub parsed it (a model card's: ModelCardData)."""
    assert isinstance(card.data, ModelCardData)
    return card.data


def test_metadata_parses_and_holds_the_metrics_as_eval_results() -> None:
    card = ModelCard(card_text(DUAL))
    data = _data(card)
    assert data.base_model == "openai/clip-vit-base-patch32"
    assert data.datasets == ["my-org/pairs"]
    assert data.license == "apache-2.0"
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "zero-shot-image-classification"
    assert {"hf-towers", "sagemaker", "clip", "dual-encoder"} <= set(data.tags or [])
    assert data.model_name == "clip-retrieval"
    results = {
        (r.metric_type, r.metric_value, r.dataset_type, r.dataset_split)
        for r in data.eval_results or []
    }
    assert results == {
        ("image_to_text_recall_at_1", 0.61, "my-org/pairs", "validation"),
        ("text_to_image_recall_at_1", 0.58, "my-org/pairs", "validation"),
    }
    # the YAML as the Hub stores it: model-index is there, under the metadata block
    assert (
        card.content.startswith("---\n") and "\nmodel-index:\n" in card.content.split("\n---\n")[0]
    )


def test_body_says_base_data_metrics_use_limits_and_how_to_call_each_endpoint() -> None:
    text = card_text(DUAL)
    for expected in (
        "fine-tuned from `openai/clip-vit-base-patch32`",
        "120 000 product photos with their titles",
        "| image_to_text / recall_at_1 | `image_to_text_recall_at_1` | 0.61 |",
        "## Intended use",
        "## Limitations",
        "--endpoint-name hf-towers-prod-vision \\\n    --content-type image/jpeg --body fileb://photo.jpg",
        "--region eu-west-1 --endpoint-name search-text",
        '{"inputs": ["a photo of a cat", "a red bicycle"]}',
        "`POST <ApiUrl>/towers/text/invocations` (SigV4-signed",
        "embeddings of 16 float32 values",
        'CLIPModel.from_pretrained("my-org/clip-retrieval")',
        "`code/` is the SageMaker inference code",
    ):
        assert expected in text, expected
    assert "/towers/vision/invocations" not in text  # the vision tower is not routed


def test_registry_provenance_names_the_package_and_its_report() -> None:
    package = Package(
        arn="arn:aws:sagemaker:eu-west-1:123456789012:model-package/hf-towers-dual-encoder/4",
        group="hf-towers-dual-encoder",
        version="4",
        status="Approved",
        model_data_url="s3://b/model.tar.gz",
        report_uri="s3://b/evaluation.json",
        metrics=list(METRICS),
    )
    card = ModelCard(card_text(dataclasses.replace(DUAL, package=package)))
    assert (
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/hf-towers-dual-encoder/4"
        in card.text
    )
    assert "group `hf-towers-dual-encoder`, version 4, Approved" in card.text
    assert "evaluation report `s3://b/evaluation.json`" in card.text


def test_a_task_model_card_uses_its_pipeline() -> None:
    inputs = dataclasses.replace(
        DUAL,
        kind="task",
        hf_task="question-answering",
        endpoints=(Endpoint("qa", "task", "hf-towers-prod-qa", "realtime", True),),
        model_config={
            "architectures": ["DistilBertForQuestionAnswering"],
            "model_type": "distilbert",
        },
        base_model=None,
        license=None,
    )
    card = ModelCard(card_text(inputs))
    assert _data(card).pipeline_tag == "question-answering"
    assert _data(card).base_model is None and _data(card).license is None
    assert {r.task_type for r in _data(card).eval_results or []} == {"question-answering"}
    assert '{"inputs": {"question": "Who wrote it?"' in card.text
    assert 'pipeline("question-answering", model="my-org/clip-retrieval")' in card.text
    assert "served on Amazon SageMaker endpoints (its base model is not stated)" in card.text
    assert "- License: not stated" in card.text
    assert "clip" not in (_data(card).tags or [])


def test_model_only_and_async_towers_are_described_as_such() -> None:
    inputs = dataclasses.replace(
        DUAL,
        endpoints=(
            Endpoint("vision", "vision", "v", "realtime", False),
            Endpoint("text", "text", "t", "async", True),
        ),
    )
    text = card_text(inputs)
    assert "creates the SageMaker Model only (`deploy_endpoint: false`)" in text
    assert "invoke-endpoint-async --region eu-west-1 --endpoint-name t" in text


def test_a_towers_own_architecture_is_not_called_clip() -> None:
    card = ModelCard(card_text(dataclasses.replace(DUAL, main_module="my_model.py")))
    data = _data(card)
    assert data.pipeline_tag == "feature-extraction"
    assert "clip" not in (data.tags or []) and "dual-encoder" in (data.tags or [])
    assert "CLIPModel.from_pretrained" not in card.text
    assert "of its own architecture (`my_model.py`" in card.text
    assert "`load_vision_tower` / `load_text_tower`" in card.text
