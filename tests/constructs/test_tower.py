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


def _tower(settings: dict[str, Any], calls: list[str] | None = None) -> tuple[Tower, Any]:
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
        artifacts=ArtifactsRef(
            key=key(stack), bucket_label=BUCKET_ARN, import_bucket_arn=import_bucket_arn
        ),
        region="us-east-1",
        removal_policy=RemovalPolicy.RETAIN,
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
