"""``training:`` of an environment file (hf_towers/config/training.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from hf_towers.config import ConfigError, parse_config
from hf_towers.config.training import RecallMetric
from tests.synth_helpers import REPO, default_data

EXAMPLE = yaml.safe_load((REPO / "config" / "examples" / "training.yaml").read_text())


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "config/bad.yaml")
    return str(info.value)


def _with_training(**training: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(EXAMPLE)
    data["training"].update(training)
    return data


def test_training_is_off_by_default_with_documented_defaults() -> None:
    training = parse_config(default_data(), "test").training
    assert training.enabled is False and training.retrain_on_drift.enabled is False
    assert (training.instance_type, training.evaluation_instance_type) == (
        "ml.g5.2xlarge",
        "ml.g5.xlarge",
    )
    assert (training.transformers_version, training.pytorch_version) == ("4.49.0", "2.5.1")
    h = training.hyperparameters
    assert (h.epochs, h.learning_rate, h.batch_size) == (3, 1e-5, 32)
    assert training.threshold.json_path == "retrieval_metrics.recall_at_1.value"
    assert training.threshold.min_value == 0.5
    assert training.retrain_on_drift.cooldown_hours == 24
    assert training.package_group("hf-towers") == "hf-towers-dual-encoder"


def test_the_example_enables_everything() -> None:
    training = parse_config(EXAMPLE, "example").training
    assert training.enabled and training.retrain_on_drift.enabled
    assert training.base_model_in_s3
    assert training.package_group("ignored") == "hf-towers-lifecycle-dual-encoder"


@pytest.mark.parametrize(
    ("metric", "k", "name"),
    [("recall", 5, "recall_at_5"), ("image_to_text_recall", 1, "image_to_text_recall_at_1")],
)
def test_the_threshold_names_the_report_key(metric: str, k: int, name: str) -> None:
    data = _with_training(threshold={"metric": metric, "k": k, "min_value": 0.2})
    threshold = parse_config(data, "x").training.threshold
    assert threshold.metric is RecallMetric(metric)
    assert threshold.json_path == f"retrieval_metrics.{name}.value"


@pytest.mark.parametrize(
    ("training", "message"),
    [
        (
            {"data": None},
            "training.enabled needs data (train_uri and validation_uri) and base_model",
        ),
        (
            {"base_model": "s3://bucket/model.zip"},
            "neither an s3://.../model.tar.gz nor a Hugging Face Hub id",
        ),
        (
            {"instance_type": "ml.m5.xlarge"},
            "training.instance_type = 'ml.m5.xlarge': must be a GPU instance type",
        ),
        ({"evaluation_instance_type": "ml.inf2.xlarge"}, "must be a GPU instance type"),
        (
            {"data": {"train_uri": "s3://b-b/train", "validation_uri": "s3://b-b/v/"}},
            "must be an S3 prefix ending in '/'",
        ),
        ({"threshold": {"k": 3}}, "training.threshold.k = 3"),
        ({"threshold": {"min_value": 1.5}}, "training.threshold.min_value = 1.5"),
        ({"model_package_group": "Bad_Name"}, "must be 1-63 letters, digits and hyphens"),
        (
            {"retrain_on_drift": {"enabled": True, "towers": ["nope"]}},
            "['nope'] are not towers of this file",
        ),
        ({"retrain_on_drift": {"enabled": True, "towers": []}}, "needs towers"),
        (
            {"retrain_on_drift": {"enabled": True, "towers": ["qa"]}},
            "['qa'] have no Model Monitor schedule",
        ),
        ({"enabled": False}, "retrain_on_drift.enabled needs training.enabled: true"),
        ({"hyperparameters": {"batch_size": 1}}, "training.hyperparameters.batch_size = 1"),
    ],
)
def test_bad_training_config_names_file_key_and_fix(training: dict[str, Any], message: str) -> None:
    error = _error(_with_training(**training))
    assert "config/bad.yaml: training" in error
    assert message in error
