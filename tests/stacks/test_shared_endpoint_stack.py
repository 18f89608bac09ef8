"""Shared endpoints (config/examples/shared-gpu.yaml): the shared stack's EndpointConfig,
Endpoint and role; each member tower's InferenceComponent, copy autoscaling, scale-out from
zero, alarms, dashboard and outputs; the API header, the deployer policy; and that a model
update touches one tower's stack only."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Template

from hf_towers.risk.template_diff import ChangeKind, diff_templates
from tests.stacks.config_matrix import shared_cpu_environment
from tests.synth_helpers import build, templates

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "shared-gpu.yaml"
SHARED = "hf-towers-shared-shared-gpu"
VISION = "hf-towers-shared-tower-vision"
TEXT = "hf-towers-shared-tower-text"
ACCESS = "hf-towers-shared-access"
ARTIFACTS = "hf-towers-shared-artifacts"


def _data() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))


@pytest.fixture(scope="module")
def shared_templates() -> dict[str, dict[str, Any]]:
    return templates(_data())


@pytest.fixture(scope="module")
def cpu_templates() -> dict[str, dict[str, Any]]:
    return templates(shared_cpu_environment())


def _of_type(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == resource_type]


def _only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = _of_type(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def test_the_environment_has_a_shared_stack_before_its_towers(
    shared_templates: dict[str, Any],
) -> None:
    assert list(shared_templates) == [ARTIFACTS, SHARED, VISION, TEXT, ACCESS]
    _, deployed = build(_data())
    shared = deployed.shared["gpu"]
    for name in ("vision", "text"):
        # An order, not a reference: the towers name the endpoint from config.
        assert shared in deployed.towers[name].dependencies
        tower = json.dumps(shared_templates[VISION if name == "vision" else TEXT])
        assert "Fn::ImportValue" not in tower or SHARED not in tower


def test_endpoint_config_is_in_inference_component_form(shared_templates: dict[str, Any]) -> None:
    template = Template.from_json(shared_templates[SHARED])
    config = _only(shared_templates[SHARED], "AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert "ModelName" not in variant  # each component brings its model
    assert variant == {
        "VariantName": "AllTraffic",
        "InstanceType": "ml.g5.xlarge",
        "InitialInstanceCount": 1,
        "ManagedInstanceScaling": {
            "Status": "ENABLED",
            "MinInstanceCount": 0,
            "MaxInstanceCount": 1,
        },
        "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
    }
    role_id, attribute = config["ExecutionRoleArn"]["Fn::GetAtt"]
    assert shared_templates[SHARED]["Resources"][role_id]["Type"] == "AWS::IAM::Role"
    assert attribute == "Arn"
    # ml.g5 has NVMe instance storage: no KmsKeyId (acknowledged with that reason).
    assert "KmsKeyId" not in config
    # Both towers' Models are isolated (their requirements.txt install nothing): so is the config.
    assert config["EnableNetworkIsolation"] is True
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint", {"EndpointName": "hf-towers-shared-gpu"}
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/aws/sagemaker/Endpoints/hf-towers-shared-gpu"}
    )
    assert set(shared_templates[SHARED]["Outputs"]) >= {
        "EndpointName",
        "EndpointArn",
        "ExecutionRoleArn",
    }


def test_a_cpu_shared_endpoint_encrypts_its_volume_and_routes_randomly(
    cpu_templates: dict[str, Any],
) -> None:
    stacks = cpu_templates
    config = _only(stacks["hf-towers-sharedcpu-shared-cpu"], "AWS::SageMaker::EndpointConfig")
    props = config["Properties"]
    assert "StoreKey" in props["KmsKeyId"]["Fn::ImportValue"]  # the environment key
    (variant,) = props["ProductionVariants"]
    assert variant["RoutingConfig"] == {"RoutingStrategy": "RANDOM"}
    assert props["EnableNetworkIsolation"] is True  # text and the task model are both isolated
    assert variant["ManagedInstanceScaling"]["MinInstanceCount"] == 1
    assert variant["ManagedInstanceScaling"]["MaxInstanceCount"] == 2
    endpoint = _only(stacks["hf-towers-sharedcpu-shared-cpu"], "AWS::SageMaker::Endpoint")
    assert endpoint["Properties"]["EndpointName"] == "Team-Shared-Cpu"
    # The task model is a component too, on the same endpoint.
    qa = _only(stacks["hf-towers-sharedcpu-tower-qa"], "AWS::SageMaker::InferenceComponent")
    assert qa["Properties"]["EndpointName"] == "Team-Shared-Cpu"
    assert qa["Properties"]["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfCpuCoresRequired": 1.5,
        "MinMemoryRequiredInMb": 2048,
    }
    # copies.min 1: no scale-out-from-zero path.
    text = stacks["hf-towers-sharedcpu-tower-text"]
    assert [
        p
        for p in _of_type(text, "AWS::ApplicationAutoScaling::ScalingPolicy")
        if p["Properties"]["PolicyType"] == "StepScaling"
    ] == []
    text_component = _only(text, "AWS::SageMaker::InferenceComponent")["Properties"]
    assert text_component["DeploymentConfig"] == {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 34},
            "RollbackMaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 100},
            "WaitIntervalInSeconds": 300,
            "MaximumExecutionTimeoutInSeconds": 3600,
        }
    }  # auto_rollback: false, so no alarms to roll back on


def test_the_endpoint_role_only_writes_its_logs_and_metrics(
    shared_templates: dict[str, Any],
) -> None:
    template = shared_templates[SHARED]
    role = _only(template, "AWS::IAM::Role")["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ]
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    policy = _only(template, "AWS::IAM::ManagedPolicy")["Properties"]["PolicyDocument"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"WriteEndpointLogs", "PutSageMakerMetrics"}
    assert by_sid["WriteEndpointLogs"]["Resource"]["Fn::GetAtt"][0].startswith("EndpointLogs")
    assert by_sid["PutSageMakerMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}
    }


def test_each_tower_is_a_component_and_has_no_endpoint_of_its_own(
    shared_templates: dict[str, Any],
) -> None:
    for stack in (VISION, TEXT):
        template = shared_templates[stack]
        assert _of_type(template, "AWS::SageMaker::EndpointConfig") == []
        assert _of_type(template, "AWS::SageMaker::Endpoint") == []
        assert len(_of_type(template, "AWS::SageMaker::Model")) == 1
        assert len(_of_type(template, "Custom::RepackedModelData")) == 1  # its own artifact
    vision = _only(shared_templates[VISION], "AWS::SageMaker::InferenceComponent")["Properties"]
    model_id = next(
        k
        for k, r in shared_templates[VISION]["Resources"].items()
        if r["Type"] == "AWS::SageMaker::Model"
    )
    assert vision["EndpointName"] == "hf-towers-shared-gpu"
    assert vision["InferenceComponentName"] == "hf-towers-shared-vision"
    assert vision["VariantName"] == "AllTraffic"
    assert vision["Specification"] == {
        "ModelName": {"Fn::GetAtt": [model_id, "ModelName"]},
        "ComputeResourceRequirements": {
            "NumberOfAcceleratorDevicesRequired": 1,
            "NumberOfCpuCoresRequired": 2,
            "MinMemoryRequiredInMb": 8192,
        },
    }
    assert vision["RuntimeConfig"] == {"CopyCount": 1}
    rolling = vision["DeploymentConfig"]["RollingUpdatePolicy"]
    assert rolling["MaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 50}
    alarms = vision["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert sorted(a["AlarmName"]["Ref"][:10] for a in alarms) == ["AlarmsErro", "AlarmsLate"]
    text = _only(shared_templates[TEXT], "AWS::SageMaker::InferenceComponent")["Properties"]
    # No accelerators configured: the text copy runs on CPU cores of the GPU instance.
    assert text["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfCpuCoresRequired": 1,
        "MinMemoryRequiredInMb": 4096,
    }


def test_member_image_follows_the_shared_gpu_instance_type(
    shared_templates: dict[str, Any],
) -> None:
    model = _only(shared_templates[TEXT], "AWS::SageMaker::Model")["Properties"]
    image = json.dumps(model["PrimaryContainer"]["Image"])
    assert "gpu" in image and "cpu" not in image


def test_copy_autoscaling_tracks_invocations_per_copy_and_wakes_from_zero(
    shared_templates: dict[str, Any],
) -> None:
    template = shared_templates[VISION]
    target = _only(template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert target["ResourceId"] == "inference-component/hf-towers-shared-vision"
    assert target["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 1)
    assert target["ServiceNamespace"] == "sagemaker"
    policies = {
        p["Properties"]["PolicyType"]: p["Properties"]
        for p in _of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    }
    assert policies["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
        },
        "TargetValue": 20,
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
    }
    assert policies["StepScaling"]["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Maximum",
        "Cooldown": 60,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    }
    (wake,) = [
        a["Properties"]
        for a in _of_type(template, "AWS::CloudWatch::Alarm")
        if a["Properties"]["MetricName"] == "NoCapacityInvocationFailures"
    ]
    assert wake["Namespace"] == "AWS/SageMaker"
    assert wake["Dimensions"] == [
        {"Name": "InferenceComponentName", "Value": "hf-towers-shared-vision"}
    ]
    assert (wake["Statistic"], wake["Threshold"], wake["ComparisonOperator"]) == (
        "Sum",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    step_id = next(
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
        and r["Properties"]["PolicyType"] == "StepScaling"
    )
    assert wake["AlarmActions"] == [{"Ref": step_id}]
    # The target is registered only once the component exists.
    target_resource = next(
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
    )
    component_id = next(
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::SageMaker::InferenceComponent"
    )
    assert component_id in target_resource["DependsOn"]


def test_alarms_dashboard_logs_and_outputs_are_per_component(
    shared_templates: dict[str, Any],
) -> None:
    template = shared_templates[TEXT]
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in _of_type(template, "AWS::CloudWatch::Alarm")
    }
    for metric in ("Invocation5XXErrors", "ModelLatency"):
        assert alarms[metric]["Dimensions"] == [
            {"Name": "InferenceComponentName", "Value": "hf-towers-shared-text"}
        ]
    body = json.dumps(_only(template, "AWS::CloudWatch::Dashboard")["Properties"])
    assert "hf-towers-shared-text" in body and "/aws/sagemaker/InferenceComponents" in body
    assert "GPUUtilizationNormalized" not in body  # the text copy has no accelerator
    assert "GPUUtilizationNormalized" in json.dumps(
        _only(shared_templates[VISION], "AWS::CloudWatch::Dashboard")["Properties"]
    )
    Template.from_json(template).has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/aws/sagemaker/InferenceComponents/hf-towers-shared-text"},
    )
    role_policy = next(
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and k.startswith("ExecutionRole")
    )
    statements = role_policy["Properties"]["PolicyDocument"]
    logs = next(s for s in statements["Statement"] if s.get("Sid") == "WriteEndpointLogs")
    assert logs["Resource"]["Fn::GetAtt"][0].startswith("ComponentLogs")
    outputs = template["Outputs"]
    assert outputs["EndpointName"]["Value"] == "hf-towers-shared-gpu"
    assert outputs["InferenceComponentName"]["Value"] == "hf-towers-shared-text"
    arn_ref = outputs["InferenceComponentArn"]["Value"]["Ref"]
    assert template["Resources"][arn_ref]["Type"] == "AWS::SageMaker::InferenceComponent"


def test_the_environment_key_may_encrypt_component_logs(shared_templates: dict[str, Any]) -> None:
    key = _only(shared_templates[ARTIFACTS], "AWS::KMS::Key")
    assert "/aws/sagemaker/InferenceComponents/*" in json.dumps(key["Properties"]["KeyPolicy"])


def test_updating_one_towers_model_changes_only_its_component(
    shared_templates: dict[str, Any],
) -> None:
    data = _data()
    data["towers"]["vision"]["model_version"] = "2"
    bumped = templates(data)
    diff = diff_templates(VISION, shared_templates[VISION], bumped[VISION])
    kinds = {change.resource_type: change.kind for change in diff.changes}
    assert kinds["AWS::SageMaker::Model"] is ChangeKind.REPLACED
    # A new ModelName in the Specification: an in-place rolling update of the component.
    assert kinds["AWS::SageMaker::InferenceComponent"] is not ChangeKind.REPLACED
    for other in (SHARED, TEXT, ARTIFACTS, ACCESS):
        assert bumped[other] == shared_templates[other], other


def test_deployer_policy_covers_the_components_and_passes_the_endpoint_role(
    shared_templates: dict[str, Any],
) -> None:
    policy = _only(shared_templates[ACCESS], "AWS::IAM::ManagedPolicy")["Properties"]
    by_sid = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    create = json.dumps(by_sid["CreateInferenceComponentsOfThisEnvironment"]["Resource"])
    assert ":endpoint/hf-towers-shared-gpu" in create
    assert ":inference-component/hf-towers-shared-vision" in create
    assert ":inference-component/hf-towers-shared-text" in create
    manage = by_sid["ManageInferenceComponentsOfThisEnvironment"]
    assert set(manage["Action"]) >= {
        "sagemaker:UpdateInferenceComponent",
        "sagemaker:UpdateInferenceComponentRuntimeConfig",
        "sagemaker:DeleteInferenceComponent",
        "sagemaker:DescribeInferenceComponent",
    }
    assert ":endpoint/" not in json.dumps(manage["Resource"])
    passed = json.dumps(by_sid["PassTowerRolesToSageMaker"]["Resource"])
    assert SHARED in passed  # the endpoint config's role, imported from the shared stack


def test_api_routes_name_the_component_in_the_runtime_header(
    cpu_templates: dict[str, Any],
) -> None:
    stacks = cpu_templates
    api = stacks["hf-towers-sharedcpu-api"]
    header = "integration.request.header.X-Amzn-SageMaker-Inference-Component"
    by_endpoint: dict[str, Any] = {}
    for method in _of_type(api, "AWS::ApiGateway::Method"):
        integration = method["Properties"]["Integration"]
        uri = json.dumps(integration["Uri"])
        by_endpoint.setdefault("Team-Shared-Cpu" if "Team-Shared-Cpu" in uri else "own", []).append(
            integration["RequestParameters"].get(header)
        )
    assert sorted(by_endpoint["Team-Shared-Cpu"]) == [
        "'hf-towers-sharedcpu-qa'",
        "'hf-towers-sharedcpu-text'",
    ]
    assert by_endpoint["own"] == [None]  # vision keeps its own endpoint and no header
    policy = next(
        p
        for k, p in api["Resources"].items()
        if p["Type"] == "AWS::IAM::ManagedPolicy" and k.startswith("ApiIntegrationPolicy")
    )
    resources = json.dumps(policy["Properties"]["PolicyDocument"]["Statement"][0]["Resource"])
    assert resources.count(":endpoint/team-shared-cpu") == 1
    assert ":inference-component/hf-towers-sharedcpu-text" in resources
    assert ":inference-component/hf-towers-sharedcpu-qa" in resources
