"""The fine-tuning pipeline's definition, checked structurally (steps, order, condition, registration)."""

from __future__ import annotations

import importlib
import json
import re
import sys
from typing import Any

import pytest

from hf_towers.config.training import RecallMetric, RecallThreshold
from hf_towers.constructs.training import definition as d
from tests.synth_helpers import REPO

THRESHOLD = RecallThreshold(metric=RecallMetric.TEXT_TO_IMAGE, k=5, min_value=0.4)


def inputs(**changes: Any) -> d.PipelineInputs:
    values: dict[str, Any] = dict(
        region="eu-west-1",
        training_image="763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-training:x",
        inference_image="763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-inference:y",
        inference_instance_type="ml.g5.xlarge",
        job_role_arn="arn:aws:iam::123456789012:role/job",
        key_arn="arn:aws:kms:eu-west-1:123456789012:key/k",
        train_uri="s3://data/pairs/train/",
        validation_uri="s3://data/pairs/validation/",
        base_model="s3://models/clip/model.tar.gz",
        code_uri="s3://assets/abc.gz",
        code_key="abc.gz",
        output_uri="s3://artifacts/training",
        package_group="proj-dual-encoder",
        metric_json_path=THRESHOLD.json_path,
        min_value=THRESHOLD.min_value,
        epochs=4,
        learning_rate=3e-5,
        batch_size=16,
        training=d.JobSettings("ml.g5.2xlarge", 50, 3600, None),
        evaluation=d.JobSettings(
            "ml.p3.2xlarge", 50, 3600, "arn:aws:kms:eu-west-1:123456789012:key/k"
        ),
        network_isolation=True,
    )
    values.update(changes)
    return d.PipelineInputs(**values)


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    # Through JSON, as the stack sends it.
    result: dict[str, Any] = json.loads(json.dumps(d.pipeline_definition(inputs())))
    return result


def steps(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step by name, the condition's branches included."""
    found = {}
    for step in pipeline["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step["Arguments"].get(branch, []):
                found[inner["Name"]] = inner
    return found


def test_train_evaluate_then_a_condition_that_registers_or_fails(pipeline) -> None:
    assert pipeline["Version"] == "2020-12-01"
    assert [(s["Name"], s["Type"]) for s in pipeline["Steps"]] == [
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("CheckRecall", "Condition"),
    ]
    condition = pipeline["Steps"][2]["Arguments"]
    assert [(s["Name"], s["Type"]) for s in condition["IfSteps"]] == [("Register", "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in condition["ElseSteps"]] == [
        ("RecallBelowThreshold", "Fail")
    ]


def references(value: Any) -> set[str]:
    """The step names an expression tree reads (``Steps.<name>.`` in Get and PropertyFile)."""
    return set(re.findall(r'"Steps\.([A-Za-z]+)\.', json.dumps(value)))


def test_each_step_reads_only_steps_that_come_before_it(pipeline) -> None:
    """The order SageMaker derives from the data dependencies is the order intended."""
    all_steps = steps(pipeline)
    assert references(all_steps["Train"]) == set()
    assert references(all_steps["Evaluate"]) == {"Train"}
    condition = {
        k: v for k, v in all_steps["CheckRecall"]["Arguments"].items() if k == "Conditions"
    }
    assert references(condition) == {"Evaluate"}
    assert references(all_steps["Register"]) == {"Train", "Evaluate"}


def test_the_evaluation_reads_the_trained_model_and_the_held_out_split(pipeline) -> None:
    evaluate = steps(pipeline)["Evaluate"]["Arguments"]
    by_name = {i["InputName"]: i["S3Input"] for i in evaluate["ProcessingInputs"]}
    assert by_name["model"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert by_name["model"]["LocalPath"] == "/opt/ml/processing/model"  # evaluate.py's default
    assert by_name["validation"]["S3Uri"] == "s3://data/pairs/validation/"
    assert by_name["validation"]["LocalPath"] == "/opt/ml/processing/validation"
    [output] = evaluate["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "evaluation"
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/evaluation"
    assert evaluate["ProcessingOutputConfig"]["KmsKeyId"] == inputs().key_arn
    assert evaluate["NetworkConfig"]["EnableNetworkIsolation"] is True
    command = evaluate["AppSpecification"]["ContainerEntrypoint"][-1]
    assert "tar -xzf /opt/ml/processing/input/code/abc.gz" in command
    assert command.endswith("python3 /tmp/code/evaluate.py")
    resources = evaluate["ProcessingResources"]["ClusterConfig"]
    assert resources["InstanceType"] == "ml.p3.2xlarge" and "VolumeKmsKeyId" in resources
    assert steps(pipeline)["Evaluate"]["PropertyFiles"] == [
        {
            "PropertyFileName": "EvaluationReport",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]


def test_the_condition_reads_the_configured_recall_against_min_recall(pipeline) -> None:
    [condition] = steps(pipeline)["CheckRecall"]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"] == {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": "retrieval_metrics.text_to_image_recall_at_5.value",
        }
    }
    assert condition["RightValue"] == {"Get": "Parameters.MinRecall"}
    parameters = {p["Name"]: p for p in pipeline["Parameters"]}
    assert parameters["MinRecall"] == {"Name": "MinRecall", "Type": "Float", "DefaultValue": 0.4}


def test_the_json_path_finds_the_metric_in_what_evaluate_py_writes() -> None:
    sys.path.insert(0, str(REPO / "model_code" / "train"))
    clip_train = importlib.import_module("clip_train")

    recalls = {"image_to_text": {1: 0.25, 5: 0.5}, "text_to_image": {1: 0.75, 5: 1.0}}
    report = json.loads(json.dumps(clip_train.report(recalls, 8)))
    for metric in RecallMetric:
        for k in (1, 5):
            value: Any = report
            for part in RecallThreshold(metric=metric, k=k).json_path.split("."):
                value = value[part]
            assert isinstance(value, float)
    assert d.REPORT_FILE == clip_train.REPORT_FILE


def test_registration_is_pending_manual_approval_with_the_evaluation_as_metrics(pipeline) -> None:
    register = steps(pipeline)["Register"]["Arguments"]
    assert register["ModelPackageGroupName"] == "proj-dual-encoder"
    assert register["ModelApprovalStatus"] == "PendingManualApproval"
    [container] = register["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert container["Image"] == inputs().inference_image
    assert register["ModelMetrics"] == {
        "ModelQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": {
                    "Std:Join": {
                        "On": "/",
                        "Values": [
                            {
                                "Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"
                            },
                            "evaluation.json",
                        ],
                    }
                },
            }
        }
    }


def test_training_runs_train_py_from_the_code_channel_with_the_hyperparameters(pipeline) -> None:
    train = steps(pipeline)["Train"]["Arguments"]
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in train["InputDataConfig"]
    }
    assert channels == {
        "train": "s3://data/pairs/train/",
        "validation": "s3://data/pairs/validation/",
        "code": "s3://assets/abc.gz",
        "model": "s3://models/clip/model.tar.gz",  # SM_CHANNEL_MODEL
    }
    hyper = train["HyperParameters"]
    assert json.loads(hyper["sagemaker_program"]) == "train.py"
    assert json.loads(hyper["sagemaker_submit_directory"]) == "/opt/ml/input/data/code/abc.gz"
    assert hyper["epochs"] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Epochs"}]}}
    assert {p["Name"]: p["DefaultValue"] for p in pipeline["Parameters"]} == {
        "Epochs": 4, "LearningRate": 3e-5, "BatchSize": 16, "MinRecall": 0.4,
    }  # fmt: skip
    assert "base_model" not in hyper
    assert train["EnableNetworkIsolation"] is True
    assert train["OutputDataConfig"] == {
        "S3OutputPath": "s3://artifacts/training/models",
        "KmsKeyId": inputs().key_arn,
    }
    # ml.g5 has local NVMe only: SageMaker refuses a volume key there.
    assert "VolumeKmsKeyId" not in train["ResourceConfig"]
    assert train["ResourceConfig"]["InstanceCount"] == 1


def test_a_hub_base_model_is_a_hyperparameter_and_the_job_gets_network() -> None:
    train = d.training_step(
        inputs(base_model="openai/clip-vit-base-patch32", network_isolation=False)
    )
    args = train["Arguments"]
    assert json.loads(args["HyperParameters"]["base_model"]) == "openai/clip-vit-base-patch32"
    assert "model" not in {c["ChannelName"] for c in args["InputDataConfig"]}
    assert args["EnableNetworkIsolation"] is False


def test_metric_definitions_match_what_train_py_prints() -> None:
    train = d.training_step(inputs())["Arguments"]["AlgorithmSpecification"]
    lines = "epoch=1 train_loss=2.473613\nvalidation_recall_at_1=0.458333\n"
    found = {m["Name"]: re.search(m["Regex"], lines) for m in train["MetricDefinitions"]}
    assert {name: float(match.group(1)) for name, match in found.items() if match} == {
        "train:loss": 2.473613,
        "validation:recall_at_1": 0.458333,
    }
    source = (REPO / "model_code" / "train" / "train.py").read_text()
    assert 'f"epoch={epoch} train_loss=' in source and 'f"validation_{name}=' in source
