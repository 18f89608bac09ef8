"""``DeployerPolicy`` on a bare stack: seed 004's deployer, scoped to one environment."""

from __future__ import annotations

from hf_towers.constructs.deployer_policy import ENVIRONMENT_TAG, DeployerPolicy
from tests.constructs.bare import BUCKET_ARN, bare_stack, only, statements

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555"
ROLE_ARN = "arn:aws:iam::111122223333:role/team-text-execution"


def _policy(endpoint_names: list[str]) -> dict[str, object]:
    stack = bare_stack()
    DeployerPolicy(
        stack,
        "Deployer",
        environment="dev",
        bucket_arn=BUCKET_ARN,
        key_arn=KEY_ARN,
        execution_role_arns=[ROLE_ARN],
        endpoint_names=endpoint_names,
        bucket_arn_label=BUCKET_ARN,
        attach_to_role_names=["ci-deployer"],
    )
    return only(stack, "AWS::IAM::ManagedPolicy")


def test_pass_role_only_to_sagemaker_and_endpoints_by_name_with_their_configs() -> None:
    policy = _policy(["Team-Text"])
    assert policy["Properties"]["Roles"] == ["ci-deployer"]  # type: ignore[index]
    by_sid = statements(policy)
    assert by_sid["PassTowerRolesToSageMaker"]["Resource"] == ROLE_ARN
    assert by_sid["PassTowerRolesToSageMaker"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    create = by_sid["CreateAndUpdateEndpointsOfThisEnvironment"]
    assert sorted(create["Resource"]) == [
        "arn:aws:sagemaker:us-east-1:111122223333:endpoint-config/*",
        "arn:aws:sagemaker:us-east-1:111122223333:endpoint/team-text",
    ]
    tagged = by_sid["CreateTaggedModelsAndConfigs"]["Condition"]
    assert tagged == {"StringEquals": {f"aws:RequestTag/{ENVIRONMENT_TAG}": "dev"}}


def test_a_model_only_environment_gets_no_endpoint_statements() -> None:
    by_sid = statements(_policy([]))
    assert "CreateAndUpdateEndpointsOfThisEnvironment" not in by_sid
    assert "ManageEndpointsOfThisEnvironment" not in by_sid
