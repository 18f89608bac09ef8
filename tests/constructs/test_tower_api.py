"""``TowerApi`` on a bare stack: one route per tower, invoke-only integration role."""

from __future__ import annotations

import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_logs as logs

from hf_towers.config.api import ApiConfig
from hf_towers.constructs.tower_api import ApiRoute, TowerApi
from tests.constructs.bare import bare_stack, only, resources, statements


def _api(routes: list[ApiRoute]) -> TowerApi:
    return TowerApi(
        bare_stack(),
        "Api",
        api_name="team-api",
        routes=routes,
        config=ApiConfig(enabled=True),
        log_retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
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
