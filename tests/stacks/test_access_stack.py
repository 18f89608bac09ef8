"""The deployer policy: seed 004's deploy user, least privilege."""

from __future__ import annotations

from typing import Any

from tests.synth_helpers import default_data, templates


def _statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (policy,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_deployer_statements(default_templates: dict[str, Any]) -> None:
    statements = _statements(default_templates["hf-towers-dev-access"])
    assert set(statements) == {
        "PutGetArtifacts",
        "ListArtifacts",
        "UseArtifactKey",
        "PassTowerRolesToSageMaker",
        "CreateTaggedModelsAndConfigs",
        "ManageModelsAndConfigsOfThisEnvironment",
        "CreateAndUpdateEndpointsOfThisEnvironment",
        "ManageEndpointsOfThisEnvironment",
        "LetSageMakerGrantItselfTheArtifactKey",
    }
    grant = statements["LetSageMakerGrantItselfTheArtifactKey"]
    assert grant["Action"] == "kms:CreateGrant"
    assert grant["Resource"] == statements["UseArtifactKey"]["Resource"]  # the one key
    assert grant["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"},
        "StringEquals": {"kms:ViaService": "sagemaker.us-east-1.amazonaws.com"},  # config region
    }
    artifacts = statements["PutGetArtifacts"]
    assert artifacts["Action"] == ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"]
    assert artifacts["Resource"] == {
        "Fn::Join": ["", [{"Fn::ImportValue": "hf-towers-dev-artifacts:ArtifactBucketArn"}, "/*"]]
    }

    passrole = statements["PassTowerRolesToSageMaker"]
    assert passrole["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert len(passrole["Resource"]) == 3  # exactly the three tower roles, no "*"
    assert all(list(r) == ["Fn::ImportValue"] for r in passrole["Resource"])

    create = statements["CreateTaggedModelsAndConfigs"]
    assert create["Condition"] == {"StringEquals": {"aws:RequestTag/hf-towers:environment": "dev"}}
    manage = statements["ManageModelsAndConfigsOfThisEnvironment"]
    assert manage["Condition"] == {"StringEquals": {"aws:ResourceTag/hf-towers:environment": "dev"}}

    endpoint_names = [
        ":endpoint/hf-towers-dev-qa",
        ":endpoint/hf-towers-dev-text",
        ":endpoint/hf-towers-dev-vision",
    ]
    manage_endpoints = statements["ManageEndpointsOfThisEnvironment"]
    assert sorted(r["Fn::Join"][1][-1] for r in manage_endpoints["Resource"]) == endpoint_names
    assert "sagemaker:CreateEndpoint" not in manage_endpoints["Action"]
    # CreateEndpoint/UpdateEndpoint authorize the endpoint and the endpoint config it gets: both
    # resource types (Service Authorization Reference), or every deploy is AccessDenied.
    create_update = statements["CreateAndUpdateEndpointsOfThisEnvironment"]
    assert create_update["Action"] == ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"]
    assert sorted(r["Fn::Join"][1][-1] for r in create_update["Resource"]) == sorted(
        [*endpoint_names, ":endpoint-config/*"]
    )
    every_action = [
        a
        for s in statements.values()
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert not [a for a in every_action if "*" in a]
    assert "sagemaker:InvokeEndpoint" not in every_action  # invoking is grant_invoke's job


def test_deployer_policy_attaches_to_configured_roles() -> None:
    data = default_data()
    data["deployer_role_names"] = ["github-deployer"]
    template = templates(data)["hf-towers-dev-access"]
    (policy,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    assert policy["Properties"]["Roles"] == ["github-deployer"]


def test_every_sagemaker_resource_carries_the_environment_tag(
    default_templates: dict[str, Any],
) -> None:
    for name, template in default_templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"].startswith("AWS::SageMaker::"):
                tags = {t["Key"]: t["Value"] for t in resource["Properties"]["Tags"]}
                assert tags["hf-towers:environment"] == "dev", (name, logical_id)
                assert tags["owner"] == "ml-platform"


def test_mixed_case_endpoint_names_are_lower_case_in_every_policy() -> None:
    """SageMaker writes endpoint names in ARNs in lower case: ``endpoint/MyTextEndpoint`` in the
    deployer policy (while the API policy had ``endpoint/mytextendpoint``) matched nothing."""
    import json
    import re

    from tests.synth_helpers import templates

    data = default_data()
    data["towers"]["text"]["endpoint_name"] = "MyTextEndpoint"
    data["api"] = {"enabled": True}
    found: list[str] = []
    for template in templates(data).values():
        for resource in template["Resources"].values():
            if resource["Type"].startswith("AWS::IAM::"):
                found += re.findall(r"endpoint/([A-Za-z0-9-]+)", json.dumps(resource))
    assert "mytextendpoint" in found
    assert [name for name in found if name != name.lower()] == []


def test_a_protected_environment_protects_every_stack() -> None:
    """The README promised termination protection for protected environments; only the
    artifacts and API stacks had it, not the tower stacks (the production endpoints)."""
    from tests.synth_helpers import build

    data = default_data()
    data.update(removal_policy="retain", protected=True, api={"enabled": True})
    _, deployed = build(data)
    unprotected = [s.stack_name for s in deployed.stacks if not s.termination_protection]
    assert unprotected == []
    assert len(deployed.stacks) == 6  # artifacts, three towers, access, api
    _, open_env = build(default_data())
    assert [s.termination_protection for s in open_env.stacks] == [False] * 5
