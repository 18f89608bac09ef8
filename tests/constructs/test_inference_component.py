"""A member ``Tower`` on a bare stack: its inference component, and ``grant_invoke`` on the
endpoint and the ``inference-component`` ARN (hf_towers/constructs/inference_component.py)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from hf_towers.config.models import Tower as TowerSettings
from hf_towers.config.operations import Rollout
from hf_towers.constructs.inference_component import ComponentRef
from hf_towers.constructs.rollout import component_deployment_config
from hf_towers.constructs.tower import ArtifactsRef, ComponentPlacement, Tower
from tests.constructs.bare import BUCKET_ARN, IMAGE, bare_stack, key, only, resources

MEMBER = {
    "kind": "text",
    "model_uri": "s3://team-models/clip/model.tar.gz",
    "compute": {"cpu_cores": 1, "min_memory_mib": 2048},
    "copies": {"initial": 2, "min": 1, "max": 3},
}


def _member() -> tuple[Tower, Stack]:
    stack = bare_stack()
    tower = Tower(
        stack,
        "Tower",
        name="text",
        settings=TowerSettings.model_validate(MEMBER),
        endpoint_name="team-shared",
        image=IMAGE,
        artifacts=ArtifactsRef(key=key(stack), import_bucket_arn=lambda: BUCKET_ARN),
        region="us-east-1",
        removal_policy=RemovalPolicy.RETAIN,
        log_retention=logs.RetentionDays.ONE_MONTH,
        placement=ComponentPlacement(endpoint_name="Team-Shared", component_name="Team-Text"),
    )
    return tower, stack


def test_component_ref_builds_arn_resource_id_and_metrics() -> None:
    stack = bare_stack()
    ref = ComponentRef(name="Team-Text", endpoint_name="Team-Shared")
    assert stack.resolve(ref.arn(stack)) == (
        "arn:aws:sagemaker:us-east-1:111122223333:inference-component/team-text"
    )
    assert stack.resolve(ref.endpoint.arn(stack)).endswith(":endpoint/team-shared")
    assert ref.resource_id == "inference-component/Team-Text"
    metric = ref.variant_metric("Invocations", "Sum")
    assert metric.namespace == "AWS/SageMaker"
    assert metric.dimensions == {"InferenceComponentName": "Team-Text"}


def test_a_member_tower_has_a_component_and_no_endpoint() -> None:
    tower, stack = _member()
    assert tower.endpoint is None and tower.component is not None
    assert resources(stack, "AWS::SageMaker::Endpoint") == {}
    assert resources(stack, "AWS::SageMaker::EndpointConfig") == {}
    component = only(stack, "AWS::SageMaker::InferenceComponent")
    props = component["Properties"]
    assert props["EndpointName"] == "Team-Shared"
    assert props["InferenceComponentName"] == "Team-Text"
    assert props["RuntimeConfig"] == {"CopyCount": 2}
    target = only(stack, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (1, 3)


def test_grant_invoke_names_the_endpoint_and_the_component_only() -> None:
    tower, stack = _member()
    consumer = iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal())
    tower.grant_invoke(consumer)
    (policy,) = [
        p for name, p in resources(stack, "AWS::IAM::Policy").items() if name.startswith("Consumer")
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    # No InvokeEndpointAsync: it takes no inference component.
    assert statement["Action"] == [
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointWithResponseStream",
    ]
    assert statement["Resource"] == [
        "arn:aws:sagemaker:us-east-1:111122223333:endpoint/team-shared",
        "arn:aws:sagemaker:us-east-1:111122223333:inference-component/team-text",
    ]


def test_component_rollout_is_rolling_with_rollback_alarms() -> None:
    stack = bare_stack()
    rollout = Rollout.model_validate({"strategy": "rolling", "rolling_batch_percent": 20})
    config = stack.resolve(component_deployment_config(rollout, rollback_alarm_names=["a", "b"]))
    assert config == {
        "autoRollbackConfiguration": {"alarms": [{"alarmName": "a"}, {"alarmName": "b"}]},
        "rollingUpdatePolicy": {
            "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 20},
            "waitIntervalInSeconds": 300,
            "maximumExecutionTimeoutInSeconds": 3600,
        },
    }
    plain = stack.resolve(component_deployment_config(rollout, rollback_alarm_names=[]))
    assert "autoRollbackConfiguration" not in plain
