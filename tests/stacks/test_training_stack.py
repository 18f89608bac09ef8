"""The training stack: package groups, the pipeline and its two roles, the drift rule; nag-clean."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Match, Template

from tests.synth_helpers import REPO, build, default_data

EXAMPLE = REPO / "config" / "examples" / "training.yaml"
STACK = "hf-towers-lifecycle-training"


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


@pytest.fixture(scope="module")
def template() -> Template:
    _, deployed = build(example())
    assert deployed.training is not None
    return Template.from_stack(deployed.training)


def statements(template: Template, policy_prefix: str) -> dict[str, dict[str, Any]]:
    """Sid -> statement of the one managed policy whose logical id starts with the prefix."""
    [policy] = [
        v
        for k, v in template.find_resources("AWS::IAM::ManagedPolicy").items()
        if k.startswith(policy_prefix)
    ]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def flat(value: Any) -> str:
    """A CloudFormation value as text (intrinsics kept as JSON): for substring checks."""
    return json.dumps(value, sort_keys=True)


def definition_body(template: Template) -> dict[str, Any]:
    """The pipeline definition with every intrinsic replaced by a placeholder string."""
    [pipeline] = template.find_resources("AWS::SageMaker::Pipeline").values()
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    result: dict[str, Any] = json.loads(text)
    return result


def test_no_training_stack_unless_enabled() -> None:
    _, deployed = build(default_data())
    assert deployed.training is None
    assert all(not s.stack_name.endswith("-training") for s in deployed.stacks)


def test_one_group_for_the_dual_encoder_and_one_per_task_tower(template: Template) -> None:
    groups = template.find_resources("AWS::SageMaker::ModelPackageGroup")
    names = sorted(g["Properties"]["ModelPackageGroupName"] for g in groups.values())
    assert names == ["hf-towers-lifecycle-dual-encoder", "hf-towers-qa"]
    # retain environment: the registry outlives the stack.
    assert {g["DeletionPolicy"] for g in groups.values()} == {"Retain"}


def test_the_pipeline_runs_with_its_own_role_and_its_definition_parses(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::Pipeline",
        {
            "PipelineName": "hf-towers-lifecycle-fine-tune",
            "RoleArn": {
                "Fn::GetAtt": [Match.string_like_regexp("^FineTuningExecutionRole"), "Arn"]
            },
        },
    )
    body = definition_body(template)
    assert [s["Name"] for s in body["Steps"]] == ["Train", "Evaluate", "CheckRecall"]
    train = body["Steps"][0]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:"
        "2.5.1-transformers4.49.0-gpu-py311-cu124-ubuntu22.04"
    )
    assert train["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    assert train["EnableNetworkIsolation"] is True  # the base model is in S3
    [condition] = body["Steps"][2]["Arguments"]["Conditions"]
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "retrieval_metrics.recall_at_1.value"
    assert {p["Name"]: p["DefaultValue"] for p in body["Parameters"]}["MinRecall"] == 0.3
    [register] = body["Steps"][2]["Arguments"]["IfSteps"]
    args = register["Arguments"]
    assert args["ModelPackageGroupName"] == "hf-towers-lifecycle-dual-encoder"
    assert args["ModelApprovalStatus"] == "PendingManualApproval"
    # The package serves with the text tower's inference image (the DLC of its versions).
    [container] = args["InferenceSpecification"]["Containers"]
    assert "huggingface-pytorch-inference:2.6.0-transformers4.51.3-cpu" in container["Image"]


def test_the_job_role_reads_only_the_data_the_base_model_and_the_code(template: Template) -> None:
    job = statements(template, "FineTuningJobPolicy")
    assert job["ReadTrainingData"]["Action"] == "s3:GetObject"
    assert job["ReadTrainingData"]["Resource"] == [
        "arn:aws:s3:::example-ml-data/pairs/train/*",
        "arn:aws:s3:::example-ml-data/pairs/validation/*",
    ]
    assert job["ListTrainingData0"]["Resource"] == "arn:aws:s3:::example-ml-data"
    assert job["ListTrainingData0"]["Condition"] == {
        "StringLike": {"s3:prefix": ["pairs/train/*", "pairs/validation/*"]}
    }
    assert job["ReadBaseModel"]["Resource"] == (
        "arn:aws:s3:::example-ml-artifacts/dual-encoder/v1/model.tar.gz"
    )
    assert re.search(r"/[0-9a-f]{64}\.gz", flat(job["ReadCode"]["Resource"]))
    assert "/training/*" in flat(job["ReadWriteOutputs"]["Resource"])
    assert job["ReadWriteOutputs"]["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert job["PullTrainingImage"]["Resource"] == (
        "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-training"
    )
    for statement in job.values():  # no service-wide wildcard action anywhere
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all(not a.endswith(":*") for a in actions)
        if statement["Resource"] == "*":
            assert statement["Sid"] in {"EcrLogin", "PutJobMetrics"}


def test_the_execution_role_runs_only_pipeline_jobs_and_registers_in_its_group(
    template: Template,
) -> None:
    execution = statements(template, "FineTuningExecutionPolicy")
    assert ":training-job/pipelines-*" in flat(execution["RunTrainingJobs"]["Resource"])
    assert ":processing-job/pipelines-*" in flat(execution["RunProcessingJobs"]["Resource"])
    registered = flat(execution["RegisterPackages"]["Resource"])
    assert ":model-package/hf-towers-lifecycle-dual-encoder/*" in registered
    assert ":model-package-group/hf-towers-lifecycle-dual-encoder" in registered
    assert execution["PassJobRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert execution["PassJobRole"]["Resource"] == {
        "Fn::GetAtt": [_logical(template, "FineTuningJobRole"), "Arn"]
    }
    assert execution["GrantVolumeKey"]["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"}
    }
    for role in template.find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
        assert "Policies" not in role["Properties"]


def _logical(template: Template, prefix: str) -> str:
    [name] = [k for k in template.find_resources("AWS::IAM::Role") if k.startswith(prefix)]
    return name


def test_drift_on_the_text_schedule_reaches_the_guard(template: Template) -> None:
    [rule] = template.find_resources("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Processing Job State Change"]
    assert pattern["detail"]["ProcessingJobStatus"] == ["Completed"]
    assert flat(pattern["detail"]["MonitoringScheduleArn"]).endswith(
        ':monitoring-schedule/hf-towers-lifecycle-text-data-quality"]]}]'
    )
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_function(template), "Arn"]}
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "ReservedConcurrentExecutions": 1,
            "Environment": {
                "Variables": {
                    "PIPELINE_NAME": "hf-towers-lifecycle-fine-tune",
                    "COOLDOWN_HOURS": "24",
                }
            },
        },
    )
    guard = statements(template, "DriftRetrainPolicy")
    assert guard["StartPipeline"]["Action"] == [
        "sagemaker:ListPipelineExecutions",
        "sagemaker:StartPipelineExecution",
    ]
    assert flat(guard["StartPipeline"]["Resource"]).endswith(
        ':pipeline/hf-towers-lifecycle-fine-tune"]]}'
    )


def _function(template: Template) -> str:
    [name] = template.find_resources("AWS::Lambda::Function")
    return name


def test_the_training_stack_follows_the_towers_it_watches() -> None:
    _, deployed = build(example())
    assert deployed.training is not None
    assert deployed.towers["text"] in deployed.training.dependencies
    assert deployed.stacks[-1] is deployed.training


def hub_variant() -> dict[str, Any]:
    """The other branches: a Hub base model (network on), no drift rule, a vision tower."""
    data = example()
    data["environment"] = "hub"
    data["towers"] = {"vision": {**data["towers"]["text"], "kind": "vision"}}
    del data["towers"]["vision"]["model_monitor"]
    data["training"]["base_model"] = "openai/clip-vit-base-patch32"
    data["training"]["retrain_on_drift"] = {"enabled": False}
    del data["training"]["model_package_group"]
    return data


def test_a_hub_base_model_needs_the_network_and_drift_is_optional() -> None:
    """(The same branches pass the four packs and cfn-lint in the config matrix's scratch.)"""
    _, deployed = build(hub_variant())
    assert deployed.training is not None
    stack = Template.from_stack(deployed.training)
    body = definition_body(stack)
    assert body["Steps"][0]["Arguments"]["EnableNetworkIsolation"] is False
    assert stack.find_resources("AWS::Events::Rule") == {}
    assert stack.find_resources("AWS::Lambda::Function") == {}
    names = [
        g["Properties"]["ModelPackageGroupName"]
        for g in stack.find_resources("AWS::SageMaker::ModelPackageGroup").values()
    ]
    assert names == ["hf-towers-dual-encoder"]  # the default name
    assert "ReadBaseModel" not in statements(stack, "FineTuningJobPolicy")
