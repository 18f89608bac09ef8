"""The optional REST API stack: direct SageMaker integrations, auth per config, logs, nag-clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from hf_towers.constructs.tower_api import ACCESS_LOG_FIELDS
from hf_towers.tools.synth_check import check
from tests.synth_helpers import (
    assert_packs_pass,
    build,
    declared_acknowledgements,
    default_data,
    used_acknowledgements,
)

WAF_ARN = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/org-acl/0f0e0d0c-1111-2222-3333-444455556666"


def _iam_data() -> dict[str, Any]:
    data = default_data()
    data["api"] = {"enabled": True, "throttle": {"rate_limit": 20, "burst_limit": 40}}
    return data


def _api_key_data() -> dict[str, Any]:
    data = default_data()
    data["towers"] = {"text": data["towers"]["text"], "qa": data["towers"]["qa"]}
    data["towers"]["text"]["endpoint_name"] = "Search-Text"
    data["api"] = {
        "enabled": True,
        "auth": "api_key",
        "api_keys": ["search-app", "batch"],
        "quota": {"limit": 100000, "period": "day"},
        "towers": ["text"],
        "stage_name": "prod",
        "execution_log_level": "info",
        "cloudwatch_role": False,
        "waf_web_acl_arn": WAF_ARN,
    }
    return data


@pytest.fixture(scope="module")
def iam_api() -> Template:
    _, deployed = build(_iam_data())
    assert deployed.api is not None
    return Template.from_stack(deployed.api)


@pytest.fixture(scope="module")
def key_api() -> Template:
    _, deployed = build(_api_key_data())
    assert deployed.api is not None
    return Template.from_stack(deployed.api)


def _methods(template: Template) -> dict[str, dict[str, Any]]:
    return {
        props["Properties"]["Integration"]["Uri"]: props["Properties"]
        for props in template.find_resources("AWS::ApiGateway::Method").values()
    }


def test_default_config_has_no_api_stack() -> None:
    _, deployed = build(default_data())
    assert deployed.api is None
    assert [s.stack_name for s in deployed.stacks][-1] == "hf-towers-dev-access"


def test_one_post_route_per_tower_integrated_directly_with_invoke_endpoint(
    iam_api: Template,
) -> None:
    methods = _methods(iam_api)
    assert set(methods) == {
        f"arn:aws:apigateway:us-east-1:runtime.sagemaker:path/endpoints/hf-towers-dev-{t}/invocations"
        for t in ("vision", "text", "qa")
    }
    for method in methods.values():
        assert method["HttpMethod"] == "POST"
        integration = method["Integration"]
        assert integration["Type"] == "AWS"  # a service integration: no Lambda in the path
        assert integration["IntegrationHttpMethod"] == "POST"
        assert integration["Credentials"] == {"Fn::GetAtt": [_integration_role(iam_api), "Arn"]}
        assert integration["RequestParameters"] == {
            "integration.request.header.Content-Type": "method.request.header.Content-Type",
            "integration.request.header.Accept": "method.request.header.Accept",
        }
        statuses = {
            r["StatusCode"]: r.get("SelectionPattern") for r in integration["IntegrationResponses"]
        }
        assert statuses == {
            "200": None,
            "424": "424",
            "429": "429",
            "400": "40\\d|41\\d|42[0-35-8]|4[3-9]\\d",
            "502": "5\\d{2}",
        }
        assert "TimeoutInMillis" not in integration  # the 29 s default (README, 'API')
    # Resources /towers/<tower>/invocations.
    parts = {
        r["Properties"]["PathPart"]
        for r in iam_api.find_resources("AWS::ApiGateway::Resource").values()
    }
    assert parts == {"towers", "vision", "text", "qa", "invocations"}


def test_integration_role_may_only_invoke_the_exposed_endpoints(iam_api: Template) -> None:
    roles = iam_api.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [{"Principal": {"Service": "apigateway.amazonaws.com"}}]
                }
            }
        },
    )
    assert len(roles) == 2  # the integration role and the account's CloudWatch Logs role
    policies = iam_api.find_resources("AWS::IAM::ManagedPolicy")
    assert len(policies) == 1
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [(s["Effect"], s["Action"]) for s in statements] == [
        ("Allow", "sagemaker:InvokeEndpoint")
    ]
    resources = [r["Fn::Join"][1][-1] for r in statements[0]["Resource"]]
    assert sorted(resources) == [
        ":endpoint/hf-towers-dev-qa",
        ":endpoint/hf-towers-dev-text",
        ":endpoint/hf-towers-dev-vision",
    ]
    assert not iam_api.find_resources("AWS::IAM::Policy")  # no inline policies
    assert not iam_api.find_resources("AWS::Lambda::Function")


def test_iam_auth_and_request_validation(iam_api: Template) -> None:
    for method in _methods(iam_api).values():
        assert method["AuthorizationType"] == "AWS_IAM"
        assert method.get("ApiKeyRequired") is not True
        assert method["RequestParameters"] == {
            "method.request.header.Content-Type": True,
            "method.request.header.Accept": False,
        }
        assert method["RequestModels"] == {"application/json": {"Ref": _model_id(iam_api)}}
        assert "RequestValidatorId" in method
    iam_api.has_resource_properties(
        "AWS::ApiGateway::RequestValidator",
        {"ValidateRequestBody": True, "ValidateRequestParameters": True},
    )
    iam_api.has_resource_properties(
        "AWS::ApiGateway::Model",
        {"ContentType": "application/json", "Schema": Match.object_like({"required": ["inputs"]})},
    )
    assert not iam_api.find_resources("AWS::ApiGateway::UsagePlan")
    assert not iam_api.find_resources("AWS::ApiGateway::ApiKey")


def test_regional_binary_passthrough_for_images(iam_api: Template) -> None:
    iam_api.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {
            "Name": "hf-towers-dev-api",
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
            "BinaryMediaTypes": ["image/jpeg", "image/png", "image/webp", "application/x-npy"],
        },
    )
    for method in _methods(iam_api).values():
        assert "ContentHandling" not in method["Integration"]  # pass-through, no conversion


def test_stage_logs_traces_and_throttles(iam_api: Template) -> None:
    (stage,) = iam_api.find_resources("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "v1"
    assert props["TracingEnabled"] is True
    assert "ClientCertificateId" in props
    assert json.loads(props["AccessLogSetting"]["Format"]) == ACCESS_LOG_FIELDS
    assert props["AccessLogSetting"]["Format"].startswith('{"requestId":"$context.requestId"')
    assert props["MethodSettings"] == [
        {
            "DataTraceEnabled": False,
            "HttpMethod": "*",
            "LoggingLevel": "ERROR",
            "MetricsEnabled": True,
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": 40,
            "ThrottlingRateLimit": 20,
        }
    ]
    groups = iam_api.find_resources("AWS::Logs::LogGroup")
    names = {json.dumps(g["Properties"]["LogGroupName"]) for g in groups.values()}
    assert names == {
        '"/aws/apigateway/hf-towers-dev-api/access"',
        json.dumps(
            {
                "Fn::Join": [
                    "",
                    ["API-Gateway-Execution-Logs_", {"Ref": _rest_api_id(iam_api)}, "/v1"],
                ]
            }
        ),
    }
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 30
        assert group["Properties"]["KmsKeyId"]["Fn::GetAtt"][1] == "Arn"
    iam_api.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    iam_api.resource_count_is("AWS::ApiGateway::Account", 1)
    iam_api.resource_count_is("AWS::WAFv2::WebACLAssociation", 0)


def _integration_role(template: Template) -> str:
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    (role,) = policy["Properties"]["Roles"]
    return str(role["Ref"])


def _model_id(template: Template) -> str:
    (logical_id,) = template.find_resources("AWS::ApiGateway::Model")
    return str(logical_id)


def _rest_api_id(template: Template) -> str:
    (logical_id,) = template.find_resources("AWS::ApiGateway::RestApi")
    return logical_id


def test_api_keys_with_usage_plan_throttle_and_quota(key_api: Template) -> None:
    methods = _methods(key_api)
    # Only the listed tower; a custom endpoint name goes into the URI as-is.
    assert list(methods) == [
        "arn:aws:apigateway:us-east-1:runtime.sagemaker:path/endpoints/Search-Text/invocations"
    ]
    (method,) = methods.values()
    assert (method["AuthorizationType"], method["ApiKeyRequired"]) == ("NONE", True)
    key_api.has_resource_properties("AWS::ApiGateway::RestApi", {"ApiKeySourceType": "HEADER"})
    key_api.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "UsagePlanName": "hf-towers-dev-api-consumers",
            "Throttle": {"RateLimit": 50, "BurstLimit": 100},
            "Quota": {"Limit": 100000, "Period": "DAY"},
            "ApiStages": [Match.object_like({"ApiId": {"Ref": _rest_api_id(key_api)}})],
        },
    )
    keys = key_api.find_resources("AWS::ApiGateway::ApiKey")
    assert sorted(k["Properties"]["Name"] for k in keys.values()) == [
        "hf-towers-dev-api-batch",
        "hf-towers-dev-api-search-app",
    ]
    assert all("Value" not in k["Properties"] for k in keys.values())  # generated, not in templates
    key_api.resource_count_is("AWS::ApiGateway::UsagePlanKey", 2)
    (policy,) = key_api.find_resources("AWS::IAM::ManagedPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"]["Fn::Join"][1][-1] == ":endpoint/search-text"  # ARNs are lowercase
    key_api.has_resource_properties("AWS::WAFv2::WebACLAssociation", {"WebACLArn": WAF_ARN})
    key_api.resource_count_is("AWS::ApiGateway::Account", 0)
    (stage,) = key_api.find_resources("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == "prod"
    assert stage["Properties"]["MethodSettings"][0]["LoggingLevel"] == "INFO"
    outputs = key_api.to_json()["Outputs"]
    assert {"ApiId", "ApiUrl", "TextInvokeUrl", "SearchAppApiKeyId", "BatchApiKeyId"} <= set(
        outputs
    )


@pytest.mark.parametrize("variant", ["iam", "api-key-waf"])
def test_api_stack_is_nag_and_cfn_lint_clean(variant: str, tmp_path: Path) -> None:
    data = _iam_data() if variant == "iam" else _api_key_data()
    app, deployed = build(data, nag=True, outdir=tmp_path)
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert_packs_pass(report)
    used = used_acknowledgements(report)
    assert deployed.api is not None
    declared = declared_acknowledgements(deployed.api)
    assert declared, "the API acknowledges a few findings"
    assert declared - used == set(), "acknowledgements that match no finding: remove them"
    waf_acks = {d for d in declared if "WAF" in d[1] or "APIG3" in d[1]}
    assert bool(waf_acks) is (variant == "iam")
    api_report = {r.name: r for r in check(tmp_path)}["hf-towers-dev-api"]
    assert (api_report.lint_errors, api_report.lint_warnings, api_report.nag_findings) == (0, 0, 0)
