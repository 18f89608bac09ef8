"""``TowerApi`` on a bare stack: one route per tower, invoke-only integration role."""

from __future__ import annotations

import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_logs as logs

from hf_towers.config.api import ApiConfig
from hf_towers.constructs.tower_api import ApiRoute, TowerApi
from tests.constructs.bare import bare_stack, only, resources, statements


def _api(routes: list[ApiRoute], removal_policy: RemovalPolicy = RemovalPolicy.DESTROY) -> TowerApi:
    return TowerApi(
        bare_stack(),
        "Api",
        api_name="team-api",
        routes=routes,
        config=ApiConfig(enabled=True),
        log_retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=removal_policy,
    )


def test_the_integration_role_invokes_exactly_the_routed_endpoints() -> None:
    api = _api([ApiRoute(tower="text", endpoint_name="Team-Text")])
    stack = Stack.of(api)
    by_sid = statements(only(stack, "AWS::IAM::ManagedPolicy"))
    statement = by_sid["InvokeTowerEndpoints"]
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    assert statement["Resource"] == ("arn:aws:sagemaker:us-east-1:111122223333:endpoint/team-text")
    paths = {
        r["Properties"]["PathPart"] for r in resources(stack, "AWS::ApiGateway::Resource").values()
    }
    assert paths == {"towers", "text", "invocations"}


def test_an_api_without_routes_is_refused() -> None:
    with pytest.raises(ValueError, match="needs at least one tower with an endpoint"):
        _api([])


def test_retained_api_log_groups_survive_a_delete_and_let_the_stack_redeploy() -> None:
    api = _api([ApiRoute(tower="text", endpoint_name="Team-Text")], RemovalPolicy.RETAIN)
    stack = Stack.of(api)
    groups = resources(stack, "AWS::Logs::LogGroup")
    access = groups[stack.get_logical_id(api.access_logs.node.default_child)]  # type: ignore[arg-type]
    execution = groups[stack.get_logical_id(api.execution_logs.node.default_child)]  # type: ignore[arg-type]
    for group in (access, execution):
        # kept on delete, deleted when the create that made it rolls back
        assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == (
            "RetainExceptOnCreate",
            "Retain",
        )
    # The access log group's fixed name is a plain string: auto-importable on the next deploy.
    assert access["Properties"]["LogGroupName"] == "/aws/apigateway/team-api/access"
    # The execution log group is named after this stack's RestApi: a new API, a new name.
    rest_api = stack.get_logical_id(api.rest_api.node.default_child)  # type: ignore[arg-type]
    assert {"Ref": rest_api} in execution["Properties"]["LogGroupName"]["Fn::Join"][1]


def test_destroyed_api_log_groups_go_with_the_stack() -> None:
    api = _api([ApiRoute(tower="text", endpoint_name="Team-Text")])
    for group in resources(Stack.of(api), "AWS::Logs::LogGroup").values():
        assert group["DeletionPolicy"] == "Delete"
