"""``Tower`` on a bare stack: the unit of reuse needs no ArtifactsStack around it."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from hf_towers.config.models import Tower as TowerSettings
from hf_towers.constructs.tower import ArtifactsRef, Tower
from tests.constructs.bare import BUCKET_ARN, IMAGE, bare_stack, key, only, resources, statements


def _tower(
    settings: dict[str, Any],
    calls: list[str] | None = None,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
) -> tuple[Tower, Any]:
    stack = bare_stack()

    def import_bucket_arn() -> str:
        if calls is not None:
            calls.append("import")
        return BUCKET_ARN

    tower = Tower(
        stack,
        "Tower",
        name="text",
        settings=TowerSettings.model_validate(settings),
        endpoint_name="team-text",
        image=IMAGE,
        artifacts=ArtifactsRef(key=key(stack), import_bucket_arn=import_bucket_arn),
        region="us-east-1",
        removal_policy=removal_policy,
        log_retention=logs.RetentionDays.ONE_MONTH,
    )
    return tower, stack


TEXT = {"kind": "text", "model_uri": "s3://team-models/clip/model.tar.gz"}
TASK = {
    "kind": "task",
    "hf_task": "question-answering",
    "model_uri": "s3://team-models/qa/model.tar.gz",
    "instance_type": "ml.m5.xlarge",
}


def test_a_text_tower_wires_role_repacked_model_config_and_endpoint() -> None:
    tower, stack = _tower(TEXT)
    assert tower.endpoint is not None
    endpoint = only(stack, "AWS::SageMaker::Endpoint")
    assert endpoint["Properties"]["EndpointName"] == "team-text"
    model = only(stack, "AWS::SageMaker::Model")
    container = model["Properties"]["PrimaryContainer"]
    assert container["Image"] == IMAGE.uri
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    # The repack writes under the tower's prefix of the bucket it was given.
    assert list(resources(stack, "Custom::RepackedModelData"))
    role = statements(
        next(
            p
            for name, p in resources(stack, "AWS::IAM::ManagedPolicy").items()
            if name.startswith("TowerExecutionRole")
        )
    )
    assert role["PullImage"]["Resource"] == IMAGE.repository_arn


def test_grant_invoke_is_on_the_construct_and_names_only_its_endpoint() -> None:
    tower, stack = _tower(TEXT)
    consumer = iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal())
    tower.grant_invoke(consumer)
    (policy,) = [
        p for name, p in resources(stack, "AWS::IAM::Policy").items() if name.startswith("Consumer")
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Ref": stack.get_logical_id(tower.endpoint.resource)}  # type: ignore[union-attr]


def test_a_model_only_tower_has_no_endpoint_to_grant() -> None:
    tower, stack = _tower({**TEXT, "deploy_endpoint": False})
    assert tower.endpoint is None
    assert resources(stack, "AWS::SageMaker::Endpoint") == {}
    consumer = iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal())
    with pytest.raises(ValueError, match="tower 'text' has deploy_endpoint: false"):
        tower.grant_invoke(consumer)


def test_the_bucket_is_imported_only_by_towers_that_use_it() -> None:
    calls: list[str] = []
    _tower(TASK, calls)
    assert calls == []  # a task model as uploaded: no repack, no captures
    _tower(TEXT, calls)
    assert calls == ["import"]  # once, however many constructs read it


ASYNC = {
    "inference_mode": "async",
    "async_inference": {"output_prefix": "async/text/output"},
    "instance_type": "ml.m5.xlarge",
}


@pytest.mark.parametrize(
    ("keys", "retained"),
    [
        ({}, True),  # real-time, autoscaling 1..2 by default
        ({**ASYNC, "autoscaling": {"min_capacity": 1, "max_capacity": 3}}, True),
        ({"autoscaling": {"enabled": False}}, False),  # the count is the config's
        ({**ASYNC, "autoscaling": {"min_capacity": 0, "max_capacity": 3}}, False),
        ({"inference_mode": "serverless", "instance_type": "ml.m5.xlarge"}, False),
    ],
)
def test_updates_keep_the_autoscaled_fleet_size(keys: dict[str, Any], retained: bool) -> None:
    _, stack = _tower({**TEXT, **keys})
    properties = only(stack, "AWS::SageMaker::Endpoint")["Properties"]
    assert properties.get("RetainAllVariantProperties", False) is retained
    assert ("ExcludeRetainedVariantProperties" in properties) is retained


@pytest.mark.parametrize(
    ("settings", "isolated"),
    [
        (TEXT, True),  # model_code/text installs nothing
        (TASK, True),
        ({**TEXT, "network": {"enable_network_isolation": False}}, False),
        ({**TEXT, "code_dir": "tests/config/fixtures/installs"}, False),
    ],
)
def test_network_isolation_is_on_where_the_container_needs_no_network(
    settings: dict[str, Any], isolated: bool
) -> None:
    _, stack = _tower(settings)
    model = only(stack, "AWS::SageMaker::Model")["Properties"]
    assert model.get("EnableNetworkIsolation", False) is isolated


def test_a_retained_endpoint_log_group_is_kept_and_imported_by_the_next_deploy() -> None:
    _, stack = _tower(TASK)
    group = only(stack, "AWS::Logs::LogGroup")
    # Auto-import needs a static custom name and DeletionPolicy Retain or RetainExceptOnCreate;
    # RetainExceptOnCreate also deletes a group whose first create rolled back.
    assert group["Properties"]["LogGroupName"] == "/aws/sagemaker/Endpoints/team-text"
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == (
        "RetainExceptOnCreate",
        "Retain",
    )
    _, scratch = _tower(TASK, removal_policy=RemovalPolicy.DESTROY)
    assert only(scratch, "AWS::Logs::LogGroup")["DeletionPolicy"] == "Delete"
